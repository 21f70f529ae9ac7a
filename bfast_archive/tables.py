"""Record tables: a list of same-keyed dicts stored column by column.

A table node holds one key dict naming the columns and one column per key
(docs/format/nodes.md, "Table node"). The node and its column descriptors are
checked in C once per archive and cached (``TableInfo``); a cell read then
costs a struct read and a bounds check. ``ArchivedTable`` is the lazy view
(rows, zero-copy NumPy columns, Arrow), ``ArchivedRow`` one of its rows.
"""
from __future__ import annotations

import datetime as _dt
import operator
import struct
import sys
from collections.abc import ItemsView, ValuesView
from typing import Any, Iterator

from . import _decode as D
from ._decode import decode
from . import _pytable
from . import format as F
from ._limits import gc_paused, recursion_headroom
from ._native import (archive_error, check_slot, offsets_check, seq_get, slots_check,
                      table_check)
from ._snapshot import Snapshot, claim, closed
from .errors import ArchiveError
from .views import ArchivedDict, ArchivedList, item_index, snapshot_of, view_reduce

_I64S = struct.Struct("<q").unpack_from
_D = struct.Struct("<d").unpack_from
_QQ = struct.Struct("<QQ").unpack_from
_EPOCH = _dt.datetime(1, 1, 1)
_NONE_TYPE = type(None)
_COL_SLOTS, _COL_STR, _COL_HAS_NULLS = F.COL_SLOTS, F.COL_STR, F.COL_HAS_NULLS


def _numpy() -> Any:
    import numpy

    return numpy


class TableInfo:
    """A table node's geometry, checked once per archive; column names are
    looked up in its key dict (in C) as they are asked for, and cached."""

    __slots__ = ("off", "nrows", "ncols", "keys_off", "cols", "_names", "_index",
                 "arrow_checked")

    def __init__(self, s: Snapshot, off: int, nrows: int) -> None:
        rc = table_check(s.ptr, s.size, off, nrows)
        if rc < 0:
            raise archive_error(rc, f"table node at offset {off}")
        raw = s.raw
        self.off = off
        self.nrows = nrows
        self.ncols = ncols = F.TABLE_HEADER.unpack_from(raw, off)[1]
        self.keys_off = D.SLOT(raw, off + 16)[1]
        base = off + F.TABLE_HEADER_SIZE
        self.cols = [F.COLUMN.unpack_from(raw, base + F.COLUMN.size * c) for c in range(ncols)]
        self._names: list[Any] | None = None
        self._index: dict[str, int] = {}
        self.arrow_checked: set[int] = set()  # string columns validated for Arrow (frames.py)

    def column_of(self, s: Snapshot, key: Any) -> int:
        """The column number of ``key``; KeyError if the rows have no such key."""
        c = self._index.get(key) if type(key) is str else None
        if c is None:
            w0, c = D.SLOT(s.raw, D.dict_pos(s, self.keys_off, key))
            if w0 & 0xFF != F.T_INT or not 0 <= c < self.ncols:
                shown = c if w0 & 0xFF == F.T_INT else F.TAG_NAMES.get(w0 & 0xFF, "value")
                raise ArchiveError(f"table node at offset {self.off}: key dict names "
                                   f"column {shown!r} of {self.ncols}")
            if type(key) is str:
                self._index[key] = c
        return c

    def names(self, s: Snapshot) -> list[Any]:
        """All column names, in the rows' key order."""
        if self._names is None:
            if type(s.seen) is set:  # on a copy-out walk
                key_index = D.mat_node(s, F.T_DICT, self.keys_off, self.ncols, 0)
            else:  # its own walk, checksums checked as to_python does
                D.check_sums(s, D.node_end(s, F.T_DICT, self.keys_off, self.ncols))
                with recursion_headroom(s.max_depth), gc_paused():
                    key_index = D.mat_node(s.walk(check=True), F.T_DICT, self.keys_off,
                                           self.ncols, 0)
            if list(key_index.values()) != list(range(self.ncols)) or \
                    not all(type(k) is str for k in key_index):
                raise ArchiveError(f"table node at offset {self.off}: key dict does not "
                                   f"number its {self.ncols} columns in order")
            self._names = list(key_index)
        return self._names


