"""The writer: lays Python values out as archive nodes (docs/format/;
the choices it makes are docs/format/canonical-form.md).

Values are written children first, so every node's offset is below its
parent's. Small nodes are appended to a growing ``bytearray`` segment; big
byte payloads (array data, large ``bytes``) become pieces of their own that
reference the caller's memory, so ``dump`` streams them to the file without a
copy. Each encoder returns the 16-byte slot that names the value. In an
uncompressed archive the data of the large arrays a bounded scan finds
(``_bulk``) is laid out first, so the nodes sit together at the end.
"""
from __future__ import annotations

import datetime as _dt
import enum
import errno
import os
import stat
import sys
from array import array
from contextlib import nullcontext
from functools import reduce
from itertools import accumulate, chain, repeat
from operator import attrgetter, iadd, is_, itemgetter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:
    import builtins  # (_Writer's methods bytes, str, int and dict shadow the builtins in it)
    import decimal
    import uuid
    from typing import TypeAlias, TypeGuard

    import numpy as np
    import numpy.typing as npt
    from pydantic import BaseModel

    from ._output import Piece
    from .framing import Block

    _Part: TypeAlias = "_ColumnBuilder | _ReadyColumn"  # a table column being written

from . import _cells, _pytable
from . import format as F
from ._limits import gc_paused, recursion_headroom
from ._native import build_dict_index
from .errors import NestingError, UnsupportedTypeError

_SLOT = F.SLOT.pack
_SLOT_FLOAT = F.SLOT_FLOAT.pack
_SLOT_SHORT = F.SLOT_SHORT.pack
_U64 = F.U64.pack
_DICT_HEADER = F.DICT_HEADER.pack
_NDARRAY_HEADER = F.NDARRAY_HEADER.pack
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_NONE = _SLOT(F.T_NONE, 0)
_TRUE = _SLOT(F.T_TRUE, 0)
_FALSE = _SLOT(F.T_FALSE, 0)
_EPOCH = _dt.datetime(1, 1, 1)
_ZERO = b"\0" * 64


class _Failure(Exception):
    """Internal: carries an UnsupportedTypeError or a NestingError up while the
    path is rebuilt."""

    container: Any  # the object whose child failed (set on the way up)


_LOCATED = (UnsupportedTypeError, NestingError, _Failure)  # errors given a path on the way up


