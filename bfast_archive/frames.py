"""Record tables as data frames: Arrow columns over the archive's bytes.

``ArchivedTable.to_arrow()`` builds a ``pyarrow.Table`` whose buffers are the
archive's own bytes wherever the layouts agree (docs/CONCEPTS.md, "Tables as
data frames"):

- INT64 and FLOAT64 values: zero-copy (``int64`` / ``double``).
- STR: the column's u64 offsets (from 0) and UTF-8 blob are exactly Arrow's
  ``large_string`` layout: zero-copy. The offsets are checked in C and the
  blob's UTF-8 (an all-ASCII blob in one vectorised pass, else by Arrow's
  full validation) once per column and mapping.
- STRLIST: row starts, string offsets and blob are ``large_list<large_string>``:
  zero-copy.
- Null masks (a byte per row, 1 = None) become Arrow validity bitmaps (a bit
  per row, 1 = valid): an O(n / 8) copy. BOOL values are bit-packed likewise.
- DATETIME (µs since 0001-01-01) becomes ``timestamp[us]`` (µs since 1970):
  an O(n) copy.
- SLOTS columns (cells of mixed or nested types) are refused with an
  ``UnsupportedTypeError`` naming the column.

pyarrow, pandas and polars are imported on first use only; a missing one
raises ImportError naming the package and the ``frames`` extra.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from . import format as F
from .errors import ArchiveError, UnsupportedTypeError

if TYPE_CHECKING:
    from .tables import ArchivedTable
    from .writer import _Writer

_EXTRA = "pip install bfast-archive[frames]"
_UNIX_EPOCH_MICROS = 62_135_596_800_000_000  # 1970-01-01 counted from 0001-01-01
_MAX_MICROS = 315_537_897_599_999_999       # 9999-12-31 23:59:59.999999


def require(name: str) -> Any:
    """Import the optional package ``name`` (pyarrow, pandas, polars), or an
    ImportError that names it and the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{name} is needed for data frames and is not installed: "
                          f"{_EXTRA}") from exc


def _np() -> Any:
    import numpy

    return numpy


def _validity(pa: Any, mv: memoryview, at: int, n: int, where: str) -> tuple[Any, int]:
    """(Arrow validity bitmap, null count) of the null mask at ``at``: checked
    to hold only 0 and 1, then bit-packed (an O(n / 8) copy)."""
    np = _np()
    mask = np.frombuffer(mv, np.uint8, n, at)
    if n and mask.max() > 1:
        raise ArchiveError(f"null mask at offset {at} of column {where!r} holds bytes "
                           f"other than 0 and 1")
    nulls = int(np.count_nonzero(mask))
    return pa.py_buffer(np.packbits(mask == 0, bitorder="little")), nulls


def _strings_checked(s: Any, offsets_at: int, count: int, blob_len: int, where: str) -> None:
    """The C check of a string offsets region (from 0, non-decreasing, within
    the blob) and that it ends at the blob's length."""
    from ._native import archive_error, offsets_check

    rc = offsets_check(s.ptr, s.size, offsets_at, count + 1, blob_len)
    if rc < 0:
        raise archive_error(rc, f"string offsets at offset {offsets_at} of column {where!r}")
    end = offsets_at + 8 * count
    last = int.from_bytes(s.mv[end:end + 8], "little")
    if last != blob_len:
        raise ArchiveError(f"string offsets at offset {offsets_at} of column {where!r} end at "
                           f"{last}, the blob holds {blob_len} bytes")


def _utf8_checked(arr: Any, blob: memoryview, where: str) -> None:
    """The UTF-8 of every string of ``arr`` (whose offsets were checked):
    an all-ASCII ``blob`` in one vectorised pass, else Arrow's full
    validation; O(bytes), no copy. A lone surrogate (allowed in the format,
    as Python's ``surrogatepass``) has no Arrow form: refused, not returned."""
    if _ascii(_np(), blob):
        return
    try:
        arr.validate(full=True)
    except Exception:
        try:
            bytes(blob).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise ArchiveError(f"invalid UTF-8 in the string blob of column {where!r}") from None
        split = _split_character(arr, blob)
        if split is not None:
            raise ArchiveError(f"string {split} of column {where!r} starts inside a UTF-8 "
                               f"character (its offset is damaged)") from None
        raise UnsupportedTypeError(f"column {where!r} holds a lone surrogate, which Arrow "
                                   f"strings cannot hold", path=where) from None


def _split_character(arr: Any, blob: memoryview) -> int | None:
    """The first string of ``arr`` whose start offset falls on a UTF-8
    continuation byte of ``blob`` (a blob that is valid UTF-8 as a whole, cut
    inside a character), or None. O(strings); only on the error path."""
    np = _np()
    data = np.frombuffer(blob, np.uint8)
    starts = np.frombuffer(arr.buffers()[1], "<i8", len(arr), 8 * arr.offset)
    inside = starts[starts < len(data)]
    cut = np.flatnonzero((data[inside] & 0xC0) == 0x80)
    return int(np.flatnonzero(starts < len(data))[cut[0]]) if len(cut) else None