def table_info(s: Snapshot, off: int, nrows: int) -> TableInfo:
    """The checked geometry of the table node at ``off``, cached per archive."""
    info: TableInfo | None = s.tables.get(off)
    if info is not None and info.nrows == nrows:
        return info
    info = s.tables[off] = TableInfo(s, off, nrows)
    return info


UNIX_EPOCH_MICROS = 62_135_596_800_000_000  # 1970-01-01 counted from 0001-01-01
MAX_MICROS = 315_537_897_599_999_999       # 9999-12-31 23:59:59.999999


def _datetime_column(raw: memoryview, mask: bytes | None, where: int) -> list[Any]:
    """A DATETIME column's naive datetimes (masked cells decoded as 0001-01-01,
    replaced by None afterwards). With NumPy already loaded, in one call."""
    micros = raw.cast("q")
    np = sys.modules.get("numpy")
    if np is not None:
        arr = np.frombuffer(micros, "<i8")
        if mask is not None:
            arr = np.where(np.frombuffer(mask, np.uint8) != 0, 0, arr)
        if arr.size and (arr.min() < 0 or arr.max() > MAX_MICROS):
            raise ArchiveError(f"datetime column at offset {where}: value out of range")
        out: list[Any] = (arr - UNIX_EPOCH_MICROS).astype("M8[us]").tolist()
        return out
    values = micros.tolist()
    if mask is not None:
        values = [0 if m else v for v, m in zip(values, mask)]
    try:
        return [_EPOCH + _dt.timedelta(microseconds=v) for v in values]
    except OverflowError:
        raise ArchiveError(f"datetime column at offset {where}: value out of range") from None


def _micros_to_datetime(micros: int, where: int) -> _dt.datetime:
    try:
        return _EPOCH + _dt.timedelta(microseconds=micros)
    except OverflowError:
        raise ArchiveError(f"datetime column at offset {where}: value out of range") from None


def _offset_pair(mv: memoryview, at: int, limit: int, where: int) -> tuple[int, int]:
    a, b = _QQ(mv, at)
    if not a <= b <= limit:
        raise ArchiveError(f"string offsets out of order or bounds in column at offset {where}")
    return a, b


def fetch_column(s: Snapshot, info: TableInfo, c: int) -> None:
    """An archive read by byte range: fetch column ``c``'s regions (one round
    trip), before reading them whole. Nothing for any other archive."""
    image = s.image
    if image is not None:
        _, _, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
        image.ensure_ranges([(r0, r0n), (r1, r1n), (r2, r2n)])


