"""Decoding: the values of checked slots, lazily (views) or copied out.

Every function here receives positions of slots the C core has already
checked. ``decode`` gives the lazy value of one slot (views for containers,
zero-copy memoryviews and arrays for byte payloads); ``mat`` copies a value
out whole, on a walk (``Snapshot.walk``) that refuses nodes reached twice.
Model nodes, fixed-shape scalars (datetimes, UUIDs, Decimals...) and the
dict probe are here too. The view classes (views.py, tables.py) sit above
this module: they import it and register themselves (``register``), so
decoding can build them without an import cycle.
"""
from __future__ import annotations

import datetime as _dt
import operator
import struct
from typing import Any, Callable

from . import format as F
from ._limits import gc_paused, recursion_headroom
from . import _pytable
from ._native import NOTFOUND, archive_error, dict_check, dict_find, ffi, seq_check, seq_get
from ._snapshot import Snapshot, claim, closed
from .arrays import BAD_CODE_POINT, TRACK_MIN, _numpy, bad_code_point, has_text, ndarray, xbytes
from .errors import ArchiveError

SLOT = F.SLOT.unpack_from
_F64 = F.SLOT_FLOAT.unpack_from
DICT_ENTRIES = F.DICT_HEADER.size
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
_EPOCH = _dt.datetime(1, 1, 1)
_TIMEDELTA = _dt.timedelta
_CONTAINERS = frozenset({F.T_LIST, F.T_TUPLE, F.T_DICT, F.T_SET, F.T_FROZENSET, F.T_TABLE})
# Tags are bound to module globals: attribute lookups cost on the hot path.
_T_NONE, _T_TRUE, _T_INT, _T_FLOAT = F.T_NONE, F.T_TRUE, F.T_INT, F.T_FLOAT
_T_STR, _T_SSTR, _T_BYTES, _T_SBYTES = F.T_STR, F.T_SSTR, F.T_BYTES, F.T_SBYTES
_T_LIST, _T_TUPLE, _T_DICT, _T_TABLE = F.T_LIST, F.T_TUPLE, F.T_DICT, F.T_TABLE
_T_NDARRAY, _T_XBYTES, _T_MODEL, _T_FRAME = F.T_NDARRAY, F.T_XBYTES, F.T_MODEL, F.T_FRAME
_T_DATETIME = F.T_DATETIME
_K_STR, _K_INT = F.K_STR, F.K_INT

# Registered by views.py and tables.py when they are imported (archive.py
# imports both before any archive exists).
ArchivedDict: Any = None
ArchivedList: Any = None
ArchivedTable: Any = None
table_info: Any = None     # (s, off, nrows) -> the table's checked geometry
table_rows: Any = None     # (s, info, depth) -> list of row dicts
column_values: Any = None  # (s, info, c, depth) -> list of one column's values


def register(**hooks: Any) -> None:
    """Install view classes and table decoders (see the names above)."""
    for name, value in hooks.items():
        if name not in ("ArchivedDict", "ArchivedList", "ArchivedTable", "table_info",
                        "table_rows", "column_values"):
            raise NameError(name)
        globals()[name] = value


def dict_pos(s: Snapshot, off: int, key: Any) -> int:
    """Position of the checked value slot of ``key`` in the dict node at ``off``."""
    ptr = s.ptr
    pos: int
    t = type(key)
    if t is str:
        try:
            kb = key.encode()
        except UnicodeEncodeError:  # lone surrogates, stored as the writer encodes them
            kb = key.encode("utf-8", "surrogatepass")
        pos = dict_find(ptr, s.size, off, _K_STR, kb, len(kb), 0)
    elif t is int and INT_MIN <= key <= INT_MAX:
        pos = dict_find(ptr, s.size, off, _K_INT, b"", 0, key)
    else:
        kind, kb = key_bytes(key)
        int_key = int.from_bytes(kb, "little", signed=True) if kind == _K_INT else 0
        pos = dict_find(ptr, s.size, off, kind, kb, len(kb), int_key)
    if pos < 0:
        if pos == NOTFOUND:
            raise KeyError(key)
        raise archive_error(pos, f"dict node at offset {off}")
    return pos