def column_to_arrow(s: Any, info: Any, c: int, name: str) -> Any:
    """Column ``c`` of a table, read through the archive's snapshot ``s``, as
    a ``pyarrow.Array`` (see the module doc for which buffers are shared with
    the archive and which are copied)."""
    pa = require("pyarrow")
    np = _np()
    from .tables import fetch_column

    fetch_column(s, info, c)
    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    n = info.nrows
    mv = s.mv
    validity, nulls = None, 0
    if flags & F.COL_HAS_NULLS:
        validity, nulls = _validity(pa, mv, r2 if kind in (F.COL_STR, F.COL_BINARY) else r1,
                                    n, name)
    if kind == F.COL_INT64 or kind == F.COL_FLOAT64:
        typ = pa.int64() if kind == F.COL_INT64 else pa.float64()
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(mv[r0:r0 + 8 * n])], nulls)
    if kind == F.COL_BOOL:
        raw = np.frombuffer(mv, np.uint8, n, r0)
        if n and raw.max() > 1:
            raise ArchiveError(f"bool column {name!r} at offset {r0} holds bytes other than "
                               f"0 and 1")
        bits = pa.py_buffer(np.packbits(raw, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), n, [validity, bits], nulls)
    if kind == F.COL_DATETIME:
        micros = np.frombuffer(mv, "<i8", n, r0)
        if validity is not None:
            micros = np.where(np.frombuffer(mv, np.uint8, n, r1) != 0, _UNIX_EPOCH_MICROS, micros)
        if n and (micros.min() < 0 or micros.max() > _MAX_MICROS):
            raise ArchiveError(f"datetime column {name!r} at offset {r0}: value out of range")
        values = pa.py_buffer(micros - _UNIX_EPOCH_MICROS)
        return pa.Array.from_buffers(pa.timestamp("us"), n, [validity, values], nulls)
    if kind == F.COL_STR or kind == F.COL_BINARY:
        checked = info.arrow_checked
        if c not in checked:
            _strings_checked(s, r0, n, r1n, name)
        typ = pa.large_string() if kind == F.COL_STR else pa.large_binary()
        arr = pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(mv[r0:r0 + 8 * (n + 1)]),
                                             pa.py_buffer(mv[r1:r1 + r1n])], nulls)
        if c not in checked:
            if kind == F.COL_STR:
                _utf8_checked(arr, mv[r1:r1 + r1n], name)
            checked.add(c)
        return arr
    if kind == F.COL_STRLIST:
        m = r1n // 8 - 1
        checked = info.arrow_checked
        if c not in checked:
            _strings_checked(s, r0, n, m, name)
            _strings_checked(s, r1, m, r2n, name)
        items = pa.Array.from_buffers(pa.large_string(), m,
                                      [None, pa.py_buffer(mv[r1:r1 + r1n]),
                                       pa.py_buffer(mv[r2:r2 + r2n])])
        if c not in checked:
            _utf8_checked(items, mv[r2:r2 + r2n], name)
            checked.add(c)
        return pa.Array.from_buffers(pa.large_list(pa.large_string()), n,
                                     [None, pa.py_buffer(mv[r0:r0 + 8 * (n + 1)])],
                                     children=[items])
    if kind == F.COL_FIXED:
        code = flags >> F.COL_TYPE_SHIFT
        width = np.dtype(F.FIXED_DTYPES[code]).itemsize
        return pa.Array.from_buffers(_fixed_arrow(pa, np, code), n,
                                     [validity, pa.py_buffer(mv[r0:r0 + width * n])], nulls)
    raise UnsupportedTypeError(f"column {name!r} holds cells of mixed or nested types, "
                               f"which have no Arrow type", path=name)


def _fixed_arrow(pa: Any, np: Any, code: int) -> Any:
    """The Arrow type of a FIXED column's stored values (timestamps without
    a time zone: a frame's schema adds it)."""
    if code == F.FX_DATE32:
        return pa.date32()
    return pa.from_numpy_dtype(np.dtype(F.FIXED_DTYPES[code]))


_CODES: dict[Any, int] | None = None  # Arrow type -> FIXED code


def _fixed_code(pa: Any, np: Any, typ: Any) -> int | None:
    """The FIXED element type code of Arrow type ``typ``, or None."""
    global _CODES
    if _CODES is None:
        _CODES = {_fixed_arrow(pa, np, code): code for code in F.FIXED_DTYPES}
    return _CODES.get(pa.timestamp(typ.unit) if pa.types.is_timestamp(typ) else typ)