class _Writer:
    __slots__ = ("seg", "base", "pieces", "active", "max_depth", "external", "payloads",
                 "schemas", "model_depth", "minor", "cell_kinds", "bulk", "root")

    def __init__(self, max_depth: int, external: bool = False) -> None:
        self.seg = bytearray(F.HEADER_SIZE)  # header placeholder, filled by framing
        self.base = 0
        self.pieces: list[Piece] = []
        self.active: set[int] = set()
        self.max_depth = max_depth
        # external: big payloads (array data, large bytes) are kept out of the
        # nodes and compressed as payloads of their own; nodes name them by number
        self.external = external
        self.payloads: list[Piece] = []
        self.schemas: dict[type, bytes] = {}  # model class -> slot of its schema node
        self.model_depth = 0  # > 0 while writing model fields (enums allowed there)
        self.minor = 0  # the format minor version the content needs (1: a 1.1 dtype form, a frame)
        self.cell_kinds: builtins.dict[type, Any] | None = None  # the C cell encoder's types (_cells)
        # key -> [(array, flags, data_off), ...]: element data laid out first (bulk_first),
        # one entry per time the scan met it; the key is id(array), or (id(archive
        # buffer), node offset) for an archived array
        self.bulk: builtins.dict[Any, list[tuple[Any, int, int]]] = {}
        self.root = b""  # the root's slot, once written

    # -- layout primitives -------------------------------------------------
    def _pad(self, align: int) -> int:
        """Pad the segment so the next byte is ``align``-aligned; return its offset."""
        seg = self.seg
        pad = -(self.base + len(seg)) % align
        if pad:
            seg += _ZERO[:pad]
        return self.base + len(seg)

    def _append_bytes(self, data: Piece, align: int = F.NODE_ALIGN, inline: bool = False) -> int:
        """Append raw bytes at an ``align``-aligned offset, padded to 8; return the offset."""
        off = self._pad(align)
        n = len(data)
        if n >= F.BIG_PAYLOAD and not inline:
            self.pieces.append(self.seg)
            self.pieces.append(data)
            end = off + n
            pad = -end % F.NODE_ALIGN
            self.seg = bytearray(pad)
            self.base = end
        else:
            self.seg += data
            pad = -n % F.NODE_ALIGN
            if pad:
                self.seg += _ZERO[:pad]
        return off

    def _external_payload(self, data: Piece) -> int:
        """Keep ``data`` out of the nodes; return its payload number (1, 2, ...)."""
        self.payloads.append(data)
        return len(self.payloads)

    def bulk_first(self, arrays: list[tuple[Any, npt.NDArray[Any]]]) -> None:
        """Lay out the element data of ``arrays`` ((key, array) pairs from
        ``_bulk``) before any node; their NDARRAY nodes, written later, name
        it. Cost: no copy of a contiguous array (its memory becomes a piece
        of the output)."""
        for key, a in arrays:
            raw, flags = _element_bytes(a)
            laid = (a, flags, self._append_bytes(raw, align=F.ARRAY_ALIGN))
            self.bulk.setdefault(key, []).append(laid)

    def finish(self, root_slot: bytes) -> tuple[list[Piece], int]:
        """The pieces of the nodes image (the first 64 bytes left for the
        header) and the offset where the nodes end."""
        nodes_end = self._pad(F.NODE_ALIGN)
        self.pieces.append(self.seg)
        return self.pieces, nodes_end

    # -- values --------------------------------------------------------------
    def value(self, v: Any) -> bytes:
        enc = _ENCODERS.get(type(v))
        if enc is None:
            enc = _encoder_for_other(v)
        return enc(self, v)

    def _enter(self, v: Any) -> int:
        key = id(v)
        active = self.active
        if key in active:
            raise NestingError(f"reference cycle: a {type(v).__name__} contains itself", v)
        if len(active) >= self.max_depth:
            raise NestingError(f"nesting deeper than max_depth={self.max_depth}", v)
        active.add(key)
        return key

    def seq_node(self, tag: int, slots: list[bytes] | bytes) -> bytes:
        """A sequence node of ``slots`` (a list of slots, or their bytes joined)."""
        off = self._pad(F.NODE_ALIGN)
        if isinstance(slots, list):
            n = len(slots)
            slots = b"".join(slots)
        else:
            n = len(slots) >> 4
        seg = self.seg
        seg += _U64(n)
        seg += slots
        return _SLOT(tag | n << 8, off)

    def sequence(self, v: Sequence[Any], tag: int, owner: Any = None) -> bytes:
        """A list/tuple/set node of ``v``'s items; ``owner`` is the object
        errors are reported against when ``v`` is a temporary (sorted sets)."""
        owner = v if owner is None else owner
        if tag == F.T_LIST and len(v) >= F.TABLE_MIN_ROWS and owner is v:
            first = type(v[0])
            if first is dict:
                slot = self.table(v)
                if slot is not None:
                    return slot
            elif _is_model_class(first) and set(map(type, v)) == {first}:
                slot = self.model_table(v, first)
                if slot is not None:
                    return slot
        key = self._enter(owner)
        try:
            slots: list[bytes] | bytes | None = None
            if len(v) >= _pytable.NATIVE_MIN:  # the common item types encoded in C
                slots = _cells.encode(self, v if type(v) is list else list(v))
            if slots is None:
                enc = self.value
                slots = [enc(x) for x in v]
        except _LOCATED as exc:
            raise _located(exc, owner, _index_of(v, exc, owner)) from None
        finally:
            self.active.discard(key)
        return self.seq_node(tag, slots)

    def dict(self, v: dict[Any, Any]) -> bytes:
        ident = self._enter(v)
        try:
            enc = self.value
            try:
                vslots = [enc(x) for x in v.values()]
            except _LOCATED as exc:
                raise _located(exc, v, _key_of(v, exc, values=True)) from None
            try:
                kslots = [self.key(k) for k in v]
            except _LOCATED as exc:
                raise _located(exc, v, _key_of(v, exc, values=False)) from None
        finally:
            self.active.discard(ident)
        n = len(vslots)
        off = self._pad(F.NODE_ALIGN)
        nbuckets = _nbuckets(n)
        width = 4 if n < 0xFFFFFFFF else 8
        seg = self.seg
        seg += _DICT_HEADER(n, nbuckets, width, 0)
        seg += b"".join(chain.from_iterable(zip(kslots, vslots)))
        index_len = nbuckets * width
        seg += bytes(index_len + (-index_len % F.NODE_ALIGN))
        if n:
            build_dict_index(seg, self.base, off)
        return _SLOT(F.T_DICT | n << 8, off)

    # -- pydantic models (bfast_archive/models.py) --------------------------------
    def schema(self, cls: type[BaseModel]) -> bytes:
        """The slot of ``cls``'s schema node, written once per archive."""
        slot = self.schemas.get(cls)
        if slot is None:
            from .models import schema_of

            slot = self.schemas[cls] = self.dict(schema_of(cls))
        return slot

    def model(self, v: Any) -> bytes:
        """A MODEL node: [schema, dict of the field values]."""
        from .models import is_root_model, model_fields

        self.model_depth += 1
        if is_root_model(type(v)):  # its root value, as model_dump gives it
            try:
                return self.value(model_fields(v)["root"])
            finally:
                self.model_depth -= 1
        schema = self.schema(type(v))
        try:
            body = self.dict(model_fields(v))
        except _Failure as exc:
            exc.container = v
            raise
        except NestingError as exc:  # raised entering the field dict: it stands for ``v``
            exc.value = v
            raise
        finally:
            self.model_depth -= 1
        return self.seq_node(F.T_MODEL, [schema, body])

    def model_table(self, rows: Sequence[Any], cls: type[BaseModel]) -> bytes | None:
        """A list of instances of one model class: [schema, record table]."""
        from .models import dumped, is_root_model, model_fields

        if is_root_model(cls):
            return None  # a list of their root values
        schema = self.schema(cls)
        self.model_depth += 1
        try:
            if dumped(cls):  # the rows as model_dump gives them (models.model_fields)
                body = self.table(list(map(model_fields, rows)), owner=rows)
            else:
                body = self.table(rows, owner=rows, dicts=_INSTANCE_DICT,
                                  fields=tuple(cls.model_fields))
        finally:
            self.model_depth -= 1
        return None if body is None else self.seq_node(F.T_MODEL, [schema, body])

    # -- record tables (docs/format/nodes.md, "Table node") -------------------------
    def table(self, rows: Sequence[Any], owner: Any = None,
              dicts: Callable[[Any], builtins.dict[str, Any]] | None = None,
              fields: tuple[str, ...] = ()) -> bytes | None:
        """Lay out a list of dicts with the same str keys in the same order as
        a table: one key dict, one column per key. None if ``rows`` is not
        such a list (it then takes the generic layout, so nothing is lost).
        Model instances: ``dicts`` maps one to its ``__dict__``, and the
        table is of their field dicts (``fields``, in field order; what
        ``models.model_fields`` gives for one instance).

        The rows are taken in blocks of _BLOCK: each block is checked, split
        into its columns and each column's block converted
        (``_ColumnBuilder``) while the block's objects are still in the CPU
        caches (one pass over the whole list per step is bound by memory
        latency, several times slower)."""
        keys = tuple(rows[0]) if dicts is None else fields
        if not keys or any(type(k) is not str for k in keys):
            return None
        with gc_paused() if len(rows) > _BLOCK else _NO_PAUSE:
            # (the temporaries are acyclic: no collections over them)
            parts: Sequence[_Part] | None = None
            if len(rows) >= _pytable.NATIVE_MIN:
                parts = self._native_columns(rows if dicts is None else list(map(dicts, rows)),
                                             keys, self.model_depth > 0)
            if parts is None:
                builders = [_ColumnBuilder(self.model_depth > 0) for _ in keys]
                if not self._table_blocks(rows, dicts, keys, builders):
                    return None
                parts = builders
        return self.table_node(len(rows), keys, parts, rows if owner is None else owner)

    def table_node(self, nrows: int, keys: tuple[str, ...], parts: Sequence[_Part], owner: Any
                   ) -> bytes:
        """Write a table's columns (``parts``: a _ColumnBuilder or _ReadyColumn
        per key), its key dict and its node; errors name ``owner``'s rows."""
        ident = self._enter(owner)
        try:
            columns = []
            for name, part in zip(keys, parts):
                try:
                    columns.append(part.finish(self))
                except _LOCATED as exc:
                    cells = part.cells()
                    row = _index_of(cells, exc, cells)
                    inner = _located(exc, None, f"[{name!r}]")
                    raise _located(inner, owner, row) from None
            key_slot = self.dict({name: i for i, name in enumerate(keys)})
        finally:
            self.active.discard(ident)
        off = self._pad(F.NODE_ALIGN)
        seg = self.seg
        seg += F.TABLE_HEADER.pack(nrows, len(keys))
        seg += key_slot
        seg += b"".join(columns)
        return _SLOT(F.T_TABLE | nrows << 8, off)

    @staticmethod
    def _native_columns(rows: Sequence[Any], keys: tuple[str, ...], in_model: bool
                        ) -> list[_Part] | None:
        """The columns of a table of dicts (plain, or model instances'
        ``__dict__``) converted in C (csrc/pytable.c) where it can: a
        _ReadyColumn, or a _ColumnBuilder given the column's cells as one
        block (datetimes, enums, nested values...). None if the C core
        cannot say, e.g. a ``__dict__`` with other keys or order than the
        fields (then ``_table_blocks`` decides)."""
        converted = _pytable.table_columns(rows, keys)
        if converted is None:
            return None
        parts: list[_Part] = []
        for result in converted:
            if isinstance(result, tuple):  # (exact tuples and lists from C)
                parts.append(_ReadyColumn(result))
            else:
                builder = _ColumnBuilder(in_model)
                builder.add(result)
                parts.append(builder)
        return parts

    @staticmethod
    def _table_blocks(rows: Sequence[Any], dicts: Callable[[Any], builtins.dict[str, Any]] | None,
                      keys: tuple[str, ...], builders: list[_ColumnBuilder]) -> bool:
        """Feed ``rows`` to the column builders block by block; False as soon
        as a row is not a dict with the keys of the first (see ``table``)."""
        same_keys = keys.__eq__
        # model instances: their field values by name (a field dict has the
        # fields in field order, whatever the __dict__'s order or extras)
        getters = [itemgetter(name) for name in keys] if dicts is not None else []
        columns: Iterable[list[Any]]
        for start in range(0, len(rows), _BLOCK):
            block = rows[start:start + _BLOCK]
            if dicts is not None:
                block = list(map(dicts, block))
                try:
                    columns = [list(map(get, block)) for get in getters]
                except KeyError:  # a field missing: the generic layout reports it
                    return False
            elif set(map(type, block)) != _DICT_ONLY:
                return False
            elif all(map(same_keys, map(tuple, block))):
                # every row's values are in the order of ``keys``: transpose the block
                columns = map(list, zip(*map(dict.values, block)))
            else:
                return False
            for builder, cells in zip(builders, columns):
                builder.add(cells)
        return True

    def column(self, cells: list[Any]) -> bytes:
        """Write one column's regions; return its 56-byte descriptor: the
        column kind its cells allow (``_ColumnBuilder`` given one block)."""
        builder = _ColumnBuilder(self.model_depth > 0)
        builder.add(cells)
        return builder.finish(self)

    def slots_column(self, cells: list[Any]) -> bytes:
        """A SLOTS column: one slot per cell, any value (the common cell
        types encoded in C, ``_cells``)."""
        slots = _cells.encode(self, cells) if len(cells) >= _pytable.NATIVE_MIN else None
        if slots is None:
            enc = self.value
            slots = b"".join([enc(x) for x in cells])
        return F.COLUMN.pack(F.COL_SLOTS, 0, self._append_bytes(slots), len(slots), 0, 0, 0, 0)

    def key(self, k: Any) -> bytes:
        t = type(k)
        if t is str:
            return self.str(k)
        if t is int:
            return self.int(k)
        if t is bytes:
            return self.bytes(k, inline=True)
        if self.model_depth and isinstance(k, enum.Enum):  # as an enum value is written
            return self.key(k.value)
        raise UnsupportedTypeError(
            f"unsupported dict key type {t.__qualname__}: keys must be str, int or bytes", k)

    def str(self, v: builtins.str) -> bytes:
        b = v.encode("utf-8", "surrogatepass")
        n = len(b)
        if n <= F.SMALL_MAX:
            return _SLOT_SHORT(F.T_SSTR | n << 8, b)
        return _SLOT(F.T_STR | n << 8, self._append_bytes(b, inline=True))

    def bytes(self, v: builtins.bytes | bytearray | memoryview, inline: bool = False
              ) -> builtins.bytes:
        n = len(v)
        if n <= F.SMALL_MAX:
            return _SLOT_SHORT(F.T_SBYTES | n << 8, bytes(v))
        data = v if type(v) is bytes else memoryview(v)
        if self.external and n >= F.BIG_PAYLOAD and not inline:
            return _SLOT(F.T_XBYTES | n << 8, self._external_payload(data))
        return _SLOT(F.T_BYTES | n << 8, self._append_bytes(data, inline=inline))

    def int(self, v: builtins.int) -> builtins.bytes:
        if _INT_MIN <= v <= _INT_MAX:
            return _SLOT(F.T_INT, v)
        raw = v.to_bytes(v.bit_length() // 8 + 1, "little", signed=True)
        return _SLOT(F.T_BIGINT | len(raw) << 8, self._append_bytes(raw, inline=True))

    def tuple_node(self, tag: builtins.int, fields: list[Any]) -> builtins.bytes:
        """A fixed-shape node (datetime, complex, ...) whose fields are plain values."""
        return self.seq_node(tag, [self.value(x) for x in fields])

    def ndarray(self, a: npt.NDArray[Any], key: Any = None) -> builtins.bytes:
        """An NDARRAY node of ``a``, its data laid out here unless
        ``bulk_first`` did (found by ``key``, default ``id(a)``)."""
        if a.dtype.hasobject:
            raise UnsupportedTypeError("object arrays cannot be archived", a)
        if a.dtype.itemsize == 0:
            raise UnsupportedTypeError(f"arrays of zero-size dtype {a.dtype} cannot be archived", a)
        descr = self._descr(a.dtype, a).encode()
        laid = self.bulk.get(id(a) if key is None else key)
        if laid and laid[0][0] is a:
            _, flags, data_off = laid.pop(0)
        else:
            raw, flags = _element_bytes(a)
            if self.external and a.nbytes >= F.BIG_PAYLOAD:
                data_off = self._external_payload(raw)
                flags |= F.NDARRAY_EXTERNAL
            else:
                data_off = self._append_bytes(raw, align=F.ARRAY_ALIGN)
        off = self._pad(F.NODE_ALIGN)
        seg = self.seg
        seg += _NDARRAY_HEADER(data_off, a.nbytes, a.ndim, flags, len(descr))
        seg += descr + _ZERO[: -len(descr) % F.NODE_ALIGN]
        seg += b"".join(_U64(d) for d in a.shape)
        return _SLOT(F.T_NDARRAY, off)

    def npscalar(self, v: np.generic) -> builtins.bytes:
        if v.dtype.hasobject:
            raise UnsupportedTypeError("numpy object scalars cannot be archived", v)
        if v.dtype.itemsize == 0 and v.dtype.kind not in "US":
            raise UnsupportedTypeError(f"numpy scalars of zero-size dtype {v.dtype} "
                                       f"cannot be archived", v)
        raw = v.tobytes() if v.dtype.itemsize else b""  # NumPy pads an empty str_'s bytes
        if _x87_padded(v.dtype):
            raw = b"".join(raw[i:i + 10] + bytes(6) for i in range(0, len(raw), 16))
        return self.tuple_node(F.T_NPSCALAR, [self._descr(v.dtype, v), raw])

    def _descr(self, dtype: np.dtype, value: Any) -> builtins.str:
        """The dtype descriptor of ``value``'s ``dtype``; notes a 1.1 form in
        ``minor``."""
        from .dtypes import descr_minor, dtype_to_descr

        try:
            descr = dtype_to_descr(dtype)
        except UnsupportedTypeError as exc:
            raise UnsupportedTypeError(str(exc), value) from None
        if self.minor < 1:
            self.minor = descr_minor(descr)
        return descr


def _element_bytes(a: npt.NDArray[Any]) -> tuple[memoryview, int]:
    """The element data of ``a`` as stored (C order, or Fortran order for a
    Fortran-contiguous array: the flag says which) and its FORTRAN flag.
    Cost: no copy for a contiguous array; a non-contiguous one is copied."""
    import numpy as np

    flags = 0
    if a.flags.c_contiguous:
        flat = a.reshape(-1)
    elif a.flags.f_contiguous:
        flat = a.T.reshape(-1)
        flags = F.NDARRAY_FORTRAN
    elif a.dtype.fields is not None:
        # a structured copy leaves padding bytes uninitialised: start from zeros
        flat = np.zeros(a.shape, a.dtype)
        flat[...] = a
        flat = flat.reshape(-1)
    else:
        flat = np.ascontiguousarray(a).reshape(-1)
    if _x87_padded(a.dtype):
        flat = flat.copy()  # the 6 padding bytes of each value: zeros, not garbage
        flat.view(np.uint8).reshape(-1, 16)[:, 10:] = 0
    return flat.view(np.uint8).data, flags


def _x87_padded(dtype: np.dtype) -> bool:
    """True for a native long double (or its complex) stored as x87 80-bit
    values in 16 bytes: each value's last 6 bytes are padding that NumPy
    leaves uninitialised, so the writer zeroes them (equal arrays, equal
    archives). Other long double formats have no padding."""
    import numpy as np

    return (dtype.fields is None and dtype.type in (np.longdouble, np.clongdouble)
            and dtype.isnative and dtype.itemsize % 16 == 0
            and np.finfo(np.longdouble).nmant == 63)


_BLOCK = 2048  # rows per block of a table: a block's objects stay in the CPU caches
_NO_PAUSE = nullcontext()
_DICT_ONLY = {dict}
_NONE_TYPE = type(None)
_INSTANCE_DICT = attrgetter("__dict__")
_TZINFO = attrgetter("tzinfo")
_FOLD = attrgetter("fold")
_ENUM_VALUE = attrgetter("_value_")
_MICROSECOND = _dt.timedelta(microseconds=1)
_K_GENERAL: int  # (C constants, as are the others)
_K_GENERAL, _K_INT, _K_FLOAT, _K_BOOL = F.WK_GENERAL, F.WK_INT, F.WK_FLOAT, F.WK_BOOL
_K_DATETIME, _K_STR, _K_STRLIST, _K_ENUM = F.WK_DATETIME, F.WK_STR, F.WK_STRLIST, F.WK_ENUM
_KINDS: dict[type, int] = {int: _K_INT, float: _K_FLOAT, bool: _K_BOOL, _dt.datetime: _K_DATETIME,
                          str: _K_STR, list: _K_STRLIST}


# (typeshed gives __reduce__ object's type, str | tuple: a datetime's is a tuple)
_EPOCH_STATE: bytes = _EPOCH.__reduce__()[1][0]  # type: ignore[assignment]


def _micros_from_states(states: bytes) -> npt.NDArray[np.int64]:
    """Microseconds since 0001-01-01 of naive datetimes given by their pickle
    states (10 bytes each: year (2, big-endian), month, day, hour, minute,
    second, microsecond (3, big-endian)), as a NumPy int64 array: the days
    by the civil-from-days algorithm (H. Hinnant), counted from 0000-03-01."""
    import numpy as np

    a = np.frombuffer(states, np.uint8).reshape(-1, 10).astype(np.int64)
    year = (a[:, 0] << 8) | a[:, 1]
    month = a[:, 2]
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + a[:, 3] - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 306
    seconds = ((days * 24 + a[:, 4]) * 60 + a[:, 5]) * 60 + a[:, 6]
    micros: npt.NDArray[np.int64] = \
        seconds * 1_000_000 + ((a[:, 7] << 16) | (a[:, 8] << 8) | a[:, 9])
    return micros


_NUMPY_MIN = 512  # below this many cells NumPy's per-call costs outweigh its speed


def _offsets(lengths: array[int]) -> memoryview:
    """The running sums 0, l0, l0+l1, ... of ``lengths`` (native uint64): in
    one NumPy call when NumPy is loaded and they are many, else one pass of
    accumulate."""
    np = sys.modules.get("numpy")
    if np is None or len(lengths) < _NUMPY_MIN:
        return memoryview(array("Q", accumulate(lengths, initial=0))).cast("B")
    out = np.zeros(len(lengths) + 1, np.uint64)
    np.cumsum(np.frombuffer(lengths, np.uint64), out=out[1:])
    return memoryview(out).cast("B")


class _Strings:
    """A string column's offsets and UTF-8 blob, built block by block (the
    same bytes whatever the blocks). The strings' byte lengths are collected block by block (while the
    strings are in the CPU cache), their running sums taken at the end."""

    __slots__ = ("lengths", "parts")

    def __init__(self) -> None:
        self.lengths = array("Q")
        self.parts: list[bytes] = []

    def add(self, texts: list[str]) -> None:
        joined = "".join(texts)
        if joined.isascii():  # byte lengths are character counts
            self.lengths.fromlist(list(map(len, texts)))
            self.parts.append(joined.encode("ascii"))
        else:
            encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
            self.lengths.fromlist(list(map(len, encoded)))
            self.parts.append(b"".join(encoded))

    def finish(self) -> tuple[memoryview, bytes]:
        """The offsets region (count + 1 uint64) and the UTF-8 blob."""
        return _offsets(self.lengths), b"".join(self.parts)


class _ColumnBuilder:
    """One column of a record table, fed block by block (``add``), written by
    ``finish``: the same bytes whatever the blocks.

    The first block's cell type picks the column kind; each block is
    converted (numbers to an array, strings to offsets + blob, ...) when it
    comes in. A block that does not fit the kind (another type, an int
    beyond 64 bits, an aware datetime, ...) turns the builder general: it
    then only keeps the cells, and ``finish`` decides again on the whole
    column (one block), or writes a SLOTS column if that one block does not
    fit a kind."""

    __slots__ = ("blocks", "kind", "type", "in_model", "nulls", "mask", "data", "strings",
                 "rows_at", "values")
    strings: _Strings  # STR, STRLIST
    rows_at: array[int]  # STRLIST
    # The next two take the form the kind needs: ``data`` a bytearray (BOOL)
    # or an array("q" / "d") (INT, DATETIME / FLOAT); ``values`` a list of
    # pickle states or None (DATETIME), or the builder of the values (ENUM).
    data: Any
    values: Any

    def __init__(self, in_model: bool) -> None:
        self.blocks: list[list[Any]] = []
        self.kind: int | None = None  # decided by the first block
        self.type: type | None = None
        self.in_model = in_model  # enums are stored as their values (model fields)
        self.nulls = False
        self.mask = bytearray()

    def cells(self) -> list[Any]:
        blocks = self.blocks
        return blocks[0] if len(blocks) == 1 else list(chain.from_iterable(blocks))

    def add(self, cells: list[Any]) -> None:
        self.blocks.append(cells)
        kind = self.kind
        if kind == _K_GENERAL:
            return
        types: set[type] | list[type | None]
        if kind is None:
            types = set(map(type, cells))
            nulls = _NONE_TYPE in types
            if nulls:
                types.discard(_NONE_TYPE)
            kind = self._start(types, len(cells))
            if kind == _K_GENERAL:
                return
        else:
            # every cell of the kind's exact type, or None (counting identical
            # types costs less than hashing them into a set)
            types = list(map(type, cells))
            same = types.count(self.type)
            nulls = same != len(cells)
            if nulls and same + types.count(_NONE_TYPE) != len(cells):
                self.kind = _K_GENERAL
                return
        if nulls:
            if kind == _K_STRLIST:
                self.kind = _K_GENERAL
                return
            self.nulls = True
            self.mask += bytes(map(is_, cells, repeat(None)))
        else:
            self.mask += bytes(len(cells))
        if kind == _K_STR:
            self.strings.add([("" if x is None else x) for x in cells] if nulls else cells)
        elif kind == _K_INT or kind == _K_FLOAT or kind == _K_BOOL:
            values = [0 if x is None else x for x in cells] if nulls else cells
            try:
                if kind == _K_BOOL:
                    self.data += bytes(values)
                else:
                    self.data.fromlist(values)
            except OverflowError:  # an int beyond 64 bits: per-cell slots
                self.kind = _K_GENERAL
        elif kind == _K_DATETIME:
            if cells[0] is not None and cells[0].tzinfo is not None:
                self.kind = _K_GENERAL  # aware: per-cell nodes (found below too, at more cost)
                return
            if self.values is not None:  # NumPy is loaded: pickle states, decoded in bulk
                # a naive datetime's state tuple is (10 bytes,), an aware one's
                # (10 bytes, tzinfo): joining the last items fails for the latter
                try:
                    states = b"".join([_EPOCH_STATE if x is None else x.__reduce__()[1][-1]
                                       for x in cells] if nulls
                                      else [x.__reduce__()[1][-1] for x in cells])
                except TypeError:
                    self.kind = _K_GENERAL
                    return
                if any(map(_FOLD, filter(None, cells)) if nulls else map(_FOLD, cells)):
                    self.kind = _K_GENERAL
                    return
                self.values.append(states)
                return
            if nulls:
                naive = all(x is None or (x.tzinfo is None and not x.fold) for x in cells)
            else:
                naive = all(map(is_, map(_TZINFO, cells), repeat(None))) \
                    and not any(map(_FOLD, cells))
            if not naive:
                self.kind = _K_GENERAL
                return
            epoch, micro = _EPOCH, _MICROSECOND
            self.data.fromlist([0 if x is None else (x - epoch) // micro for x in cells]
                               if nulls else [(x - epoch) // micro for x in cells])
        elif kind == _K_STRLIST:
            flat: list[Any] = reduce(iadd, cells, [])  # the cells are lists (checked): extend in C
            if list(map(type, flat)).count(str) != len(flat):
                self.kind = _K_GENERAL
                return
            self.rows_at.fromlist(list(map(len, cells)))  # items per row, summed at the end
            self.strings.add(flat)
        else:  # _K_ENUM: a column of the members' values
            self.values.add([None if x is None else x._value_ for x in cells] if nulls
                            else list(map(_ENUM_VALUE, cells)))

    def _start(self, types: set[type], n: int) -> int:
        """Pick the kind from the first block's types (None excluded) and
        size ``n``."""
        if len(types) != 1:
            self.kind = _K_GENERAL
            return _K_GENERAL
        t = self.type = types.pop()
        kind = _KINDS.get(t)
        if self.in_model and issubclass(t, enum.Enum):
            kind = _K_ENUM
            self.values = _ColumnBuilder(True)  # (as a model field's value would be)
        elif kind is None:
            kind = _K_GENERAL
        elif kind == _K_STR:
            self.strings = _Strings()
        elif kind == _K_STRLIST:
            self.strings = _Strings()
            self.rows_at = array("Q")
        else:
            self.data = bytearray() if kind == _K_BOOL else \
                array("d" if kind == _K_FLOAT else "q")
            # naive datetimes: with NumPy loaded, their 10-byte pickle states
            # (one C call each) are turned into microseconds in one pass
            self.values = [] if (kind == _K_DATETIME and n >= _NUMPY_MIN
                                 and "numpy" in sys.modules) else None
        self.kind = kind
        return kind

    def finish(self, w: _Writer) -> bytes:
        """Write the column's regions; return its 56-byte descriptor."""
        kind = self.kind
        if kind == _K_GENERAL or kind is None:
            if len(self.blocks) > 1:  # a later block did not fit: decide on the whole column
                return w.column(self.cells())
            return w.slots_column(self.cells())
        if kind == _K_ENUM:
            slot: bytes = self.values.finish(w)
            return slot
        mask = bytes(self.mask) if self.nulls else None
        if kind == _K_STR:
            return _write_column(w, (kind, *self.strings.finish(), mask))
        if kind == _K_STRLIST:
            return _write_column(w, (kind, _offsets(self.rows_at), *self.strings.finish()))
        data = self.data
        if kind == _K_DATETIME and self.values is not None:
            data = _micros_from_states(b"".join(self.values))
        return _write_column(w, (kind, memoryview(data).cast("B"), mask))


class _ReadyColumn:
    """A column the C core converted whole (csrc/pytable.c): ``ready`` is
    what ``_write_column`` takes."""

    __slots__ = ("ready",)

    def __init__(self, ready: tuple[Any, ...]) -> None:
        self.ready = ready

    def cells(self) -> list[Any]:
        return []  # (only a general column's cells can fail to encode)

    def finish(self, w: _Writer) -> bytes:
        return _write_column(w, self.ready)


_FIXED_COLUMNS = {_K_INT: F.COL_INT64, _K_FLOAT: F.COL_FLOAT64, _K_BOOL: F.COL_BOOL,
                  _K_DATETIME: F.COL_DATETIME}


def _write_column(w: _Writer, ready: tuple[Any, ...]) -> bytes:
    """Write a converted column's regions; return its 56-byte descriptor.
    ``ready`` is (kind, offsets, blob, nulls mask or None) for strings,
    (kind, row offsets, item offsets, blob) for lists of strings, else
    (kind, data, nulls mask or None); a mask holds a byte per row, 1 for None."""
    kind = ready[0]
    if kind == _K_STRLIST:
        _, rows_at, offsets, blob = ready
        return F.COLUMN.pack(F.COL_STRLIST, 0, w._append_bytes(rows_at), len(rows_at),
                             w._append_bytes(offsets), len(offsets),
                             w._append_bytes(blob), len(blob))
    if kind == _K_STR:
        _, offsets, blob, mask = ready
        r0 = (w._append_bytes(offsets), len(offsets))
        r1 = (w._append_bytes(blob), len(blob))
    else:
        _, data, mask = ready
        r0 = (w._append_bytes(data, align=F.ARRAY_ALIGN), len(data))
        r1 = None
    nulls = (w._append_bytes(mask), len(mask)) if mask is not None else (0, 0)
    flags = F.COL_HAS_NULLS if mask is not None else 0
    if r1 is not None:
        return F.COLUMN.pack(F.COL_STR, flags, *r0, *r1, *nulls)
    return F.COLUMN.pack(_FIXED_COLUMNS[kind], flags, *r0, *nulls, 0, 0)


def _nbuckets(n: int) -> int:
    if n == 0:
        return 0
    return 1 << max(1, (2 * n - 1).bit_length())


def _float(w: _Writer, v: float) -> bytes:
    return _SLOT_FLOAT(F.T_FLOAT, v)


def _tz_fields(owner: _dt.datetime | _dt.time) -> tuple[int | None, str | None]:
    tz = owner.tzinfo
    if tz is None:
        return None, None
    if type(tz) is not _dt.timezone:
        raise UnsupportedTypeError(
            f"tzinfo {type(tz).__module__}.{type(tz).__qualname__} cannot be archived exactly; "
            "only datetime.timezone (fixed offsets) round-trips", owner)
    offset = tz.utcoffset(None)
    name = tz.tzname(None)
    default = _dt.timezone(offset).tzname(None)
    return offset // _dt.timedelta(microseconds=1), (name if name != default else None)


def _datetime(w: _Writer, v: _dt.datetime) -> bytes:
    offset, name = _tz_fields(v)
    wall = (v.replace(tzinfo=None, fold=0) - _EPOCH) // _dt.timedelta(microseconds=1)
    return w.tuple_node(F.T_DATETIME, [wall, v.fold, offset, name])


def _time(w: _Writer, v: _dt.time) -> bytes:
    offset, name = _tz_fields(v)
    micros = ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    return w.tuple_node(F.T_TIME, [micros, v.fold, offset, name])


def _set(w: _Writer, v: set[Any] | frozenset[Any]) -> bytes:
    # Sets iterate in hash order, which depends on the per-process string hash
    # seed; sort the members by their own archived bytes so output is deterministic.
    tag = F.T_SET if type(v) is set else F.T_FROZENSET
    in_model = w.model_depth > 0
    try:
        if all(type(x) is int for x in v) and (not v or _INT_MIN <= min(v) and max(v) <= _INT_MAX):
            # an int's archive differs from another's first in its slot's payload:
            # the same order as their archives' bytes, without writing them
            members = sorted(v, key=_int_payload)
        else:
            members = sorted(v, key=_canonical_key_in_model if in_model else _canonical_key)
    except (UnsupportedTypeError, ValueError):
        members = list(v)  # encoding it fails too, and there the member's path is known
    if members and all(_is_model_class(type(x)) for x in members):
        # a reader without the class could not make a set of their bodies
        # (dicts): model instances are written as a LIST
        # (docs/format/canonical-form.md, "Models")
        tag = F.T_LIST
    return w.sequence(members, tag, owner=v)


def _canonical_key(x: Any) -> bytes:
    return dumps(x)


def _int_payload(x: int) -> bytes:
    """The payload of an INT slot: the order key of an int set member."""
    return x.to_bytes(8, "little", signed=True)


def _canonical_key_in_model(x: Any) -> bytes:
    """The order key of a set member inside a model, where an enum member is
    written as its value and a path, URL... as its stored form: the key of
    what is written."""
    return dumps(_as_written_in_model(x))


def _as_written_in_model(x: Any) -> Any:
    t = type(x)
    if isinstance(x, enum.Enum):
        return _as_written_in_model(x.value)
    if t is tuple:
        return tuple(map(_as_written_in_model, x))
    if t is frozenset:
        return frozenset(map(_as_written_in_model, x))
    if t in _ENCODERS or _is_model_class(t) or t.__module__ in ("uuid", "decimal", "numpy"):
        return x
    from .models import stored_form

    return stored_form(x)


_ENCODERS: dict[type, Callable[[_Writer, Any], bytes]] = {
    type(None): lambda w, v: _NONE,
    bool: lambda w, v: _TRUE if v else _FALSE,
    int: _Writer.int,
    float: _float,
    str: _Writer.str,
    bytes: _Writer.bytes,
    bytearray: _Writer.bytes,
    list: lambda w, v: w.sequence(v, F.T_LIST),
    tuple: lambda w, v: w.sequence(v, F.T_TUPLE),
    dict: _Writer.dict,
    set: _set,
    frozenset: _set,
    _dt.date: lambda w, v: _SLOT(F.T_DATE, v.toordinal()),
    _dt.datetime: _datetime,
    _dt.time: _time,
    _dt.timedelta: lambda w, v: w.tuple_node(F.T_TIMEDELTA, [v.days, v.seconds, v.microseconds]),
    complex: lambda w, v: w.tuple_node(F.T_COMPLEX, [v.real, v.imag]),
}


def _is_model_class(t: type) -> TypeGuard[type[BaseModel]]:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(t, pydantic.BaseModel)


def _enum(w: _Writer, v: enum.Enum) -> bytes:
    if not w.model_depth:
        raise UnsupportedTypeError(
            f"cannot archive enum {type(v).__qualname__} outside a pydantic model "
            f"(its type would be lost); store .value, or use it in a model", v)
    return w.value(v.value)


def _uuid(w: _Writer, v: uuid.UUID) -> bytes:
    return _SLOT(F.T_UUID | 16 << 8, w._append_bytes(v.bytes, inline=True))


def _decimal(w: _Writer, v: decimal.Decimal) -> bytes:
    text = str(v).encode("ascii")
    return _SLOT(F.T_DECIMAL | len(text) << 8, w._append_bytes(text, inline=True))


def _memoryview(w: _Writer, v: memoryview) -> bytes:
    """A memoryview of bytes (what views hand out for ``bytes`` values) is
    archived as ``bytes``; one of another format or shape would lose them."""
    if v.format not in ("B", "b", "c") or v.ndim != 1:
        raise UnsupportedTypeError(
            f"cannot archive a memoryview of format {v.format!r} and {v.ndim} dimension(s) "
            f"exactly (only 1-D byte views are archived, as bytes); archive "
            f"numpy.asarray(view) or bytes(view)", v)
    return w.bytes(v if v.c_contiguous and v.format == "B" else v.tobytes())


_ENCODERS[memoryview] = _memoryview


def _encoder_for_other(v: Any) -> Callable[[_Writer, Any], bytes]:
    """Encoders for types not in the table: UUID, Decimal and NumPy's (their
    modules are imported only once such a value exists, so this package does
    not import them itself), views of archives, else an UnsupportedTypeError."""
    t = type(v)
    module = t.__module__
    if module.startswith(f"{__package__}."):
        from ._views import encode_view, view_types

        if isinstance(v, view_types()):
            _ENCODERS[t] = encode_view
            return encode_view
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(v, pydantic.BaseModel):
        _ENCODERS[t] = _Writer.model
        return _Writer.model
    if isinstance(v, enum.Enum):
        return _enum
    if module.partition(".")[0] in ("pandas", "polars", "pyarrow"):
        from .frames import frame_encoder  # data frames: a FRAME node (format 1.1)

        enc = frame_encoder(v)
        if enc is not None:
            return enc
    if module == "uuid" and t.__qualname__ == "UUID":
        _ENCODERS[t] = _uuid
        return _uuid
    if module == "decimal" and t.__qualname__ == "Decimal":
        _ENCODERS[t] = _decimal
        return _decimal
    if module == "numpy":
        import numpy as np

        if t is np.ndarray or t is np.memmap:  # a memmap is written as a plain array
            return _Writer.ndarray
        if isinstance(v, np.generic):
            return _Writer.npscalar
    if pydantic is not None:
        return _model_leaf
    raise UnsupportedTypeError(f"cannot archive a value of type {t.__module__}.{t.__qualname__}", v)


def _model_leaf(w: _Writer, v: Any) -> bytes:
    """A value of a type the format has no node for (a URL, a path, an IP
    address, a secret, a dataclass...) inside a model: written as the form
    its field type validates back from (``models.stored_form``)."""
    if not w.model_depth:
        t = type(v)
        raise UnsupportedTypeError(f"cannot archive a value of type {t.__module__}.{t.__qualname__}", v)
    from .models import stored_form

    return w.value(stored_form(v))


# -- error paths ------------------------------------------------------------

def _located(exc: Exception, container: Any, step: str) -> Exception:
    """Record one more step of the path to a failing value and pass it up."""
    failure: Exception
    if isinstance(exc, (UnsupportedTypeError, NestingError)):
        failure = _Failure(exc, [step])
    else:
        failure = exc
        failure.args[1].append(step)
    failure.container = container  # type: ignore[attr-defined]
    return failure


def _culprit(exc: Exception) -> Any:
    """The child object whose encoding raised ``exc``."""
    if isinstance(exc, _Failure):
        return exc.container
    return exc.value  # type: ignore[attr-defined]


def _index_of(items: Iterable[Any], exc: Exception, owner: Any) -> str:
    culprit = _culprit(exc)
    for i, x in enumerate(items):
        if x is culprit:
            return f"[{i}]" if isinstance(owner, (list, tuple)) else f"[<member {x!r}>]"
    return "[?]"


def _key_of(v: dict[Any, Any], exc: Exception, values: bool) -> str:
    culprit = _culprit(exc)
    for k, x in v.items():
        if (x if values else k) is culprit:
            return f"[{k!r}]" if values else f"[<key {k!r}>]"
    return "[?]"


def _raise_with_path(exc: Exception) -> None:
    """Raise the UnsupportedTypeError or NestingError carried by ``exc`` (a
    _Failure, or the error itself when the root failed) with its path."""
    original, steps = exc.args if isinstance(exc, _Failure) else (exc, [])
    steps = steps[::-1]
    if steps and steps[0][:2] in ("['", '["'):
        steps[0] = steps[0][2:-2]  # the top-level key reads bare: users[3]['created']
    path = "".join(steps)
    shown = path if len(path) <= 200 else f"{path[:90]} ... ({len(steps):,} steps) ... {path[-90:]}"
    raise type(original)(f"{original} at {shown or 'the root'}", original.value, path) from None


# -- public entry points -------------------------------------------------------

def _layout(obj: Any, max_depth: int, compression: str | None, chunk_size: int,
            threads: int | None) -> tuple[tuple[list[Piece], int, bytes, list[Piece]], int]:
    """The nodes image of ``obj`` (its pieces, the first 64 bytes left for
    the header), where it ends, the root slot and the external payloads; and
    the format minor version its content needs (0 or 1)."""
    from .framing import check_options

    check_options(compression, chunk_size, threads)
    external = compression is not None
    with recursion_headroom(max_depth):
        w = _write(obj, max_depth, external, bulk_first=not external)
        if any(w.bulk.values()):  # laid out first but not written (a serializer replaced it)
            w = _write(obj, max_depth, external, bulk_first=False)
        pieces, nodes_end = w.finish(w.root)
    return (pieces, nodes_end, w.root, w.payloads), w.minor


def _write(obj: Any, max_depth: int, external: bool, bulk_first: bool) -> _Writer:
    """A writer that has laid out ``obj`` (its root slot in ``root``)."""
    w = _Writer(max_depth, external)
    if bulk_first:
        from ._bulk import large_arrays

        w.bulk_first(large_arrays(obj))
    try:
        w.root = w.value(obj)
    except (_Failure, NestingError) as exc:
        _raise_with_path(exc)
    return w


def _encode(obj: Any, max_depth: int, compression: str | None, chunk_size: int,
            threads: int | None) -> list[Piece]:
    """The pieces of the archive file for ``obj``, in order."""
    from .framing import frame, set_minor

    nodes, minor = _layout(obj, max_depth, compression, chunk_size, threads)
    out = frame(*nodes, compression, chunk_size, threads)
    if minor:
        out[0] = set_minor(out[0], minor)
    return out


def dumps(obj: Any, *, compression: str | None = None, chunk_size: int = 1 << 20,
          threads: int | None = None, max_depth: int = F.DEFAULT_MAX_DEPTH) -> bytes:
    """Archive ``obj`` into a new ``bytes`` object (same options as ``dump``).

    Cost: one pass over ``obj``; array and large ``bytes`` payloads are
    copied once, into the result (a result of 4 MiB or more is filled by
    ``threads`` threads, GIL released). Raises UnsupportedTypeError (naming the
    value's path) for a value the format cannot hold, NestingError (a
    ValueError, naming the path) for a reference cycle or nesting deeper
    than ``max_depth``.
    """
    from ._output import join_pieces
    from .framing import default_threads

    pieces = _encode(obj, max_depth, compression, chunk_size, threads)
    return join_pieces(pieces, default_threads(threads))


def dump(obj: Any, path: str | os.PathLike[str], *, compression: str | None = None,
         chunk_size: int = 1 << 20, threads: int | None = None, fsync: bool = True,
         max_depth: int = F.DEFAULT_MAX_DEPTH, storage_options: dict[str, Any] | None = None) -> int:
    """Archive ``obj`` to the file at ``path`` (``~`` expanded), atomically;
    return its size in bytes. An OSError names ``path``, not the temporary file.

    ``compression="lz4"`` compresses the nodes and every large payload (array
    data, big ``bytes``) in independent chunks of ``chunk_size`` bytes (the
    nodes in smaller ones: 32 KiB, doubled until at most 1024 hold them, at
    most ``chunk_size``; so a remote reader fetches little for one value), on
    ``threads`` threads (default: all cores; 1 = serial) with the GIL
    released; chunks that do not shrink by 1/8 are stored raw (a chunk whose
    two 32 KiB samples do not shrink by 1/32 is not compressed whole). Every archive
    carries XXH64 checksums (of its sections, or of each chunk), checked by
    ``Archive.verify()``; uncompressed, they are taken while the file is
    written (one pass over the data), compressed, as chunks are compressed.

    The archive is written to a temporary file in the same directory, flushed
    and fsynced, then renamed over ``path`` (``os.replace``), and the directory
    is fsynced (``fsync=False`` skips both fsyncs: still atomic, but a power
    loss may lose the new file; for caches that can be rebuilt). Before
    writing an archive of 64 MiB or more over a regular file, the old file's
    clean, unmapped cached pages are dropped (``POSIX_FADV_DONTNEED``; its
    bytes stay readable, from disk) so that the new file's pages reuse them. On any error the temporary file is removed and an existing
    file at ``path`` is untouched. Uncompressed array payloads are written
    straight from the arrays' memory, without an intermediate copy.

    The temporary file (``.NAME.PID.RANDOM.bfa-tmp``) is flock-ed by this
    writer while it exists; one left by a killed writer is stray because its
    lock is gone, and the next ``dump`` to ``path`` removes it (see
    ``_tempfiles``; docs/CONCEPTS.md, "Lifetime"). A new file gets mode 0o666
    less the umask, a replaced file keeps its mode.

    ``path`` may be a URL (``s3://``, ``gs://``, ``az://``, ``memory://``...;
    ``storage_options`` go to its fsspec file system, as in pandas): the
    archive is built in memory (``dumps``) and stored in one PUT, or on S3
    from 100 MiB a multipart upload completed only at the end, so readers see
    the old object or the new one and a failed dump leaves no partial object
    (``bfast_archive.remote.write_object``; needs ``pip install
    "bfast-archive[remote]"``).
    """
    from . import _tempfiles
    from ._urls import split_source

    url, path = split_source(path, storage_options)
    if url is not None:
        from .remote import write_object

        return write_object(url, dumps(obj, compression=compression, chunk_size=chunk_size,
                                       threads=threads, max_depth=max_depth), storage_options)
    from .framing import frame, plain_layout, set_minor

    nodes, minor = _layout(obj, max_depth, compression, chunk_size, threads)
    if compression is None:  # checksums taken while the file is written
        pieces, blocks = plain_layout(*nodes[:3])
    else:  # (chunk checksums are taken as the chunks are compressed)
        pieces, blocks = frame(*nodes, compression, chunk_size, threads), None
    if minor:  # the header does not depend on the checksums of the blocks
        pieces[0] = set_minor(pieces[0], minor)
    path = os.path.expanduser(os.fspath(path))
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    _tempfiles.remove_stray(directory, f".{name}.")
    try:
        fd, tmp = _tempfiles.create(directory, name)  # locked until renamed or removed
    except OSError as exc:
        raise _named(exc, path) from None
    try:
        mode = _existing_mode(path)
        if mode is not None:
            os.fchmod(fd, mode)
            _drop_replaced_cache(path, pieces)
        size = _write_file(fd, pieces, blocks, threads)
        if fsync:
            os.fsync(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise _named(exc, path) from None
        raise
    finally:
        os.close(fd)
    if fsync:
        _fsync_dir(directory)
    return size


def _named(exc: OSError, path: str) -> OSError:
    """``exc`` as the caller sees it: naming ``path``, not the temporary file
    (the same OSError subclass, picked by its errno)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, path)


_PREALLOCATE_MIN = 1 << 20  # smaller files: one syscall more for nothing
_FULL = frozenset({getattr(errno, n) for n in ("ENOSPC", "EFBIG", "EDQUOT") if hasattr(errno, n)})


def _write_file(fd: int, pieces: list[Piece], blocks: list[Block] | None, threads: int | None
                ) -> int:
    """Write the archive to ``fd``; return its size. ``blocks`` (an
    uncompressed archive, ``framing.plain_layout``): the pieces lack the
    directory of checksums, which is taken in the same pass as the write --
    on a pool thread while this one writes (large archives, GIL released by
    both), or block by block right after each block is written (still in the
    CPU caches) -- and written last. The file's size is reserved first
    (``bfa_preallocate``): a full disk fails before any byte is written."""
    from ._native import lib
    from ._output import nbytes
    from ._parallel import run_parallel
    from .framing import default_threads, hash_blocks, plain_directory

    total = sum(map(nbytes, pieces))
    if blocks is not None:
        total += F.DIRECTORY_HEADER.size + len(blocks) * F.CHECK_ENTRY.size
    if total >= _PREALLOCATE_MIN:
        rc = lib.bfa_preallocate(fd, total)
        if rc in _FULL:
            raise OSError(rc, os.strerror(rc))  # else (not supported...): write without
    with open(fd, "wb", buffering=0, closefd=False) as f:
        def write(data: Piece) -> None:
            view = memoryview(data)
            while view.nbytes:
                view = view[f.write(view):]

        if blocks is None:
            for piece in pieces:
                write(piece)
            return total

        def write_blocks() -> None:
            for piece, start, length, _ in blocks:
                write(memoryview(piece)[start:start + length])

        write(memoryview(pieces[0])[:F.HEADER_SIZE])
        if total >= F.PARALLEL_MIN and default_threads(threads) > 1:
            hashes = run_parallel(_call, [write_blocks, lambda: hash_blocks(blocks)], 2)[1]
        else:
            hashes = []
            for block in blocks:
                piece, start, length, _ = block
                write(memoryview(piece)[start:start + length])
                hashes += hash_blocks([block])
        write(plain_directory(blocks, hashes))
    return total


def _call(job: Callable[[], Any]) -> Any:
    return job()


def _existing_mode(path: str) -> int | None:
    """The permission bits of the file ``dump`` replaces (kept, as
    ``open(path, "w")`` keeps them), None if there is none. A new file gets
    0o666 less the umask from the kernel (``_tempfiles.create``)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None


_DROP_CACHE_MIN = 64 << 20  # smaller files: a few syscalls more for little


def _drop_replaced_cache(path: str, pieces: list[Piece]) -> None:
    """Let the pages of the new archive reuse those of the file it replaces:
    for a big archive, ask the kernel to drop the page cache of the regular
    file now at ``path`` (``POSIX_FADV_DONTNEED``: clean pages that no
    process maps; the file's bytes are untouched and stay readable until
    the rename, from disk). On a VM that hands freed memory back to its host
    (free page reporting) filling fresh page-cache pages costs several times
    more than recycled ones (438 MiB: 2.4 s against 0.44 s measured after an
    idle 2.5 s); elsewhere it keeps the page cache from holding both
    versions at once. Errors are ignored: it is only a hint."""
    from ._output import nbytes

    if not hasattr(os, "posix_fadvise") or sum(map(nbytes, pieces)) < _DROP_CACHE_MIN:
        return
    try:  # (not following a symlink; not waiting on a FIFO)
        old = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(old).st_mode):
            os.posix_fadvise(old, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(old)


def _fsync_dir(directory: str) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