def key_bytes(key: Any) -> tuple[int, bytes]:
    """The (kind, bytes) the format hashes for a dict key; KeyError if no
    archived key can equal it."""
    if isinstance(key, str):
        return F.K_STR, str(key).encode("utf-8", "surrogatepass")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return F.K_BYTES, bytes(key)
    k = int_equal(key)
    if INT_MIN <= k <= INT_MAX:
        return F.K_INT, k.to_bytes(8, "little", signed=True)
    return F.K_BIGINT, k.to_bytes(k.bit_length() // 8 + 1, "little", signed=True)


def int_equal(key: Any) -> int:
    """The int a key equals, as a dict lookup would match it (``True`` and
    ``1.0`` and ``np.int64(1)`` find the key 1); KeyError if it equals none
    (``1.5``, ``nan``, ``None``, ...)."""
    try:
        return operator.index(key)  # int, bool, NumPy integers
    except TypeError:
        pass
    try:
        if isinstance(key, complex) and key.imag == 0:
            key = key.real
        k = int(key)
        if k == key and not isinstance(key, (str, bytes)):
            return k
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        pass
    raise KeyError(key)


# -- decoding ------------------------------------------------------------------

def decode(arch: Any, s: Snapshot, pos: int) -> Any:
    """The lazy value of the checked slot at ``pos`` of archive ``arch``, read
    through its snapshot ``s`` (the caller took it and checked it is not
    None): views for containers, zero-copy memoryviews/arrays for byte
    payloads, else plain values."""
    raw = s.raw
    w0, p = SLOT(raw, pos)
    tag = w0 & 0xFF
    if tag == _T_SSTR:
        return utf8(raw[pos + 8:pos + 8 + (w0 >> 8)], pos)
    if tag == _T_INT:
        return p
    if tag == _T_STR:
        return utf8(raw[p:p + (w0 >> 8)], p)
    if tag == _T_DICT:
        return ArchivedDict(arch, p, w0 >> 8)
    if tag == _T_TABLE:
        return ArchivedTable(arch, p, w0 >> 8, tag)
    if tag == _T_LIST or tag == _T_TUPLE:
        return ArchivedList(arch, p, w0 >> 8, tag)
    if tag == _T_DATETIME:
        value = datetime_node(s, w0 >> 8, p)
        if value is not None:
            return value
        with recursion_headroom(s.max_depth):  # decoded field by field: names what is wrong
            return mat(s.walk(arch), pos, 0)
    if tag == _T_MODEL:  # read without its model: the plain body (dict or table)
        return decode(arch, s, model_body(s, p))
    if tag == _T_FLOAT:
        return _F64(raw, pos)[1]
    if tag <= _T_TRUE:
        return None if tag == _T_NONE else tag == _T_TRUE
    if tag == _T_NDARRAY:
        return ndarray(s, p, copy=False)
    if tag == _T_SBYTES:
        return s.mv[pos + 8:pos + 8 + (w0 >> 8)]
    if tag == _T_BYTES:
        return s.mv[p:p + (w0 >> 8)]
    if tag == _T_XBYTES:
        return xbytes(s, p, w0 >> 8, copy=False)
    if tag == _T_FRAME:  # format 1.1: a data frame (bfast_archive/frames.py)
        from .frames import frame_view
        return frame_view(arch, p)
    leaf = _LEAVES.get(tag)
    if leaf is not None and s.max_depth > 0:  # read in place: no nesting, nothing to track
        return leaf(s, w0 >> 8, p, pos, 0)
    with recursion_headroom(s.max_depth):  # sets and fixed-shape nodes recurse
        return mat(s.walk(arch), pos, 0)


def mat(s: Snapshot, pos: int, depth: int) -> Any:
    """The fully materialised value of the checked slot at ``pos``."""
    raw = s.raw
    w0, p = SLOT(raw, pos)
    tag = w0 & 0xFF
    if tag == _T_SSTR:
        return utf8(raw[pos + 8:pos + 8 + (w0 >> 8)], pos)
    if tag == _T_INT:
        return p
    if tag == _T_STR:
        if w0 >> 8 > TRACK_MIN:
            claim(s, p)
        return utf8(raw[p:p + (w0 >> 8)], p)
    if tag == _T_FLOAT:
        return _F64(raw, pos)[1]
    if tag <= _T_TRUE:
        return None if tag == _T_NONE else tag == _T_TRUE
    if tag == _T_SBYTES:
        return bytes(raw[pos + 8:pos + 8 + (w0 >> 8)])
    if tag == _T_BYTES:
        if w0 >> 8 > TRACK_MIN:
            claim(s, p)
        return bytes(raw[p:p + (w0 >> 8)])
    if tag == _T_MODEL:
        return _mat_model(s, p, pos, depth)
    if tag == _T_FRAME:  # format 1.1: a data frame (bfast_archive/frames.py)
        from .frames import frame_value
        return frame_value(s, p, depth)
    if tag in _CONTAINERS:
        if depth >= s.max_depth:
            raise ArchiveError(f"nesting deeper than max_depth={s.max_depth} "
                               f"at offset {p}")
        return mat_node(s, tag, p, w0 >> 8, depth)
    decoder = _SCALARS.get(tag)
    if decoder is None:  # the C core accepted it, so this reader must know it
        raise ArchiveError(f"unexpected node type {tag} at offset {pos}")
    if depth >= s.max_depth:  # fixed-shape nodes nest through their fields too
        raise ArchiveError(f"nesting deeper than max_depth={s.max_depth} at offset {p}")
    return decoder(s, w0 >> 8, p, pos, depth)


def mat_node(s: Snapshot, tag: int, off: int, n: int, depth: int) -> Any:
    """The container node ``tag`` at ``off`` (``n`` items) copied out."""
    claim(s, off)
    if tag == _T_DICT:
        rc = dict_check(s.ptr, s.size, off, n)
        if rc < 0:
            raise archive_error(rc, f"dict node at offset {off}")
        start = off + DICT_ENTRIES
        d = depth + 1
        out = {}
        for pos in range(start, start + 32 * n, 32):
            out[mat(s, pos, d)] = mat(s, pos + 16, d)
        return out
    if tag == _T_TABLE:
        return table_rows(s, table_info(s, off, n), depth)
    rc = seq_check(s.ptr, s.size, off, n)
    if rc < 0:
        raise archive_error(rc, f"{F.TAG_NAMES.get(tag, tag)} node at offset {off}")
    items = mat_slots(s, off + 8, n, depth + 1)
    if tag == _T_LIST:
        return items
    if tag == _T_TUPLE:
        return tuple(items)
    try:
        return set(items) if tag == F.T_SET else frozenset(items)
    except TypeError:
        raise ArchiveError(f"set node at offset {off} holds an unhashable member") from None


def mat_slots(s: Snapshot, start: int, count: int, depth: int) -> list[Any]:
    """``[mat(s, pos, depth) for pos in range(start, start + 16 * count, 16)]``
    for slots the caller has checked (``slots_check``, ``seq_check``): the
    same values, and the same error for a damaged cell, decoded in bulk in C
    (csrc/pydecode.c) where it can: scalars (datetimes, UUIDs, Decimals,
    str, numbers), and model nodes of one class with dict bodies as a batch
    of instances. The C path decodes a cell only when every check the
    Python path makes passes; it leaves the others to ``mat``, one by one,
    after the nodes it decoded are claimed; when those claims meet a node
    claimed before, the whole run is read one by one instead. O(count)."""
    if count >= _pytable.NATIVE_MIN and depth + 3 < s.max_depth:
        run = _Run()
        values = run.slots(s, None, start, count, depth)
        if values is not None and run.claim(s):
            for out, i, pos, d in run.pending:
                out[i] = mat(s, pos, d)
            for finish in run.finishers:
                finish()
            return values
    return [mat(s, pos, depth) for pos in range(start, start + 16 * count, 16)]


_SLOT_CONTEXT: tuple[Any, ...] | None = None


def _slot_context() -> tuple[Any, ...]:
    """What csrc/pydecode.c builds values with (its ``decoder``)."""
    global _SLOT_CONTEXT
    if _SLOT_CONTEXT is None:
        import decimal
        import uuid

        _SLOT_CONTEXT = (_tz, _dt.datetime, _dt.date, uuid.UUID, uuid.SafeUUID.unknown,
                         decimal.Decimal, {"fold": 1}, "int", "is_safe")
    return _SLOT_CONTEXT


class _Run:
    """One bulk decode (``mat_slots``): the cells left to ``mat``
    (list, index, position, depth), the node offsets the C path claims, and
    the model batches to build once their fields are all decoded."""

    __slots__ = ("pending", "claims", "finishers")

    def __init__(self) -> None:
        self.pending: list[tuple[list[Any], int, int, int]] = []
        self.claims: list[list[int]] = []
        self.finishers: list[Callable[[], None]] = []

    def slots(self, s: Snapshot, positions: bytes | None, start: int, count: int,
              depth: int) -> list[Any] | None:
        """The values of a run of slots, with cells pending; None: no C path."""
        address = int(ffi.cast("uintptr_t", s.ptr))
        if positions is None and SLOT(s.raw, start)[0] & 0xFF == _T_MODEL:
            models = self.models(s, address, start, count, depth)
            if models is not None:
                return models
        found = _pytable.decode_slots(address, s.size, positions, start, count,
                                      _slot_context())
        if found is None:
            return None
        values, fallbacks, claims = found
        self.claims.append(claims)
        pending = self.pending
        for i in fallbacks:
            pos = start + 16 * i if positions is None else \
                int.from_bytes(positions[8 * i:8 * i + 8], "little")
            pending.append((values, i, pos, depth))
        return values

    def models(self, s: Snapshot, address: int, start: int, count: int,
               depth: int) -> list[Any] | None:
        """Model nodes of one schema with same-keyed dict bodies, as
        ``_mat_model`` reads each: their field values decoded field by
        field, the instances (or dicts) built after; None if they are not
        such nodes."""
        found = _pytable.model_cells(address, s.size, start, count)
        if found is None:
            return None
        _, key_positions, value_positions, claims = found
        cls = None
        if s.models is not None:  # as _mat_model: the schema noted, the class looked up
            noted = schema(s, SLOT(s.raw, start)[1])
            if s.models:
                cls = s.models.get(noted.get("fingerprint")) if isinstance(noted, dict) else None
                if cls is None:
                    raise NotTrusted
        self.claims.append(claims)
        names = tuple(mat(s, pos, depth + 1) for pos in
                      memoryview(key_positions).cast("Q").tolist())
        columns = []
        for positions in value_positions:
            column = self.slots(s, positions, 0, count, depth + 2)
            if column is None:
                return None
            columns.append(column)
        values: list[Any] = [None] * count

        def finish() -> None:
            if cls is not None:
                from .models import construct_columns

                values[:] = construct_columns(cls, names, columns)
            else:
                values[:] = _pytable.rows(names, columns) or \
                    [dict(zip(names, cells)) for cells in zip(*columns)]
        self.finishers.append(finish)
        return values

    def claim(self, s: Snapshot) -> bool:
        """Claim the nodes the C path decoded, all at once; False if one
        was claimed before or twice (the caller reads one by one, which
        reports it where it is met)."""
        seen = s.seen
        if type(seen) is not set:  # a lazy read: nothing tracked
            return True
        new: set[int] = set()
        total = 0
        for claims in self.claims:
            new.update(claims)
            total += len(claims)
        if len(new) != total or not seen.isdisjoint(new):
            return False
        seen.update(new)
        return True


def to_python(arch: Any, tag: int, off: int, n: int) -> Any:
    """``to_python`` of a view: the node's whole subtree, depth-capped, after
    the checksums of the bytes it can occupy (``check_sums``)."""
    s = arch._snap
    if s is None:
        raise closed()
    check_sums(s, node_end(s, tag, off, n))
    with recursion_headroom(s.max_depth), gc_paused():
        return mat_node(s.walk(arch, check=True), tag, off, n, 0)


def check_sums(s: Snapshot, end: int) -> None:
    """Before a copy-out of bytes below offset ``end``: verify the checksums
    of every section of an uncompressed archive that holds any of them.
    Children lie before their parents, so a subtree lies below the end of
    its node: ``end`` is that, or the archive's size for a whole read. Each
    section is hashed once per open archive, in C on the thread pool. In a
    compressed archive every chunk is checked as it is decoded."""
    layer = s.layer
    if layer is not None and not layer.compressed:
        layer.verify_through(end, s.nthreads())


def node_end(s: Snapshot, tag: int, off: int, n: int) -> int:
    """The end of the (checked) container node at ``off``."""
    if tag == _T_DICT:
        nbuckets: int
        width: int
        _, nbuckets, width, _ = F.DICT_HEADER.unpack_from(s.raw, off)
        return off + DICT_ENTRIES + 32 * n + nbuckets * width
    if tag == _T_TABLE:
        ncols: int = F.U64.unpack_from(s.raw, off + 8)[0]
        return int(off + F.TABLE_HEADER_SIZE + F.COLUMN.size * ncols)
    return off + 8 + 16 * n


def utf8(raw: Any, where: int) -> str:
    try:
        return str(raw, "utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"invalid UTF-8 in string at offset {where}: {exc.reason}") from None


# -- model nodes -------------------------------------------------------------------

def model_body(s: Snapshot, off: int) -> int:
    """Position of the checked body slot of the MODEL node at ``off``."""
    pos: int = seq_get(s.ptr, s.size, off, 1)
    if pos < 0:
        raise archive_error(pos, f"model node at offset {off}")
    if SLOT(s.raw, pos)[0] & 0xFF not in (_T_DICT, _T_TABLE):
        raise ArchiveError(f"model node at offset {off}: its body is not a dict or a table")
    return pos


def schema(s: Snapshot, off: int) -> Any:
    """The schema dict of the MODEL node at ``off``, decoded once per
    archive: schema nodes are shared by all instances of a class."""
    pos: int = seq_get(s.ptr, s.size, off, 0)
    if pos < 0:
        raise archive_error(pos, f"model node at offset {off}")
    w0, p = SLOT(s.raw, pos)
    if w0 & 0xFF != _T_DICT:
        raise ArchiveError(f"model node at offset {off}: its schema is not a dict")
    key = ("schema", p)
    found = s.tables.get(key)
    if found is None:
        found = s.tables[key] = mat_node(s.walk(s.arch), _T_DICT, p, w0 >> 8, 0)
    return found


class NotTrusted(Exception):
    """A trusted model load met a model node of a class it does not have
    (one that changed since writing): the load validates instead."""


def _mat_model(s: Snapshot, off: int, pos: int, depth: int) -> Any:
    """A MODEL node copied out: its body as plain data, or, in a trusted
    load with the model class known, the model instance(s) built directly."""
    if depth >= s.max_depth:
        raise ArchiveError(f"nesting deeper than max_depth={s.max_depth} at offset {off}")
    claim(s, off)
    body_pos = model_body(s, off)
    models = s.models
    cls = None
    if models is not None:  # a model load: schemas noted (s.tables), classes looked up
        found = schema(s, off)
        if models:
            cls = models.get(found.get("fingerprint")) if isinstance(found, dict) else None
            if cls is None:
                raise NotTrusted
    if cls is not None:
        from .models import construct, construct_columns

        w0, p = SLOT(s.raw, body_pos)
        if w0 & 0xFF == _T_TABLE:  # a list of instances: built column by column
            claim(s, p)
            info = table_info(s, p, w0 >> 8)
            columns = [column_values(s, info, c, depth + 1) for c in range(info.ncols)]
            return construct_columns(cls, info.names(s), columns)
        body = mat(s, body_pos, depth + 1)
        if isinstance(body, list):
            return [construct(cls, row) for row in body]
        return construct(cls, body) if isinstance(body, dict) else body
    return mat(s, body_pos, depth + 1)


def noted_schemas(s: Snapshot) -> list[Any]:
    """The model schemas decoded from this archive so far (``schema``)."""
    return [v for k, v in list(s.tables.items()) if type(k) is tuple and k[0] == "schema"]


# -- fixed-shape scalars ---------------------------------------------------------------

def _fields(s: Snapshot, tag: int, n: int, off: int, depth: int, kinds: tuple[Any, ...]) -> list[Any]:
    """The fields of a fixed-shape node, each checked against ``kinds``."""
    name = F.TAG_NAMES[tag]
    if n != len(kinds):
        raise ArchiveError(f"{name} node at offset {off} has {n} fields, expected {len(kinds)}")
    values: list[Any] = mat_node(s, _T_LIST, off, n, depth)
    for i, (v, ok) in enumerate(zip(values, kinds)):
        ok = ok if isinstance(ok, tuple) else (ok,)
        if not isinstance(v, ok) or isinstance(v, bool) and bool not in ok:
            raise ArchiveError(f"{name} node at offset {off}: field {i} has type "
                               f"{type(v).__name__}")
    return values


# timezones made so far (immutable), keyed by (offset, name): timezone objects
# compare equal by offset alone, so a zone is never looked up by another zone
_ZONES: dict[tuple[int, str | None], _dt.timezone] = {}


def _tz(offset: Any, name: Any) -> Any:
    if offset is None:
        if name is not None:
            raise ValueError("timezone name without an offset")
        return None
    zone = _ZONES.get((offset, name))
    if zone is None:
        delta = _dt.timedelta(microseconds=offset)
        zone = _dt.timezone(delta) if name is None else _dt.timezone(delta, name)
        if len(_ZONES) < 256:
            _ZONES[(offset, name)] = zone
    return zone


def _checked(tag: int, off: int, build: Any) -> Any:
    try:
        return build()
    except (ValueError, OverflowError, TypeError, ArithmeticError) as exc:
        raise ArchiveError(f"invalid {F.TAG_NAMES[tag]} at offset {off}: {exc}") from None


_OPT_INT = (int, type(None))
_DATETIME_SLOTS = struct.Struct("<QqQqQqQq").unpack_from  # a DATETIME node's four slots
_OPT_STR = (str, type(None))


def datetime_node(s: Snapshot, n: int, off: int) -> Any:
    """The datetime of the DATETIME node at ``off`` read straight from its
    four slots (wall time, fold, UTC offset, zone name), once C has checked
    the node; None if a slot is not of the kind a writer makes (the caller
    then decodes it field by field, which names what is wrong). No walk:
    none of the four slots can be a container."""
    if n != 4 or seq_check(s.ptr, s.size, off, 4) < 0:
        return None
    raw = s.raw
    w0, wall, w1, fold, w2, offset, w3, p3 = _DATETIME_SLOTS(raw, off + 8)
    tag2, tag3 = w2 & 0xFF, w3 & 0xFF
    if w0 & 0xFF != _T_INT or w1 & 0xFF != _T_INT or tag2 not in (_T_INT, _T_NONE):
        return None
    if tag3 == _T_NONE:
        name = None
    elif tag3 == _T_SSTR:
        name = utf8(raw[off + 64:off + 64 + (w3 >> 8)], off + 56)
    elif tag3 == _T_STR:
        name = utf8(raw[p3:p3 + (w3 >> 8)], p3)
    else:
        return None
    if tag2 == _T_NONE:
        offset = None
    try:
        if fold == 0:  # the epoch in this zone, plus the wall time: one datetime made
            epoch = _EPOCHS.get((offset, name))
            return (epoch or _epoch_in(offset, name)) + _TIMEDELTA(0, 0, wall)
        return (_EPOCH + _dt.timedelta(microseconds=wall)).replace(fold=fold,
                                                                   tzinfo=_tz(offset, name))
    except (ValueError, OverflowError, TypeError, ArithmeticError) as exc:
        raise ArchiveError(f"invalid datetime at offset {off}: {exc}") from None


# keyed by (offset, name), never by the timezone: timezones equal by offset alone
_EPOCHS: dict[tuple[Any, Any], _dt.datetime] = {(None, None): _EPOCH}


def _epoch_in(offset: Any, name: Any) -> _dt.datetime:
    """0001-01-01 00:00 in the zone of ``offset`` and ``name`` (cached, as ``_ZONES``)."""
    epoch = _EPOCHS.get((offset, name))
    if epoch is None:
        epoch = _EPOCH.replace(tzinfo=_tz(offset, name))
        if len(_EPOCHS) < 256:
            _EPOCHS[(offset, name)] = epoch
    return epoch


def _datetime(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    value = datetime_node(s, n, off)
    if value is not None:
        claim(s, off)  # as mat_node claims every node a copy-out passes
        return value
    wall, fold, offset, name = _fields(s, F.T_DATETIME, n, off, depth,
                                       (int, int, _OPT_INT, _OPT_STR))
    return _checked(F.T_DATETIME, off, lambda: (
        _EPOCH + _dt.timedelta(microseconds=wall)).replace(fold=fold, tzinfo=_tz(offset, name)))


def _time(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    micros, fold, offset, name = _fields(s, F.T_TIME, n, off, depth,
                                         (int, int, _OPT_INT, _OPT_STR))

    def build() -> Any:
        if not 0 <= micros < 86_400_000_000:
            raise ValueError("time of day out of range")
        secs, us = divmod(micros, 1_000_000)
        return _dt.time(secs // 3600, secs // 60 % 60, secs % 60, us,
                        tzinfo=_tz(offset, name), fold=fold)
    return _checked(F.T_TIME, off, build)


def _timedelta(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    days, secs, us = _fields(s, F.T_TIMEDELTA, n, off, depth, (int, int, int))
    return _checked(F.T_TIMEDELTA, off, lambda: _dt.timedelta(days, secs, us))


def _complex(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    re_, im = _fields(s, F.T_COMPLEX, n, off, depth, (float, float))
    return complex(re_, im)


def _npscalar(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    from .dtypes import descr_to_dtype

    descr, raw = _fields(s, F.T_NPSCALAR, n, off, depth, (str, bytes))
    if descr in ("<U0", "|S0") and raw == b"":  # the empty np.str_ / np.bytes_
        np = _numpy()
        return np.str_("") if descr == "<U0" else np.bytes_(b"")
    dt = descr_to_dtype(descr.encode("utf-8", "surrogatepass"))
    if len(raw) != dt.itemsize or dt.subdtype is not None:
        raise ArchiveError(f"numpy scalar at offset {off} does not match its dtype {dt}")
    if dt.kind in "SU":  # built from the bytes: an array element would drop trailing NULs
        return _text_scalar(dt, raw, off)
    try:
        one = _numpy().frombuffer(raw, dt)
        bad = has_text(dt) and bad_code_point(one)
        if not bad:
            return one[0]
    except (SystemError, ValueError) as exc:
        raise ArchiveError(f"numpy scalar at offset {off}: {exc}") from None
    raise ArchiveError(f"numpy scalar at offset {off}: {BAD_CODE_POINT}")




def _text_scalar(dt: Any, raw: bytes, off: int) -> Any:
    """The ``np.bytes_`` / ``np.str_`` scalar of dtype ``dt`` whose bytes are
    ``raw``, trailing NULs and item size kept (``np.bytes_(b"ab\\0")`` is S3)."""
    np = _numpy()
    if dt.kind == "S":
        return np.bytes_(raw)
    try:
        return np.str_(raw.decode("utf-32-be" if dt.str[0] == ">" else "utf-32-le",
                                  "surrogatepass"))
    except UnicodeDecodeError:
        raise ArchiveError(f"numpy scalar at offset {off}: {BAD_CODE_POINT}") from None


def _uuid(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    import uuid

    return uuid.UUID(bytes=bytes(s.mv[off:off + 16]))


def _decimal(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    import decimal

    if n > TRACK_MIN:
        claim(s, off)
    text = bytes(s.mv[off:off + n])

    def build() -> Any:
        value = decimal.Decimal(text.decode("ascii"))
        if str(value) != text.decode("ascii"):  # only str(Decimal)'s own spelling is valid
            raise ValueError(f"{text[:40]!r} is not in the canonical form {str(value)[:40]!r}")
        return value
    return _checked(F.T_DECIMAL, off, build)


def _bigint(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    if n > TRACK_MIN:
        claim(s, off)
    return int.from_bytes(s.mv[off:off + n], "little", signed=True)


def _ndarray_copy(s: Snapshot, n: int, off: int, pos: int, depth: int) -> Any:
    return ndarray(s, off, copy=True)


_SCALARS: dict[int, Callable[[Snapshot, int, int, int, int], Any]] = {
    F.T_BIGINT: _bigint,
    F.T_DATE: lambda s, n, p, pos, depth: _dt.date.fromordinal(p),
    F.T_DATETIME: _datetime,
    F.T_TIME: _time,
    F.T_TIMEDELTA: _timedelta,
    F.T_COMPLEX: _complex,
    F.T_NPSCALAR: _npscalar,
    F.T_UUID: _uuid,
    F.T_DECIMAL: _decimal,
    F.T_NDARRAY: _ndarray_copy,
    F.T_XBYTES: lambda s, n, p, pos, depth: xbytes(s, p, n, copy=True),
}
# the scalar nodes whose decoder reads only the node's own bytes (no child
# slots): a lazy read decodes them without a copy-out walk
_LEAVES = {tag: _SCALARS[tag] for tag in (F.T_BIGINT, F.T_DATE, F.T_UUID, F.T_DECIMAL)}
