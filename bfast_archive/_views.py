"""Archiving views of archives: the writer's side of ``bfa.dumps(view)``.

A view (``ArchivedDict``, ``ArchivedList``, a table, a row, ``ArchivedModel``,
``ArchivedModelList``, ``ArrayHandle``) is archived as its value: the same
bytes as ``dumps(view.to_python())``. The subtree is not copied out into
Python objects first; it is walked node by node (``_Node``), the way
``to_python`` walks it (the same checks, the same refusal of shared nodes),
and each node goes to the writer as directly as its layout allows:

- dicts, lists and tuples become shallow containers of child nodes;
- arrays and ``bytes`` are written from the archive's memory (zero-copy);
- a table's packed columns (int, float, bool, datetime, str, lists of str)
  are copied region by region, after the checks that decoding them would
  make (bool bytes, datetime range, string offsets, UTF-8 at string
  boundaries, null masks); a column that fails them, or that a writer would
  lay out otherwise (all None, data under a null), takes the decoding path;
- everything else (strings, numbers, sets, dates...) is decoded as
  ``to_python`` decodes it and written again.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from . import _decode as D
from . import format as F
from . import arrays as A
from . import tables as T
from ._native import archive_error, dict_check, offsets_check, seq_check, slots_check
from ._snapshot import claim
from .tables import ArchivedTable
from .views import ArchivedDict, ArchivedList
from .errors import ArchiveError

if TYPE_CHECKING:
    from ._snapshot import Snapshot
    from .writer import _Writer

_ZERO8 = bytes(8)


def view_types() -> tuple[Any, ...]:
    """The archive view classes loaded so far (models only if imported)."""
    from .arrays import ArrayHandle

    kinds: tuple[Any, ...] = (ArchivedDict, ArchivedList, ArrayHandle)
    models = sys.modules.get(f"{__package__}.models")
    if models is not None:
        kinds += (models.ArchivedModel, models.ArchivedModelList)
    return kinds


def encode_view(w: _Writer, v: Any) -> bytes:
    """The writer's encoder for a view ``v``: see the module docstring."""
    shown = type(v).__name__
    if type(v).__module__ == f"{__package__}.models":  # ArchivedModel(List): its plain view
        inner = _plain_view(v)
        if inner is None:
            return w.value(v.to_python())  # (SchemaMismatchError for a foreign value)
        v = inner
    arch = getattr(v, "_arch", None)
    if arch is not None and arch._snap is None:
        raise ArchiveError(f"cannot archive a {shown}: its archive is closed "
                           f"(archive its value, .to_python(), before closing)")
    t = type(v)
    s = arch._snap if arch is not None else None
    if (t is ArchivedDict or t is ArchivedList or t is ArchivedTable) and s is not None:
        return w.value(_container_node(v, s, arch))
    if t.__name__ == "ArrayHandle":
        key = (id(s.raw), v._off) if s is not None else None
        laid = w.bulk.get(key)
        return w.ndarray(laid[0][0] if laid else v._full(), key)
    if isinstance(v, (ArchivedDict, ArchivedList)):  # a row, a list-of-str cell: small
        return w.value(v.to_python())
    raise ArchiveError(f"the archive holds a {t.__name__} where a view was expected")


def _plain_view(v: Any) -> Any:
    """The plain view of an ArchivedModel (a dict) or ArchivedModelList (a
    list or table), which is archived as it is; None when the model view
    must be archived from its value."""
    inner = v._view
    shown = type(v).__name__
    if type(inner) is ArchivedDict and shown == "ArchivedModel" \
            or isinstance(inner, ArchivedList) and shown == "ArchivedModelList":
        return inner
    return None


def _container_node(v: Any, s: Snapshot, arch: Any) -> _Node:
    """The node of the dict, list or table view ``v``, on a walk of its own."""
    return _Node(s.walk(arch), None, F.T_DICT if type(v) is ArchivedDict else v._tag, v._off, v._n)


class _Node:
    """One node of a view's subtree: the slot at ``pos``, or (``pos`` None)
    the container ``tag``/``off``/``n`` a view names."""

    __slots__ = ("walk", "pos", "tag", "off", "n")

    def __init__(self, walk: Snapshot, pos: int | None, tag: int = 0, off: int = 0,
                 n: int = 0) -> None:
        self.walk = walk
        self.pos = pos
        self.tag = tag
        self.off = off
        self.n = n