def typed_cell(mv: memoryview, col: tuple[int, ...], row: int, full: bool) -> Any:
    """One cell of a format 1.1 column (FIXED or BINARY; None cells are
    handled by the caller): ints and floats as Python numbers (float16/32
    widened exactly), dates, timestamps and durations as NumPy ``datetime64``
    / ``timedelta64`` of the stored unit (Python's types cannot hold
    nanoseconds), byte strings as ``bytes`` (``full``) or a memoryview."""
    kind, flags, r0, r0n, r1, r1n, r2, r2n = col
    if kind == F.COL_BINARY:
        a, b = int.from_bytes(mv[r0 + 8 * row:r0 + 8 * row + 8], "little"), \
            int.from_bytes(mv[r0 + 8 * row + 8:r0 + 8 * row + 16], "little")
        if not a <= b <= r1n:
            raise ArchiveError(f"byte string offsets out of order or bounds in column at "
                               f"offset {r0}")
        return bytes(mv[r1 + a:r1 + b]) if full else mv[r1 + a:r1 + b]
    np = _np()
    code = flags >> F.COL_TYPE_SHIFT
    dtype = np.dtype(F.FIXED_DTYPES[code])
    value = np.frombuffer(mv, dtype, 1, r0 + row * dtype.itemsize)[0]
    if code == F.FX_DATE32:
        return np.datetime64(int(value), "D")
    return value if dtype.kind in "Mm" else value.item()


def typed_values(s: Any, col: tuple[int, ...], n: int) -> list[Any]:
    """All cells of a format 1.1 column as Python values (as ``typed_cell``;
    None cells are set by the caller). Cost: O(n)."""
    from ._native import archive_error, offsets_check

    kind, flags, r0, r0n, r1, r1n, r2, r2n = col
    mv = s.mv
    if kind == F.COL_BINARY:
        rc = offsets_check(s.ptr, s.size, r0, n + 1, r1n)
        if rc < 0:
            raise archive_error(rc, f"byte string offsets at offset {r0}")
        offs = mv[r0:r0 + 8 * (n + 1)].cast("Q").tolist()
        if offs[-1] != r1n:
            raise ArchiveError(f"byte string offsets at offset {r0} end at {offs[-1]}, "
                               f"the blob holds {r1n} bytes")
        blob = bytes(mv[r1:r1 + r1n])
        return [blob[a:b] for a, b in zip(offs, offs[1:])]
    if not n:
        return []
    np = _np()
    code = flags >> F.COL_TYPE_SHIFT
    values = np.frombuffer(mv, F.FIXED_DTYPES[code], n, r0)
    if code == F.FX_DATE32:
        return list(np.asarray(values, "<i8").astype("M8[D]"))
    if values.dtype.kind in "Mm":
        return list(values)
    cells: list[Any] = values.tolist()
    return cells


def table_to_arrow(s: Any, info: Any, names: list[str]) -> Any:
    """The whole table as a ``pyarrow.Table``: O(columns) for zero-copy
    columns, plus the copies the module doc lists."""
    pa = require("pyarrow")
    return pa.table([column_to_arrow(s, info, c, name) for c, name in enumerate(names)],
                    names=names)


def to_pandas(arrow_table: Any) -> Any:
    """``arrow_table`` as a pandas DataFrame (pandas copies what it needs)."""
    require("pandas")
    return arrow_table.to_pandas()


def to_polars(arrow_table: Any) -> Any:
    """``arrow_table`` as a polars DataFrame (polars copies what it needs)."""
    return require("polars").from_arrow(arrow_table)


# -- data frames in: FRAME nodes (format 1.1, docs/format/nodes.md "Frame node") ------
# A frame is stored as its Arrow form: a record table with one column per
# Arrow column (format 1.1 kinds FIXED and BINARY where 1.0 has none), the
# values of dictionary (category) columns as one-column tables of their own,
# and the Arrow schema, which carries what the columns do not: time zones,
# dictionary types, the pandas metadata (index, dtypes) pyarrow writes.

_KINDS = ("pyarrow.Table", "pyarrow.RecordBatch", "pandas.DataFrame", "polars.DataFrame")


def _frame_kind(v: Any) -> str | None:
    t = type(v)
    top = t.__module__.partition(".")[0]
    import sys

    mod: Any = sys.modules.get(top)  # (the module of v's type: imported)
    if top == "pyarrow" and isinstance(v, mod.Table):
        return "pyarrow.Table"
    if top == "pyarrow" and isinstance(v, mod.RecordBatch):
        return "pyarrow.RecordBatch"
    if top == "pandas" and isinstance(v, mod.DataFrame):
        return "pandas.DataFrame"
    if top == "polars" and isinstance(v, mod.DataFrame):
        return "polars.DataFrame"
    return None


def frame_encoder(v: Any) -> Callable[[_Writer, Any], bytes] | None:
    """The writer's encoder for ``v`` if it is a data frame, else None."""
    return write_frame if _frame_kind(v) is not None else None


def _unsupported(name: str, what: str) -> UnsupportedTypeError:
    return UnsupportedTypeError(f"column {name!r}: {what}", path=name)