def _fetch_cell(image: Any, mv: Any, col: tuple[int, ...], row: int) -> None:
    """An archive read by byte range: fetch what ``cell`` reads of ``row``
    (its null byte and fixed-width value or string offsets first, then the
    string's bytes: two round trips at most)."""
    kind, flags, r0, r0n, r1, r1n, r2, r2n = col
    first = []
    if flags & F.COL_HAS_NULLS:
        first.append(((r2 if kind == F.COL_STR or kind == F.COL_BINARY else r1) + row, 1))
    if kind in (F.COL_STR, F.COL_BINARY, F.COL_STRLIST):
        first.append((r0 + 8 * row, 16))
    elif kind == F.COL_BOOL:
        first.append((r0 + row, 1))
    elif kind in (F.COL_INT64, F.COL_FLOAT64, F.COL_DATETIME):
        first.append((r0 + 8 * row, 8))
    elif kind >= F.COL_FIXED:
        width = _numpy().dtype(F.FIXED_DTYPES[flags >> F.COL_TYPE_SHIFT]).itemsize
        first.append((r0 + width * row, width))
    if (kind == F.COL_STR or kind == F.COL_BINARY) and r0n > 8:
        # where the string would start if all had the same length: fetched
        # with its offsets, it saves the second round trip when they do
        nrows = r0n // 8 - 1
        first.append((r1 + r1n * row // nrows, max(r1n // nrows, 1)))
    image.ensure_ranges([(a, min(n, image.size - a)) for a, n in first if 0 <= a < image.size])
    if kind in (F.COL_STR, F.COL_BINARY) and r0 + 8 * row + 16 <= image.size:
        a, b = _QQ(mv, r0 + 8 * row)
        if a <= b <= r1n:  # (else cell() says what is wrong)
            image.ensure(r1 + a, b - a)


def cell(arch: Any, s: Snapshot, info: TableInfo, c: int, row: int, depth: int,
         full: bool) -> Any:
    """One cell of a table of archive ``arch``, read through snapshot ``s``;
    ``full`` (on a walk) materialises nested values instead of returning views."""
    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    mv = s.raw
    if s.image is not None:
        _fetch_cell(s.image, mv, info.cols[c], row)
    if kind == _COL_SLOTS:  # (never has nulls: table_check)
        pos = r0 + 16 * row
        rc = check_slot(s.ptr, s.size, pos, info.off)
        if rc < 0:
            raise archive_error(rc, f"table cell at offset {pos}")
        return D.mat(s, pos, depth) if full else decode(arch, s, pos)
    if flags & _COL_HAS_NULLS:
        null = mv[(r2 if kind == _COL_STR or kind == F.COL_BINARY else r1) + row]
        if null:
            if null != 1:
                raise ArchiveError(f"null mask byte {null} in column at offset {r0}")
            return None
    if kind == _COL_STR:  # (_offset_pair and utf8 inline: the most common cell)
        a, b = _QQ(mv, r0 + 8 * row)
        if not a <= b <= r1n:
            raise ArchiveError(f"string offsets out of order or bounds in column at offset {r0}")
        try:
            return str(mv[r1 + a:r1 + b], "utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise ArchiveError(f"invalid UTF-8 in string at offset {r1 + a}: "
                               f"{exc.reason}") from None
    if kind == F.COL_INT64:
        return _I64S(mv, r0 + 8 * row)[0]
    if kind == F.COL_DATETIME:
        return _micros_to_datetime(_I64S(mv, r0 + 8 * row)[0], r0)
    if kind == F.COL_FLOAT64:
        return _D(mv, r0 + 8 * row)[0]
    if kind == F.COL_BOOL:
        v = mv[r0 + row]
        if v > 1:
            raise ArchiveError(f"bool column at offset {r0}: byte {v} is not 0 or 1")
        return v == 1
    if kind == F.COL_STRLIST:
        a, b = _offset_pair(mv, r0 + 8 * row, r1n // 8 - 1, r0)
        view = StringsCell(arch, a, b, r1, r2, r2n)
        return view.to_python() if full else view
    if kind >= F.COL_FIXED:  # format 1.1 kinds: bfast_archive/frames.py
        from .frames import typed_cell
        return typed_cell(mv, info.cols[c], row, full)
    raise ArchiveError(f"table column at offset {r0} of unknown kind {kind}")


def _strings(s: Snapshot, offsets_at: int, count: int, blob_at: int, blob_len: int) -> list[Any]:
    """``count`` strings of an offsets region + UTF-8 blob, validated in bulk."""
    mv = s.mv
    rc = offsets_check(s.ptr, s.size, offsets_at, count + 1, blob_len)
    if rc < 0:
        raise archive_error(rc, f"string offsets at offset {offsets_at}")
    end = offsets_at + 8 * (count + 1)
    last = int.from_bytes(mv[end - 8:end], "little")
    if last != blob_len:
        raise ArchiveError(f"string offsets at offset {offsets_at} end at {last}, "
                           f"the blob holds {blob_len} bytes")
    blob = bytes(mv[blob_at:blob_at + blob_len])
    if count >= _pytable.NATIVE_MIN:  # in C: one call, no Python loop per string
        try:
            out = _pytable.strings(blob, bytes(mv[offsets_at:end]))
        except UnicodeDecodeError as exc:
            raise ArchiveError(f"invalid UTF-8 in string blob at offset {blob_at}: "
                               f"{exc.reason}") from None
        except ValueError as exc:
            raise ArchiveError(f"string offsets at offset {offsets_at}: {exc}") from None
        if out is not None:
            return out
    offs = mv[offsets_at:end].cast("Q").tolist()
    if blob.isascii():
        text = blob.decode("ascii")
        return [text[a:b] for a, b in zip(offs, offs[1:])]
    try:
        return [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(offs, offs[1:])]
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"invalid UTF-8 in string blob at offset {blob_at}: "
                           f"{exc.reason}") from None


def column_values(s: Snapshot, info: TableInfo, c: int, depth: int) -> list[Any]:
    """All values of column ``c`` as Python objects, in bulk, on walk ``s``."""
    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    fetch_column(s, info, c)
    mv = s.mv
    n = info.nrows
    # regions of no bytes may share an offset with the next thing written
    if r0n:
        claim(s, r0)
    if (kind == F.COL_STR or kind == F.COL_STRLIST or kind == F.COL_BINARY) and r1n:
        claim(s, r1)
    if kind == F.COL_STRLIST and r2n:
        claim(s, r2)
    nulls_at = r2 if kind == F.COL_STR or kind == F.COL_BINARY else r1
    if kind >= F.COL_FIXED:  # format 1.1 kinds: bfast_archive/frames.py
        from .frames import typed_values
        values = typed_values(s, info.cols[c], n)
    elif kind == F.COL_INT64 or kind == F.COL_FLOAT64:
        values = mv[r0:r0 + 8 * n].cast("q" if kind == F.COL_INT64 else "d").tolist()
    elif kind == F.COL_DATETIME:
        values = _datetime_column(mv[r0:r0 + 8 * n], bytes(mv[r1:r1 + n]) if flags else None,
                                  r0)  # (no type bits in flags but in FIXED's)
    elif kind == F.COL_BOOL:
        raw = bytes(mv[r0:r0 + n])
        if raw.translate(None, b"\x00\x01"):
            raise ArchiveError(f"bool column at offset {r0} holds bytes other than 0 and 1")
        values = list(map(bool, raw))
    elif kind == F.COL_STR:
        values = _strings(s, r0, n, r1, r1n)
    elif kind == F.COL_STRLIST:
        nitems = r1n // 8 - 1
        rc = offsets_check(s.ptr, s.size, r0, n + 1, nitems)
        if rc < 0:
            raise archive_error(rc, f"list offsets at offset {r0}")
        flat = _strings(s, r1, nitems, r2, r2n)
        if n >= _pytable.NATIVE_MIN:
            try:
                grouped = _pytable.groups(flat, bytes(mv[r0:r0 + 8 * (n + 1)]))
            except ValueError as exc:
                raise ArchiveError(f"list offsets at offset {r0}: {exc}") from None
            if grouped is not None:
                return grouped
        bounds = mv[r0:r0 + 8 * (n + 1)].cast("Q").tolist()
        return [flat[a:b] for a, b in zip(bounds, bounds[1:])]
    else:  # COL_SLOTS
        rc = slots_check(s.ptr, s.size, r0, n, info.off)
        if rc < 0:
            raise archive_error(rc, f"table column at offset {r0}")
        if depth >= s.max_depth:
            raise ArchiveError(f"nesting deeper than max_depth={s.max_depth}")
        return D.mat_slots(s, r0, n, depth + 1)
    if flags & F.COL_HAS_NULLS:
        mask = bytes(mv[nulls_at:nulls_at + n])
        if mask.translate(None, b"\x00\x01"):
            raise ArchiveError(f"null mask at offset {nulls_at} holds bytes other than 0 and 1")
        values = with_nulls(values, mask)
    return values


_NUMBER_KINDS = frozenset("iuf")


def numeric_array(values: list[Any]) -> Any:
    """``values`` (a column's cells, None for a missing value) as a NumPy
    array when every other cell is a number and the array holds each one
    exactly, else None (the caller returns the list):

    - all bool (or ``np.bool_``): a bool array;
    - int (within int64), float and NumPy integer/float scalars, in any mix
      without bools: an array of their common dtype (``np.result_type``:
      int64 for ints, float64 for ints among floats, float32 for float32
      cells...), provided every int converts to it exactly (``2**60`` among
      floats does not fit a float64: the list is returned);
    - None cells: a masked array, masked there.

    The array is a copy (a column stored cell by cell); the cells read one by
    one keep their own types (the int 0 stays an int in ``row["x"]``)."""
    types = set(map(type, values))
    nulls = _NONE_TYPE in types
    types.discard(_NONE_TYPE)
    if not types:
        return None
    np = _numpy()
    kinds = set()
    for t in types:
        if t is int:
            kinds.add("i")
        elif t is float:
            kinds.add("f")
        elif t is bool or t is np.bool_:
            kinds.add("b")
        elif issubclass(t, np.generic) and np.dtype(t).kind in _NUMBER_KINDS:
            kinds.add("n")
        else:
            return None
    if "b" in kinds and len(kinds) > 1:
        return None  # bools among numbers: not one column type
    cells = [v for v in values if v is not None] if nulls else values
    if "i" in kinds and not all(D.INT_MIN <= v <= D.INT_MAX for v in cells if type(v) is int):
        return None
    dtypes = [np.dtype(np.int64) if t is int else np.dtype(np.float64) if t is float
              else np.dtype(t) for t in types]
    dtype = np.result_type(*dtypes) if "b" not in kinds else np.dtype(bool)
    array = np.array(cells, dtype=dtype)
    if dtype.kind == "f" and any(np.dtype(d).kind in "iu" for d in dtypes):
        # ints in a float array: each must come back equal (exact int/float comparison)
        int_types = {t for t in types if t is int or
                     (t is not float and np.dtype(t).kind in "iu")}
        ints = [(i, v) for i, v in enumerate(cells) if type(v) in int_types]
        floats = array[[i for i, _ in ints]].tolist()
        if not all(map(operator.eq, (int(v) for _, v in ints), floats)):
            return None
    if not nulls:
        return array
    mask = np.fromiter((v is None for v in values), bool, len(values))
    data = np.zeros(len(values), dtype)
    data[~mask] = array
    return np.ma.MaskedArray(data, mask=mask)


def with_nulls(values: list[Any], mask: bytes) -> list[Any]:
    """``values`` with None where ``mask`` (bytes 0/1, checked) holds 1: a
    few Nones are set in place (found by bytes.find, in C), many in one pass."""
    if mask.count(1) * 8 > len(mask):
        return [None if m else v for v, m in zip(values, mask)]
    find = mask.find
    i = find(1)
    while i >= 0:
        values[i] = None
        i = find(1, i + 1)
    return values


def table_rows(s: Snapshot, info: TableInfo, depth: int) -> list[Any]:
    """The rows of a table as dicts, built column by column, on walk ``s``."""
    columns = [column_values(s, info, c, depth) for c in range(info.ncols)]
    names = info.names(s)
    if info.nrows >= _pytable.NATIVE_MIN:
        built = _pytable.rows(tuple(names), columns)
        if built is not None:
            return built
    return [dict(zip(names, cells)) for cells in zip(*columns)]


class StringsCell(ArchivedList):
    """A table cell holding a list of str (column kind STRLIST), viewed
    like any archived list: items are cut from the column's blob on access."""

    __slots__ = ("_first", "_items_at", "_blob_at", "_blob_len")

    def __init__(self, arch: Any, a: int, b: int, items_at: int, blob_at: int,
                 blob_len: int) -> None:
        self._arch = arch
        self._off = items_at + 8 * a
        self._n = b - a
        self._tag = F.T_LIST
        self._first = a
        self._items_at = items_at
        self._blob_at = blob_at
        self._blob_len = blob_len

    def __getitem__(self, index: Any) -> Any:
        i = item_index(index, self._n)
        if type(i) is range:
            return [self[j] for j in i]
        s = snapshot_of(self)
        raw = s.raw
        at = self._items_at + 8 * (self._first + i)
        if s.image is not None:
            s.image.ensure(at, 16)
        x, y = _offset_pair(raw, at, self._blob_len, self._items_at)
        if s.image is not None:
            s.image.ensure(self._blob_at + x, y - x)
        return D.utf8(raw[self._blob_at + x:self._blob_at + y], self._blob_at + x)

    def __iter__(self) -> Iterator[Any]:
        for i in range(self._n):
            yield self[i]

    def __reduce__(self) -> tuple[Any, ...]:
        return view_reduce(self, StringsCell, self._first, self._first + self._n,
                           self._items_at, self._blob_at, self._blob_len)

    def to_python(self) -> list[Any]:
        D.check_sums(snapshot_of(self), max(self._blob_at + self._blob_len,
                                            self._items_at + 8 * (self._first + self._n + 1)))
        return [self[i] for i in range(self._n)]

    def column(self, name: Any) -> Any:
        if self._n:
            raise TypeError("column() needs a list of dicts: item 0 is a str")
        return []


class ArchivedTable(ArchivedList):
    """A lazy view of a list of same-keyed dicts stored column by column.
    It is an ``ArchivedList``: ``t[i]`` gives a row (an ``ArchivedDict``),
    iteration and ``len`` work as for any list. ``t.column(name)`` gives a
    whole numeric or bool column as a zero-copy NumPy array."""

    __slots__ = ()

    def _info(self, s: Snapshot | None = None) -> TableInfo:
        """The table's checked geometry (read through ``s``, else the archive's snapshot)."""
        return table_info(s if s is not None else snapshot_of(self), self._off, self._n)

    def __getitem__(self, index: Any) -> Any:
        arch = self._arch
        s = arch._snap
        if s is None:
            raise closed()
        n = self._n
        if type(index) is not int or not 0 <= index < n:
            index = item_index(index, n)
            if type(index) is range:
                return [self[i] for i in index]
        info = s.tables.get(self._off)  # (table_info's own first step)
        if info is None or info.nrows != n:
            info = table_info(s, self._off, n)
        return ArchivedRow(arch, info, index)

    def __iter__(self) -> Iterator[Any]:
        arch, info = self._arch, self._info(snapshot_of(self))
        for row in range(self._n):
            if arch._snap is None:
                raise closed()
            yield ArchivedRow(arch, info, row)

    @property
    def columns(self) -> list[Any]:
        """The column names, in the rows' key order."""
        s = snapshot_of(self)
        return list(self._info(s).names(s))

    def column(self, name: Any, *, arrow: bool = False) -> Any:
        """Column ``name`` as a read-only NumPy array over the buffer (int64,
        float64 or bool; in a data frame also the other fixed-width types,
        dates copied as ``datetime64[D]``), no copy: O(1). With None cells, a
        masked array whose data and mask are both views. A column stored cell
        by cell whose cells are numbers an array holds exactly (ints among
        floats, NumPy scalars) comes back as an owned array (O(rows);
        ``numeric_array``); other columns as a list.
        ``arrow=True``: the column as a ``pyarrow.Array`` (zero-copy where the
        layouts agree; ``bfast_archive.frames`` says which)."""
        s = snapshot_of(self)
        info = self._info(s)
        c = info.column_of(s, name)
        fetch_column(s, info, c)
        if arrow:
            from .frames import column_to_arrow
            return column_to_arrow(s, info, c, name)
        kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
        if kind not in (F.COL_INT64, F.COL_FLOAT64, F.COL_BOOL, F.COL_FIXED):
            with recursion_headroom(s.max_depth), gc_paused():  # a copy-out: its own walk
                values = column_values(s.walk(self._arch), info, c, 0)
            array = numeric_array(values) if kind == F.COL_SLOTS else None
            return values if array is None else array
        np = _numpy()
        dtype = {F.COL_INT64: "<i8", F.COL_FLOAT64: "<f8", F.COL_BOOL: "?"}.get(kind) or \
            F.FIXED_DTYPES[flags >> F.COL_TYPE_SHIFT]
        mv = s.mv
        data = np.frombuffer(mv, dtype, self._n, r0) if self._n else np.empty(0, dtype)
        if kind == F.COL_FIXED and flags >> F.COL_TYPE_SHIFT == F.FX_DATE32:
            data = data.astype("<M8[D]")  # stored as int32 days
        if not flags & F.COL_HAS_NULLS:
            return data
        mask = np.frombuffer(mv, "?", self._n, r1) if self._n else np.empty(0, "?")
        return np.ma.MaskedArray(data, mask=mask, copy=False)

    def to_arrow(self) -> Any:
        """The table as a ``pyarrow.Table`` sharing the archive's bytes
        (numbers, strings, lists of str); null masks, bools and datetimes are
        converted (``bfast_archive.frames``). Cost: O(columns) plus those copies."""
        from .frames import table_to_arrow

        s = snapshot_of(self)
        info = self._info(s)
        return table_to_arrow(s, info, list(info.names(s)))

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame, through ``to_arrow()``."""
        from .frames import to_pandas
        return to_pandas(self.to_arrow())

    def to_polars(self) -> Any:
        """The table as a polars DataFrame, through ``to_arrow()``."""
        from .frames import to_polars
        return to_polars(self.to_arrow())

    def __repr__(self) -> str:
        state = " (archive closed)" if self._arch._snap is None else ""
        return f"<{type(self).__name__} {self._n} rows{state}>"


class ArchivedRow(ArchivedDict):
    """One row of an ``ArchivedTable``: an ``ArchivedDict`` whose keys are the
    table's column names. ``row[key]`` is a dict probe plus one cell read."""

    __slots__ = ("_info", "_row")

    def __init__(self, arch: Any, info: TableInfo, row: int) -> None:
        self._arch = arch
        self._off = info.off
        self._n = info.ncols
        self._info = info
        self._row = row

    def __getitem__(self, key: Any) -> Any:
        arch = self._arch
        s = arch._snap
        if s is None:
            raise closed()
        info = self._info
        c = info._index.get(key) if type(key) is str else None  # (column_of's own first step)
        return cell(arch, s, info, info.column_of(s, key) if c is None else c, self._row, 0,
                    False)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._info.names(snapshot_of(self))))

    def __contains__(self, key: object) -> bool:
        s = snapshot_of(self)
        try:
            self._info.column_of(s, key)
        except KeyError:
            return False
        return True

    def values(self) -> ValuesView[Any]:
        return ValuesView(self)

    def items(self) -> ItemsView[Any, Any]:
        return ItemsView(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return view_reduce(self, _row_at, self._info.off, self._info.nrows, self._row)

    def array(self, key: Any) -> Any:
        raise TypeError("a table row's cells are not array nodes: use the table's "
                        ".column(name) for a whole column as an array")

    def to_python(self) -> dict[Any, Any]:
        s = snapshot_of(self)
        info = self._info
        D.check_sums(s, D.node_end(s, F.T_TABLE, info.off, info.nrows))
        with recursion_headroom(s.max_depth):
            walk = s.walk(self._arch, check=True)
            return {name: cell(self._arch, walk, info, c, self._row, 1, True)
                    for c, name in enumerate(info.names(walk))}


def _row_at(arch: Any, off: int, nrows: int, row: int) -> ArchivedRow:
    """Row ``row`` of the table node at ``off`` (an unpickled ``ArchivedRow``)."""
    s = arch._snapshot()
    return ArchivedRow(arch, table_info(s, off, nrows), row)


# -- model schemas met on the way (typed views, models.py) -------------------------

def model_schema_at(view: Any, key: Any) -> Any:
    """The stored schema of the model node at ``view[key]`` (a key of an
    ``ArchivedDict``, an index of an ``ArchivedList``), or None when that
    value is not a model node. For typed views (models.py): one probe."""
    arch = getattr(view, "_arch", None)
    s = arch._snap if arch is not None else None
    if s is None:
        return None
    memo = ("slot schema", view._off, key)  # a node's offset names it in its archive
    hit = s.tables.get(memo, memo)
    if hit is not memo:
        return hit
    if type(view) is ArchivedDict:
        pos = D.dict_pos(s, view._off, key)
    elif type(view) is ArchivedList and type(key) is int:
        pos = seq_get(s.ptr, s.size, view._off, key)
        if pos < 0:
            return None
    else:
        return None
    w0, p = D.SLOT(s.raw, pos)
    schema = D.schema(s, p) if w0 & 0xFF == F.T_MODEL else None
    s.tables[memo] = schema
    return schema


def copy_noting_schemas(view: Any) -> tuple[Any, ...]:
    """``(view.to_python(), schemas)`` for an ``ArchivedDict``,
    ``ArchivedList`` (a table too) or table row: the copy notes the schema
    of every model node it passes; ``schemas`` are all the schemas the
    archive has noted so far. For ``to_model`` of typed views (models.py)."""
    s = snapshot_of(view)
    with recursion_headroom(s.max_depth), gc_paused():
        walk = s.walk(view._arch, models={})  # no classes: a copy that notes schemas
        if type(view) is ArchivedRow:
            info = view._info
            data = {name: cell(view._arch, walk, info, c, view._row, 1, True)
                    for c, name in enumerate(info.names(walk))}
        else:
            tag = F.T_DICT if type(view) is ArchivedDict else view._tag
            data = D.mat_node(walk, tag, view._off, view._n, 0)
    return data, D.noted_schemas(s)


D.register(ArchivedTable=ArchivedTable, table_info=table_info, table_rows=table_rows,
           column_values=column_values)