def _encode_node(w: _Writer, node: _Node) -> bytes:
    walk = node.walk  # (a walk holds the archive's snapshot: a close meanwhile is harmless)
    pos = node.pos
    if pos is None:  # a container a view names: handled below, never decoded whole
        tag, off, n = node.tag, node.off, node.n
    else:
        w0, off = D.SLOT(walk.raw, pos)
        tag, n = w0 & 0xFF, w0 >> 8
        if tag == F.T_MODEL:  # read without its model: its body, as to_python gives it
            claim(walk, off)
            return _encode_node(w, _Node(walk, D.model_body(walk, off)))
    if tag == F.T_DICT:
        return w.value(_dict(walk, off, n))
    if tag == F.T_LIST or tag == F.T_TUPLE:
        return w.sequence(_items(walk, tag, off, n), tag)
    if tag == F.T_TABLE:
        return _table(w, walk, off, n)
    if tag == F.T_NDARRAY:
        _, _, _, data_off, nbytes, external = A.array_meta(walk, off)
        if not external and nbytes > A.TRACK_MIN:
            claim(walk, data_off)  # (a copy claims it itself)
        key = (id(walk.raw), off)
        laid = w.bulk.get(key)  # its data laid out first (bulk_children found it)
        if laid:
            return w.ndarray(laid[0][0], key)
        # in the file: written from its memory; compressed: decoded for this write alone
        return w.ndarray(A.ndarray(walk, off, copy=external), key)
    if tag == F.T_BYTES:
        if n > A.TRACK_MIN:
            claim(walk, off)
        return w.bytes(walk.mv[off:off + n])
    if pos is None:  # a view names a container, never another node
        raise ArchiveError(f"the archive holds a {F.TAG_NAMES.get(tag, tag)} where a view "
                           f"was expected")
    return w.value(D.mat(walk, pos, 0))


def bulk_children(v: Any, found: list[tuple[Any, Any]]) -> list[Any]:
    """For the writer's bulk-first scan (``_bulk``): the children of a view
    or of a view's node in the order the scan visits them in the view's
    value (``to_python``), as nodes; an array node of at least
    ``F.BIG_PAYLOAD`` bytes goes to ``found`` as (key, array), the key
    ``encode_view`` looks it up by. Nothing is claimed (the scan uses a walk
    of its own); the nodes are checked as decoding checks them."""
    if type(v).__module__ == f"{__package__}.models":
        v = _plain_view(v)
        if v is None:
            return []  # written from its value, which the scan does not build
    t = type(v)
    if t is not _Node:
        arch = getattr(v, "_arch", None)
        s = arch._snap if arch is not None else None
        if s is None:
            return []
        if t is ArchivedDict or t is ArchivedList or t is ArchivedTable:
            v = _container_node(v, s, arch)
        elif t.__name__ == "ArrayHandle":
            if v.nbytes >= F.BIG_PAYLOAD:
                found.append(((id(s.raw), v._off), v._full()))
            return []
        else:
            return []
    tag, off, n = _resolved(v)
    walk = v.walk
    if tag == F.T_DICT:
        return [_Node(walk, pos + 16) for pos in _entries(walk, off, n)]
    if tag == F.T_LIST or tag == F.T_TUPLE:
        items = _item_nodes(walk, tag, off, n)
        if tag == F.T_LIST and n >= F.TABLE_MIN_ROWS and _resolved(items[0])[0] == F.T_DICT:
            return []  # its value is a list of dicts: records, not entered
        return items
    if tag == F.T_NDARRAY:
        _, _, _, _, nbytes, external = A.array_meta(walk, off)
        if nbytes >= F.BIG_PAYLOAD:
            found.append(((id(walk.raw), off), A.ndarray(walk, off, copy=external)))
    return []  # a table (its value: records), a leaf


def _resolved(node: _Node) -> tuple[int, int, int]:
    """The tag, offset and count of the container or value ``node`` names
    (a model: its body, which is its value without the model class)."""
    if node.pos is None:
        return node.tag, node.off, node.n
    w0, off = D.SLOT(node.walk.raw, node.pos)
    tag = w0 & 0xFF
    if tag == F.T_MODEL:
        return _resolved(_Node(node.walk, D.model_body(node.walk, off)))
    return tag, off, w0 >> 8


def _dict(walk: Snapshot, off: int, n: int) -> dict[Any, Any]:
    """A dict node as a dict of its keys (decoded) and child nodes."""
    claim(walk, off)
    return {D.mat(walk, pos, 1): _Node(walk, pos + 16) for pos in _entries(walk, off, n)}