def _pandas_to_arrow(df: Any) -> Any:
    """A pandas DataFrame as Arrow, exactly: pyarrow's conversion (with the
    pandas metadata that restores index and dtypes), except that float
    columns keep their NaNs as values (pyarrow would make them nulls and
    give back only the canonical NaN), and object columns must hold only str
    (or only bytes) and None, which Arrow gives back as they were."""
    pa = require("pyarrow")
    np = _np()
    names = list(df.columns)
    if len(set(map(repr, names))) != len(names):
        raise UnsupportedTypeError("a data frame with duplicate column names cannot be archived")
    levels = [(f"index level {i}", df.index.get_level_values(i))
              for i in range(df.index.nlevels)]
    for name, col in [(name, df[name]) for name in names] + levels:
        if type(name) is not str:
            raise _unsupported(repr(name), "data frame column names must be str")
        if col.dtype == object:
            kinds = {type(x) for x in col.to_numpy()} - {type(None)}
            if not (kinds <= {str} or kinds <= {bytes}):
                raise _unsupported(name, f"an object column must hold only str or only bytes "
                                         f"(and None), not {sorted(k.__name__ for k in kinds)}")
    floats = {name for name in names
              if isinstance(df[name].dtype, np.dtype) and df[name].dtype.kind == "f"}
    try:
        # float columns are left out of pyarrow's conversion (which scans them
        # for NaNs to make nulls of) and added as they are, zero-copy
        table = pa.Table.from_pandas(df, preserve_index=None,
                                     columns=[name for name in names if name not in floats])
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise UnsupportedTypeError(f"this data frame has no exact Arrow form: {exc}") from None
    if floats:
        table = _floats_added(pa, df, names, floats, table)
    return table


def _floats_added(pa: Any, df: Any, names: list[str], floats: set[str], table: Any) -> Any:
    """``table`` (pyarrow's conversion of ``df`` but for its float columns)
    with the float columns' values added at their places, and the pandas
    metadata pyarrow writes for them (taken from a conversion of no rows)."""
    import json

    empty = pa.Table.from_pandas(df.iloc[:0][[n for n in names if n in floats]],
                                 preserve_index=False)
    meta = dict(table.schema.metadata)
    pandas_meta = json.loads(meta[b"pandas"])
    entries = iter(pandas_meta["columns"])  # the data columns' entries, then the index's
    float_entries = iter(json.loads(empty.schema.metadata[b"pandas"])["columns"])
    converted = iter(zip(table.schema, table.columns))  # the same order
    fields, columns, described = [], [], []
    for name in names:
        if name in floats:
            values = pa.array(df[name].to_numpy(), from_pandas=False)
            field, entry = pa.field(name, values.type), next(float_entries)
        else:
            (field, values), entry = next(converted), next(entries)
        fields.append(field)
        columns.append(values)
        described.append(entry)
    for field, values in converted:  # index columns
        fields.append(field)
        columns.append(values)
    pandas_meta["columns"] = described + list(entries)
    meta[b"pandas"] = json.dumps(pandas_meta).encode("utf8")
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=meta))


def _pandas_extras(df: Any) -> dict[str, Any]:
    """What pyarrow's pandas metadata does not restore: which columns had an
    ``ArrowDtype`` (not to come back as NumPy or ``StringDtype``), which
    index levels were of dtype object (not to come back as ``str``) and the
    index's ``freq``."""
    pd = require("pandas")
    arrow = [name for name in df.columns if isinstance(df[name].dtype, pd.ArrowDtype)]
    freq = getattr(df.index, "freqstr", None)
    objects = [i for i in range(df.index.nlevels)
               if df.index.get_level_values(i).dtype == object]
    return {"arrow_columns": arrow, "index_freq": freq, "object_index_levels": objects}


def _pandas_restored(df: Any, table: Any, extras: Any) -> Any:
    pd = require("pandas")
    if not isinstance(extras, dict):
        return df
    for name in extras.get("arrow_columns") or ():
        if name in df.columns:
            df[name] = pd.Series(pd.arrays.ArrowExtensionArray(table.column(name)),
                                 index=df.index, name=name)
    objects = extras.get("object_index_levels") or ()
    if objects and isinstance(df.index, pd.MultiIndex):
        df.index = df.index.set_levels([level.astype(object) if i in objects else level
                                        for i, level in enumerate(df.index.levels)])
    elif objects:
        df.index = df.index.astype(object)
    freq = extras.get("index_freq")
    if freq is not None:
        df.index.freq = freq
    return df


def _to_arrow_input(v: Any, kind: str) -> Any:
    pa = require("pyarrow")
    if kind == "pyarrow.Table":
        return v
    if kind == "pyarrow.RecordBatch":
        return pa.Table.from_batches([v])
    if kind == "pandas.DataFrame":
        return _pandas_to_arrow(v)
    pl = require("polars")
    try:
        return v.to_arrow(compat_level=pl.CompatLevel.oldest())
    except (pa.ArrowException, pl.exceptions.PolarsError) as exc:
        raise UnsupportedTypeError(f"this polars DataFrame has no Arrow form: {exc}") from None