def _entries(walk: Snapshot, off: int, n: int) -> range:
    """The positions of the (checked) dict node's entries: key slot, then value slot."""
    rc = dict_check(walk.ptr, walk.size, off, n)
    if rc < 0:
        raise archive_error(rc, f"dict node at offset {off}")
    start = off + D.DICT_ENTRIES
    return range(start, start + 32 * n, 32)


def _items(walk: Snapshot, tag: int, off: int, n: int) -> list[Any]:
    """A list or tuple node's child nodes."""
    claim(walk, off)
    return _item_nodes(walk, tag, off, n)


def _item_nodes(walk: Snapshot, tag: int, off: int, n: int) -> list[Any]:
    """The child nodes of the (checked) list or tuple node at ``off``."""
    rc = seq_check(walk.ptr, walk.size, off, n)
    if rc < 0:
        raise archive_error(rc, f"{F.TAG_NAMES.get(tag, tag)} node at offset {off}")
    return [_Node(walk, pos) for pos in range(off + 8, off + 8 + 16 * n, 16)]


# -- tables: packed columns copied region by region -------------------------------

def _table(w: _Writer, walk: Snapshot, off: int, n: int) -> bytes:
    from .writer import _ColumnBuilder

    claim(walk, off)
    info = T.table_info(walk, off, n)
    names = tuple(info.names(walk))
    if n < F.TABLE_MIN_ROWS or not names:  # not what a writer makes a table of: rows
        rows = T.table_rows(walk, info, 0)
        return w.value(rows)
    parts = []
    for c in range(info.ncols):
        part = _packed_column(walk, info, c)
        if part is None:  # decoded cells (nested values as nodes, written lazily too)
            part = _ColumnBuilder(False)
            part.add(_cells(walk, info, c))
        parts.append(part)
    return w.table_node(n, names, parts, parts)


def _cells(walk: Snapshot, info: Any, c: int) -> list[Any]:
    """Column ``c``'s cells: child nodes of a SLOTS column, else decoded values."""
    kind, _, r0, *_ = info.cols[c]
    if kind != F.COL_SLOTS:
        return T.column_values(walk, info, c, 0)
    n = info.nrows
    rc = slots_check(walk.ptr, walk.size, r0, n, info.off)
    if rc < 0:
        raise archive_error(rc, f"table column at offset {r0}")
    return [_Node(walk, pos) for pos in range(r0, r0 + 16 * n, 16)]


def _packed_column(walk: Snapshot, info: Any, c: int) -> Any:
    """A _ReadyColumn of column ``c``'s regions, as they are in the archive
    (memoryviews: no copy), if they pass the checks decoding would make and
    are what a writer would write for the decoded cells; else None."""
    from . import writer as W

    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    if kind == F.COL_SLOTS:
        return None
    regions = _packed_regions(walk, info, c)
    if regions is None:
        return None
    # the regions decoding claims (regions of no bytes may share an offset)
    claimed = {F.COL_STR: ((r0, r0n), (r1, r1n)),
               F.COL_STRLIST: ((r0, r0n), (r1, r1n), (r2, r2n))}.get(kind, ((r0, r0n),))
    for at, size in claimed:
        if size:
            claim(walk, at)
    return W._ReadyColumn(regions)