def write_frame(w: _Writer, v: Any) -> bytes:
    """The slot of a FRAME node for the data frame ``v`` (format 1.1).
    Cost: one pass over the data (null masks and bools unpacked, values
    under nulls zeroed, string offsets checked and rebased to 0 if sliced);
    int, float and unsliced string buffers are written from the frame's
    memory, not copied first."""
    kind = _frame_kind(v)
    assert kind is not None  # (write_frame is the encoder of data frames only)
    table = _to_arrow_input(v, kind)
    names = table.column_names
    if not names:
        raise UnsupportedTypeError(f"a {kind} without columns cannot be archived", v)
    if len(set(names)) != len(names):
        raise UnsupportedTypeError(f"a {kind} with duplicate column names cannot be archived", v)
    table = table.unify_dictionaries()
    arrays = [_one_chunk(table.column(i)) for i in range(len(names))]
    pa = require("pyarrow")
    coded = [pa.types.is_dictionary(arr.type) for arr in arrays]
    dictionaries = [write_table(w, ["values"], [arr.dictionary])
                    for arr, is_coded in zip(arrays, coded) if is_coded]
    body = write_table(w, names, [arr.indices if is_coded else arr
                                  for arr, is_coded in zip(arrays, coded)])
    meta = {"frame": kind, "schema": table.schema.serialize().to_pybytes()}
    if kind == "pandas.DataFrame":
        meta["pandas"] = _pandas_extras(v)
    meta_slot = w.dict(meta)
    dicts = w.seq_node(F.T_LIST, dictionaries)
    w.minor = max(w.minor, F.VERSION_MINOR_FRAMES)
    return w.seq_node(F.T_FRAME, [meta_slot, body, dicts])


def _one_chunk(col: Any) -> Any:
    """A chunked column as one array: its only chunk as it is (no copy)."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def write_table(w: _Writer, names: list[str], arrays: list[Any]) -> bytes:
    """The slot of a TABLE node of the Arrow ``arrays`` (one per column, all
    of one length), laid out as docs/format/nodes.md "Table node" says."""
    n = len(arrays[0])
    columns = [_write_column(w, name, arr) for name, arr in zip(names, arrays)]
    key_slot = w.dict({name: i for i, name in enumerate(names)})
    off = w._pad(F.NODE_ALIGN)
    seg = w.seg
    seg += F.TABLE_HEADER.pack(n, len(names))
    seg += key_slot
    seg += b"".join(columns)
    return F.SLOT.pack(F.T_TABLE | n << 8, off)


def _bits(np: Any, buf: Any, offset: int, n: int) -> Any:
    """``n`` bits of an Arrow bitmap from bit ``offset``, a byte each."""
    return np.unpackbits(np.frombuffer(buf, np.uint8), bitorder="little")[offset:offset + n]


def _bytes_of(np: Any, a: Any) -> memoryview:
    return memoryview(np.ascontiguousarray(a).view(np.uint8))


def _string_regions(pa: Any, np: Any, arr: Any, name: str, text: bool) -> tuple[Any, memoryview]:
    """The u64 offsets (from 0) and the blob of a ``large_string`` /
    ``large_binary`` array without nulls, checked: offsets non-decreasing
    within the blob (in C), and for text, UTF-8 (an all-ASCII blob in one
    vectorised pass, else Arrow's full validation). Cost: O(n + bytes); the
    offsets are the array's own memory unless the array is a slice."""
    from ._native import ffi, offsets_check

    try:
        arr.validate()  # buffer sizes (O(1)): the offsets below lie within them
    except pa.ArrowException as exc:
        raise _unsupported(name, f"invalid strings: {exc}") from None
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], "<i8", n + 1, 8 * arr.offset) if n else np.zeros(1, "<i8")
    base, end = int(offsets[0]), int(offsets[-1])
    size = bufs[2].size if bufs[2] is not None else 0
    if not 0 <= base <= end <= size:
        raise _unsupported(name, f"invalid strings: offsets {base}..{end} outside the "
                                 f"{size} bytes of data")
    rebased = (offsets if base == 0 else offsets - base).view("<u8")
    with ffi.from_buffer("uint8_t[]", rebased) as p:
        rc = offsets_check(p, rebased.nbytes, 0, n + 1, end - base)
    if rc < 0:
        raise _unsupported(name, "invalid strings: offsets out of order")
    blob = memoryview(bufs[2])[base:end] if bufs[2] is not None else memoryview(b"")
    if text and not _ascii(np, blob):
        try:
            arr.validate(full=True)
        except pa.ArrowException as exc:
            raise _unsupported(name, f"invalid strings: {exc}") from None
    return rebased, blob


_HIGH_BITS = 0x8080808080808080


def _ascii(np: Any, blob: memoryview) -> bool:
    """Whether every byte of ``blob`` is below 0x80: one OR-reduction over
    its 8-byte words (no copy), then the tail."""
    raw = np.frombuffer(blob, np.uint8)
    whole = raw.size // 8 * 8
    words = raw[:whole].view(np.uint64)
    return not int(np.bitwise_or.reduce(words)) & _HIGH_BITS and \
        not (raw[whole:] >= 0x80).any()


def _write_column(w: _Writer, name: str, arr: Any) -> bytes:
    """Write one Arrow array's regions; return its 56-byte column descriptor."""
    pa = require("pyarrow")
    np = _np()
    n = len(arr)
    typ = arr.type
    mask = None
    if arr.null_count and typ.id != pa.null().id:
        mask = (1 - _bits(np, arr.buffers()[0], arr.offset, n)).astype(np.uint8)
    nulls = (w._append_bytes(_bytes_of(np, mask)), n) if mask is not None else (0, 0)
    flags = F.COL_HAS_NULLS if mask is not None else 0
    if pa.types.is_null(typ):  # SLOTS of None: sixteen zero bytes each
        return F.COLUMN.pack(F.COL_SLOTS, 0, w._append_bytes(bytes(16 * n)), 16 * n, 0, 0, 0, 0)
    if pa.types.is_boolean(typ):
        values = _bits(np, arr.buffers()[1], arr.offset, n)
        if mask is not None:
            values = np.where(mask != 0, 0, values).astype(np.uint8)
        at = w._append_bytes(_bytes_of(np, values), align=F.ARRAY_ALIGN)
        return F.COLUMN.pack(F.COL_BOOL, flags, at, n, *nulls, 0, 0)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or \
            pa.types.is_string_view(typ) or pa.types.is_binary(typ) or \
            pa.types.is_large_binary(typ) or pa.types.is_binary_view(typ):
        text = not (pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or
                    pa.types.is_binary_view(typ))
        arr = arr.cast(pa.large_string() if text else pa.large_binary())
        if mask is not None:
            arr = arr.fill_null("" if text else b"")
        offsets, blob = _string_regions(pa, np, arr, name, text)
        r0 = (w._append_bytes(_bytes_of(np, offsets)), 8 * (n + 1))
        r1 = (w._append_bytes(blob), len(blob))
        return F.COLUMN.pack(F.COL_STR if text else F.COL_BINARY, flags, *r0, *r1, *nulls)
    if pa.types.is_int64(typ) or pa.types.is_float64(typ):
        kind, width = (F.COL_INT64 if pa.types.is_int64(typ) else F.COL_FLOAT64), 8
    else:
        code = _fixed_code(pa, np, typ)
        if code is None:
            raise _unsupported(name, f"Arrow type {typ} has no record table column kind")
        kind, width = F.COL_FIXED, np.dtype(F.FIXED_DTYPES[code]).itemsize
        flags |= code << F.COL_TYPE_SHIFT
    raw = np.frombuffer(arr.buffers()[1], f"<u{width}")[arr.offset:arr.offset + n] if n else \
        np.zeros(0, f"<u{width}")
    if mask is not None:
        raw = np.where(mask != 0, 0, raw).astype(f"<u{width}")
    at = w._append_bytes(_bytes_of(np, raw), align=F.ARRAY_ALIGN)
    return F.COLUMN.pack(kind, flags, at, width * n, *nulls, 0, 0)


# -- data frames out ------------------------------------------------------------------

def _frame_parts(s: Any, off: int) -> list[int]:
    """(metadata dict, body table position, [dictionary table positions]) of
    the FRAME node at ``off``, each slot checked in C and of the right tag."""
    from ._native import archive_error, seq_get

    raw = s.raw
    pos = []
    for i, tag in enumerate((F.T_DICT, F.T_TABLE, F.T_LIST)):
        p = seq_get(s.ptr, s.size, off, i)
        if p < 0:
            raise archive_error(p, f"frame node at offset {off}")
        if F.SLOT.unpack_from(raw, p)[0] & 0xFF != tag:
            raise ArchiveError(f"frame node at offset {off}: item {i} is not a "
                               f"{F.TAG_NAMES[tag]}")
        pos.append(p)
    return pos


class _Frame:
    """What a FRAME node holds, decoded once per mapping (archives of one
    file share it, so it holds no view): its kind, Arrow schema, pandas
    extras, and where its body and dictionary tables are."""

    __slots__ = ("kind", "schema", "body_at", "dicts_at", "pandas", "indices_checked")
    kind: str
    schema: bytes
    body_at: tuple[int, int]
    dicts_at: list[tuple[int, int]]
    pandas: Any
    indices_checked: set[int]  # dictionary columns whose indices were checked in range

    def __init__(self, arch: Any, s: Any, off: int) -> None:
        from ._decode import to_python
        from .tables import ArchivedTable
        from .views import ArchivedList

        meta_pos, body_pos, dicts_pos = _frame_parts(s, off)
        w0, p = F.SLOT.unpack_from(s.raw, meta_pos)
        meta = to_python(arch, F.T_DICT, p, w0 >> 8)
        kind, schema = meta.get("frame"), meta.get("schema")
        if kind not in _KINDS or not isinstance(schema, bytes):
            raise ArchiveError(f"frame node at offset {off}: metadata names no known frame "
                               f"kind and Arrow schema")
        self.kind, self.schema = kind, schema
        self.pandas = meta.get("pandas")
        self.indices_checked = set()
        w0, p = F.SLOT.unpack_from(s.raw, body_pos)
        self.body_at = (p, w0 >> 8)
        w0, p = F.SLOT.unpack_from(s.raw, dicts_pos)

        self.dicts_at = []
        for item in ArchivedList(arch, p, w0 >> 8, F.T_LIST):
            if not isinstance(item, ArchivedTable):
                raise ArchiveError(f"frame node at offset {off}: a dictionary is not a table")
            self.dicts_at.append((item._off, item._n))

    def body(self, arch: Any) -> Any:
        from .tables import ArchivedTable

        return ArchivedTable(arch, *self.body_at, F.T_TABLE)

    def dictionaries(self, arch: Any) -> list[ArchivedTable]:
        from .tables import ArchivedTable

        return [ArchivedTable(arch, off, n, F.T_TABLE) for off, n in self.dicts_at]

    def arrow_schema(self) -> Any:
        pa = require("pyarrow")
        try:
            return pa.ipc.read_schema(pa.py_buffer(self.schema))
        except (pa.ArrowException, ValueError) as exc:
            raise ArchiveError(f"frame schema is not an Arrow schema: {exc}") from None