def _packed_regions(walk: Snapshot, info: Any, c: int) -> tuple[Any, ...] | None:
    """What ``_packed_column`` hands the writer, before any region is claimed."""
    from . import writer as W

    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    n = info.nrows
    T.fetch_column(walk, info, c)
    mv = walk.mv
    mask = None
    if flags:
        nulls_at = r2 if kind == F.COL_STR else r1
        mask = bytes(mv[nulls_at:nulls_at + n])
        if mask.translate(None, b"\x00\x01"):
            raise ArchiveError(f"null mask at offset {nulls_at} holds bytes other than 0 and 1")
        ones = mask.count(1)
        if ones == n:
            return None  # all None: a writer makes that a SLOTS column
        if ones == 0:
            return None  # a writer writes no mask then
    if kind in (F.COL_INT64, F.COL_FLOAT64, F.COL_DATETIME, F.COL_BOOL):
        width = 1 if kind == F.COL_BOOL else 8
        data = mv[r0:r0 + width * n]
        if kind == F.COL_BOOL and bytes(data).translate(None, b"\x00\x01"):
            raise ArchiveError(f"bool column at offset {r0} holds bytes other than 0 and 1")
        if kind == F.COL_DATETIME and n and not _micros_in_range(data):
            raise ArchiveError(f"datetime column at offset {r0}: value out of range")
        if mask is not None and not _zero_under(data, mask, width):
            return None  # a writer writes zeros under nulls
        wkind = {F.COL_INT64: W._K_INT, F.COL_FLOAT64: W._K_FLOAT, F.COL_BOOL: W._K_BOOL,
                 F.COL_DATETIME: W._K_DATETIME}[kind]
        return wkind, data, mask
    if kind == F.COL_STR:
        offsets = _strings_regions(walk, r0, n, r1, r1n, mask)
        return None if offsets is None else (W._K_STR, offsets, mv[r1:r1 + r1n], mask)
    if kind == F.COL_STRLIST:
        nitems = r1n // 8 - 1
        rc = offsets_check(walk.ptr, walk.size, r0, n + 1, nitems)
        if rc < 0:
            raise archive_error(rc, f"list offsets at offset {r0}")
        if _last(mv, r0, n) != nitems:
            return None  # items no row holds: decoding drops them
        items = _strings_regions(walk, r1, nitems, r2, r2n, None)
        return None if items is None else (W._K_STRLIST, mv[r0:r0 + 8 * (n + 1)], items,
                                           mv[r2:r2 + r2n])
    return None


def _last(mv: memoryview, at: int, count: int) -> int:
    """The last of ``count + 1`` uint64 at ``at``."""
    end = at + 8 * (count + 1)
    return int.from_bytes(mv[end - 8:end], "little")


def _strings_regions(walk: Snapshot, offsets_at: int, count: int, blob_at: int, blob_len: int,
                     mask: bytes | None) -> memoryview | None:
    """The offsets region of ``count`` strings, checked as ``tables._strings``
    checks it (ArchiveError if it fails), or None if the strings need
    decoding to be written as a writer would (a non-empty string under a
    null; non-ASCII text without NumPy to check its boundaries)."""
    mv = walk.mv
    rc = offsets_check(walk.ptr, walk.size, offsets_at, count + 1, blob_len)
    if rc < 0:
        raise archive_error(rc, f"string offsets at offset {offsets_at}")
    if _last(mv, offsets_at, count) != blob_len:
        raise ArchiveError(f"string offsets at offset {offsets_at} end at "
                           f"{_last(mv, offsets_at, count)}, the blob holds {blob_len} bytes")
    offsets = mv[offsets_at:offsets_at + 8 * (count + 1)]
    if mask is not None:
        offs = offsets.cast("Q")
        i = mask.find(1)
        while i >= 0:
            if offs[i] != offs[i + 1]:
                return None
            i = mask.find(1, i + 1)
    blob = mv[blob_at:blob_at + blob_len]
    if bytes(blob).isascii():
        return offsets
    np = sys.modules.get("numpy")
    if np is None:
        return None
    try:  # valid UTF-8 as a whole, and every string starts on a character
        str(blob, "utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"invalid UTF-8 in string blob at offset {blob_at}: "
                           f"{exc.reason}") from None
    starts = np.frombuffer(offsets, "<u8")[:-1]
    starts = starts[starts < blob_len]
    if (np.frombuffer(blob, np.uint8)[starts] & 0xC0 == 0x80).any():
        raise ArchiveError(f"invalid UTF-8 in string blob at offset {blob_at}: "
                           f"a string starts inside a character")
    return offsets


def _micros_in_range(data: memoryview) -> bool:
    np = sys.modules.get("numpy")
    if np is not None:
        arr = np.frombuffer(data, "<i8")
        return bool(arr.min() >= 0 and arr.max() <= T.MAX_MICROS)
    values = data.cast("q")
    return min(values) >= 0 and max(values) <= T.MAX_MICROS


def _zero_under(data: memoryview, mask: bytes, width: int) -> bool:
    """Are the cells of ``data`` under the nulls of ``mask`` all zero bytes?"""
    zero = _ZERO8[:width]
    i = mask.find(1)
    while i >= 0:
        if data[i * width:(i + 1) * width] != zero:
            return False
        i = mask.find(1, i + 1)
    return True


def _register() -> None:
    from .writer import _ENCODERS

    _ENCODERS[_Node] = _encode_node


_register()