def _frame(arch: Any, off: int) -> _Frame:
    """The FRAME node at ``off`` of archive ``arch``, decoded once per mapping."""
    from ._snapshot import closed

    s = arch._snap
    if s is None:
        raise closed()
    key = ("frame", off)
    frame: _Frame | None = s.tables.get(key)
    if frame is None:
        frame = s.tables[key] = _Frame(arch, s, off)
    return frame


def frame_view(arch: Any, off: int) -> Any:
    """The lazy value of a FRAME slot of archive ``arch``: an ``ArchivedFrame``."""
    frame = _frame(arch, off)
    view = ArchivedFrame(arch, *frame.body_at, F.T_TABLE)
    view._frame_at = off
    return view


def frame_value(s: Any, off: int, depth: int) -> Any:
    """A FRAME node copied out on walk ``s``: the kind of data frame that was written."""
    if depth >= s.max_depth:
        raise ArchiveError(f"nesting deeper than max_depth={s.max_depth} at offset {off}")
    from ._snapshot import claim

    claim(s, off)
    if s.arch is None:  # a walk over a key dict or schema: no frame belongs there
        raise ArchiveError(f"frame node at offset {off} where only plain data can be")
    view = frame_view(s.arch, off)
    frame = view._frame()
    return arrow_to_frame(_owned(view.to_arrow()), frame.kind, frame.pandas)


def _owned(table: Any) -> Any:
    """A copy of ``table`` independent of the archive's buffer (one pass
    through an in-memory Arrow IPC stream), for copy-outs such as ``load``."""
    pa = require("pyarrow")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def frame_to_arrow(arch: Any, frame: _Frame) -> Any:
    """The frame's ``pyarrow.Table``, equal to the one written (types, schema
    metadata): the body's columns as ``to_arrow`` gives them, given the
    schema's types (time zones; ``string``/``binary`` offsets narrowed to 32
    bits, a copy), and dictionary columns rebuilt from their indices and
    values (indices checked in range once per mapping: O(n) the first time)."""
    from .views import snapshot_of

    pa = require("pyarrow")
    schema = frame.arrow_schema()
    body = frame.body(arch)
    s = snapshot_of(body)
    info = body._info(s)
    names = body.columns
    if names != schema.names:
        raise ArchiveError("frame schema does not name the frame's columns")
    dicts = iter(frame.dictionaries(arch))
    columns = []
    for c, (name, field) in enumerate(zip(names, schema)):
        typ = field.type
        try:
            if pa.types.is_dictionary(typ):
                values = next(dicts, None)
                if values is None:
                    raise ArchiveError(f"frame column {name!r} has no dictionary")
                dictionary = _typed_column(pa, s, values, values._info(s), 0, name,
                                           typ.value_type)
                indices = _typed_column(pa, s, body, info, c, name, typ.index_type)
                arr = pa.DictionaryArray.from_arrays(indices, dictionary, ordered=typ.ordered,
                                                     safe=c not in frame.indices_checked)
                frame.indices_checked.add(c)
            else:
                arr = _typed_column(pa, s, body, info, c, name, typ)
        except pa.ArrowException as exc:
            raise ArchiveError(f"frame column {name!r} does not match its schema: {exc}") \
                from None
        columns.append(arr)
    if next(dicts, None) is not None:
        raise ArchiveError("frame holds more dictionaries than dictionary columns")
    return pa.Table.from_arrays(columns, schema=schema)


def _typed_column(pa: Any, s: Any, table: Any, info: Any, c: int, name: str, typ: Any) -> Any:
    """Column ``c`` of the archived ``table`` as an Arrow array of type
    ``typ``: the null type from a SLOTS column of None cells, else the stored
    column given the type (``_as_type``)."""
    if pa.types.is_null(typ):
        if info.cols[c][0] != F.COL_SLOTS or \
                any(v is not None for v in table.column(info.names(s)[c])):
            raise ArchiveError(f"frame column {name!r} is not all None")
        return pa.nulls(info.nrows)
    return _as_type(pa, column_to_arrow(s, info, c, name), typ, name)


def _as_type(pa: Any, stored: Any, typ: Any, name: str) -> Any:
    """``stored`` given the schema's type: a view when only a time zone
    differs, a cast (a copy) for 32-bit string offsets or string views."""
    st = stored.type
    if st == typ:
        return stored
    if pa.types.is_timestamp(st) and pa.types.is_timestamp(typ) and st.unit == typ.unit:
        return stored.view(typ)
    if (pa.types.is_large_string(st) and (pa.types.is_string(typ) or
                                          pa.types.is_string_view(typ))) or \
            (pa.types.is_large_binary(st) and (pa.types.is_binary(typ) or
                                               pa.types.is_binary_view(typ))):
        return stored.cast(typ)
    raise ArchiveError(f"frame column {name!r} is stored as {st}, its schema says {typ}")


def arrow_to_frame(table: Any, kind: str, pandas_extras: Any = None) -> Any:
    """The Arrow ``table`` as the frame ``kind`` that was written."""
    if kind == "pyarrow.Table":
        return table
    if kind == "pyarrow.RecordBatch":
        return table.combine_chunks().to_batches()[0] if table.num_rows else \
            require("pyarrow").RecordBatch.from_pylist([], schema=table.schema)
    if kind == "pandas.DataFrame":
        require("pandas")
        return _pandas_restored(table.to_pandas(), table, pandas_extras)
    return require("polars").from_arrow(table)


_PLAIN_BOOLS_MAX = 16  # more inserted columns would leave pandas a fragmented frame


def _plain_bools(table: Any, info: Any, extras: Any) -> list[tuple[int, str, int]]:
    """(position among the data frame's columns, name, offset of the values)
    of each column of ``table`` that pandas gets as a NumPy bool array: a
    BOOL column of the body without nulls that the pandas metadata (if any)
    calls ``bool``; none if there are more than ``_PLAIN_BOOLS_MAX``."""
    import json

    raw = (table.schema.metadata or {}).get(b"pandas")
    try:
        meta = json.loads(raw) if raw is not None else None
        numpy_types = {e["field_name"]: e["numpy_type"] for e in meta["columns"]} \
            if meta is not None else None
        index = {i for i in meta["index_columns"] if isinstance(i, str)} if meta else set()
    except (ValueError, TypeError, KeyError):
        return []  # (pyarrow's own conversion reports such metadata)
    skip = set(extras.get("arrow_columns") or ()) if isinstance(extras, dict) else set()
    found = []
    position = 0
    for c, name in enumerate(table.column_names):
        if name in index:
            continue
        kind, flags = info.cols[c][:2]
        if kind == F.COL_BOOL and not flags & F.COL_HAS_NULLS and name not in skip and \
                (numpy_types is None or numpy_types.get(name) == "bool"):
            found.append((position, name, info.cols[c][2]))
        position += 1
    return found if len(found) <= _PLAIN_BOOLS_MAX else []


def _archived_frame_base() -> type:
    from .tables import ArchivedTable

    return ArchivedTable


if TYPE_CHECKING:
    _FrameBase = ArchivedTable
else:
    _FrameBase = _archived_frame_base()


class ArchivedFrame(_FrameBase):
    """A data frame in an archive (a FRAME node, format 1.1): an
    ``ArchivedTable`` of its stored columns (rows, ``column()``, zero-copy
    ``column(name, arrow=True)``) whose ``to_arrow()``, ``to_pandas()``,
    ``to_polars()`` and ``to_python()`` give back the frame as written
    (``to_python()``: the same kind of object)."""

    __slots__ = ("_frame_at",)
    _frame_at: int  # offset of the FRAME node

    def _frame(self) -> _Frame:
        return _frame(self._arch, self._frame_at)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by reference: its archive's and its FRAME node's offset."""
        from .views import view_reduce

        return view_reduce(self, frame_view, self._frame_at)

    @property
    def frame_kind(self) -> str:
        """What was written: ``pandas.DataFrame``, ``polars.DataFrame``,
        ``pyarrow.Table`` or ``pyarrow.RecordBatch``."""
        return self._frame().kind

    def to_arrow(self) -> Any:
        """The frame as the ``pyarrow.Table`` it was written as (its schema,
        metadata included). Zero-copy as ``ArchivedTable.to_arrow``, plus a
        copy of 32-bit string offsets."""
        return frame_to_arrow(self._arch, self._frame())

    def to_pandas(self) -> Any:
        """The frame as a pandas DataFrame (pyarrow's conversion, which uses
        the pandas metadata of a frame written from pandas), except that
        NumPy bool columns without nulls are copied from the archive's
        byte-per-row values (a memcpy, where Arrow unpacks bits)."""
        from .views import snapshot_of

        frame = self._frame()
        table = self.to_arrow()
        s = snapshot_of(self)
        bools = _plain_bools(table, self._info(s), frame.pandas)
        if not bools:
            return arrow_to_frame(table, "pandas.DataFrame", frame.pandas)
        np = _np()
        df = arrow_to_frame(table.drop_columns([name for _, name, _ in bools]),
                            "pandas.DataFrame", frame.pandas)
        for position, name, r0 in bools:  # (checked to hold 0 and 1 by to_arrow)
            # (insert copies the values: the frame owns them, writable)
            df.insert(position, name, np.frombuffer(s.mv, np.bool_, table.num_rows, r0))
        return df

    def to_polars(self) -> Any:
        """The frame as a polars DataFrame."""
        return require("polars").from_arrow(self.to_arrow())

    def to_python(self) -> Any:
        """The frame as the kind of object that was written."""
        frame = self._frame()
        return arrow_to_frame(self.to_arrow(), frame.kind, frame.pandas)

    def __repr__(self) -> str:
        return f"<ArchivedFrame {self._n} rows ({self._frame().kind})>"
