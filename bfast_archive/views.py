"""Lazy views of archived dicts and lists: ``ArchivedDict``, ``ArchivedList``.

A view holds its archive and a node's offset; each read takes the archive's
snapshot once (``archive is closed`` after ``close()``), asks the C core to
check the node and the child slot, and decodes only the value asked for.

A view pickles as its archive (by reference, ``_refs.py``) and those
coordinates: ``view_reduce``.
"""
from __future__ import annotations

import operator
from collections.abc import ItemsView, Mapping, Sequence, ValuesView
from typing import Any, Iterator

from . import _decode as D
from ._decode import decode, dict_pos
from . import format as F
from ._limits import gc_paused, recursion_headroom
from ._native import E_INDEX, archive_error, dict_check, seq_check, seq_get
from ._snapshot import Snapshot, closed


def snapshot_of(view: Any) -> Snapshot:
    """The snapshot of ``view``'s archive, or "archive is closed"."""
    s: Snapshot | None = view._arch._snap
    if s is None:
        raise closed()
    return s


def view_reduce(view: Any, rebuild: Any, *coords: Any) -> tuple[Any, ...]:
    """A view's pickle: ``rebuild(archive, *coords)`` after unpickling. The
    archive pickles by reference (path, file identity, options), so the
    coordinates name the same node when it is reopened; "archive is closed"
    for a view of a closed archive."""
    snapshot_of(view)
    return rebuild, (view._arch,) + coords


def item_index(index: Any, n: int) -> int | range:
    """``index`` of a sequence of ``n`` items as list indexing reads it: a
    slice as the range of its items, else the item's non-negative position.
    TypeError for other index types, IndexError when out of range."""
    if type(index) is not int:
        if isinstance(index, slice):
            return range(*index.indices(n))
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"ArchivedList indices must be integers or slices, "
                            f"not {type(index).__name__}") from None
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError("ArchivedList index out of range")
    return int(index)


class ArchivedDict(Mapping[Any, Any]):
    """A read-only, lazy view of an archived dict: a ``Mapping`` in the
    original insertion order. ``d[key]`` hashes the key and probes the
    archived index in C: O(1) expected, touches a few cache lines."""

    __slots__ = ("_arch", "_off", "_n")

    def __init__(self, arch: Any, off: int, n: int) -> None:
        self._arch = arch
        self._off = off
        self._n = n

    def __getitem__(self, key: Any) -> Any:
        arch = self._arch
        s = arch._snap
        if s is None:
            raise closed()
        return decode(arch, s, dict_pos(s, self._off, key))

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        s = snapshot_of(self)
        for pos in self._entries(s):
            yield D.mat(s, pos, 0)

    def _entries(self, s: Snapshot) -> Iterator[int]:
        """Positions of the entries' key slots, after one C check of the node."""
        rc = dict_check(s.ptr, s.size, self._off, self._n)
        if rc < 0:
            raise archive_error(rc, f"dict node at offset {self._off}")
        arch = self._arch
        start = self._off + D.DICT_ENTRIES
        for pos in range(start, start + 32 * self._n, 32):
            if arch._snap is None:
                raise closed()
            yield pos

    def values(self) -> ValuesView[Any]:
        return _DictValues(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return view_reduce(self, ArchivedDict, self._off, self._n)

    def array(self, key: Any) -> Any:
        """A lazy ``ArrayHandle`` on the array at ``self[key]``: ``.shape``,
        ``.dtype``, ``len``, slicing along the first axis, ``np.asarray``.
        On a compressed archive a slice decompresses only the chunks that
        hold its rows; uncompressed, slices are zero-copy views. O(1)."""
        s = snapshot_of(self)
        w0, p = D.SLOT(s.raw, dict_pos(s, self._off, key))
        if w0 & 0xFF != F.T_NDARRAY:
            raise TypeError(f"{key!r} is a {F.TAG_NAMES.get(w0 & 0xFF, 'value')}, not an array")
        from .arrays import ArrayHandle

        return ArrayHandle(self._arch, p)

    def items(self) -> ItemsView[Any, Any]:
        return _DictItems(self)

    def to_python(self) -> dict[Any, Any]:
        """Copy this dict out into plain Python objects. Cost: its whole subtree."""
        value: dict[Any, Any] = D.to_python(self._arch, F.T_DICT, self._off, self._n)
        return value

    def __repr__(self) -> str:
        if self._arch._snap is None:
            return f"<ArchivedDict {self._n} keys (archive closed)>"
        shown = []
        for i, key in enumerate(self):
            if i == 8:
                shown.append("...")
                break
            shown.append(repr(key))
        noun = "key" if self._n == 1 else "keys"
        return f"<ArchivedDict {self._n} {noun}{': ' if shown else ''}{', '.join(shown)}>"


class _DictValues(ValuesView[Any]):
    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        d = self._mapping  # type: ignore[attr-defined]  # (the view's mapping; not in typeshed)
        s = snapshot_of(d)
        for pos in d._entries(s):
            yield decode(d._arch, s, pos + 16)


class _DictItems(ItemsView[Any, Any]):
    __slots__ = ()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        d = self._mapping  # type: ignore[attr-defined]  # (the view's mapping; not in typeshed)
        s = snapshot_of(d)
        for pos in d._entries(s):
            yield D.mat(s, pos, 0), decode(d._arch, s, pos + 16)


class ArchivedList(Sequence[Any]):
    """A read-only, lazy view of an archived list or tuple: a ``Sequence``.
    ``l[i]`` (negative too) is one C call, O(1); slices give a list of items."""

    __slots__ = ("_arch", "_off", "_n", "_tag")

    def __init__(self, arch: Any, off: int, n: int, tag: int) -> None:
        self._arch = arch
        self._off = off
        self._n = n
        self._tag = tag

    def __getitem__(self, index: Any) -> Any:
        if type(index) is not int or not 0 <= index < self._n:
            index = item_index(index, self._n)
            if type(index) is range:
                return [self[i] for i in index]
        arch = self._arch
        s = arch._snap
        if s is None:
            raise closed()
        pos = seq_get(s.ptr, s.size, self._off, index)
        if pos < 0:
            if pos == E_INDEX:
                raise IndexError("ArchivedList index out of range")
            raise archive_error(pos, f"list node at offset {self._off}")
        return decode(arch, s, pos)

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        arch = self._arch
        s = snapshot_of(self)
        for pos in self._slots(s):
            yield decode(arch, s, pos)

    def _slots(self, s: Snapshot) -> Iterator[int]:
        rc = seq_check(s.ptr, s.size, self._off, self._n)
        if rc < 0:
            raise archive_error(rc, f"list node at offset {self._off}")
        arch = self._arch
        start = self._off + 8
        for pos in range(start, start + 16 * self._n, 16):
            if arch._snap is None:
                raise closed()
            yield pos

    def __reduce__(self) -> tuple[Any, ...]:
        return view_reduce(self, type(self), self._off, self._n, self._tag)

    @property
    def is_tuple(self) -> bool:
        """True if the archived value was a tuple (``to_python`` gives a tuple)."""
        return bool(self._tag == F.T_TUPLE)

    def column(self, name: Any) -> Any:
        """The value of key ``name`` in every item of this list of dicts, as
        a table's ``column`` gives it (whatever layout the list was stored
        in): an owned NumPy array when the values are numbers the array holds
        exactly (a masked array if some are None; see ``numeric_array``),
        else a list of plain values. KeyError naming the first item that has
        no key ``name``; TypeError if an item is not a dict. Cost: one dict
        probe per item plus each value's copy-out."""
        from .tables import numeric_array

        s = snapshot_of(self)
        with recursion_headroom(s.max_depth), gc_paused():
            walk = s.walk(self._arch)
            values = []
            for i, pos in enumerate(self._slots(walk)):
                w0, p = D.SLOT(walk.raw, pos)
                tag = w0 & 0xFF
                if tag == F.T_MODEL:  # (a model instance among plain items: its field dict)
                    w0, p = D.SLOT(walk.raw, D.model_body(walk, p))
                    tag = w0 & 0xFF
                if tag != F.T_DICT:
                    raise TypeError(f"column() needs a list of dicts: item {i} is a "
                                    f"{F.TAG_NAMES.get(tag, 'value')}")
                try:
                    at = D.dict_pos(walk, p, name)
                except KeyError:
                    raise KeyError(f"item {i} has no key {name!r}") from None
                values.append(D.mat(walk, at, 1))
        array = numeric_array(values)
        return values if array is None else array

    def to_python(self) -> list[Any] | tuple[Any, ...]:
        """Copy this list out into plain Python objects. Cost: its whole subtree."""
        value: list[Any] | tuple[Any, ...] = D.to_python(self._arch, self._tag, self._off,
                                                          self._n)
        return value

    def __eq__(self, other: object) -> bool:
        """Equal to a list (a tuple, for an archived tuple) or a view of the same values.
        Cost: O(1) when the other is a list, tuple or view of another length or the other
        kind (list against tuple); else both copied out (``to_python``) and compared."""
        if isinstance(other, ArchivedList):
            if len(other) != self._n or other.is_tuple != self.is_tuple:
                return False
            other = other.to_python()
        if isinstance(other, (list, tuple)):
            if type(other) in (list, tuple) and (
                    len(other) != self._n or (type(other) is tuple) != self.is_tuple):
                return False  # what to_python() would compare unequal (subclasses may differ)
            return self.to_python() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kind = "tuple, " if self._tag == F.T_TUPLE else ""
        noun = "item" if self._n == 1 else "items"
        state = " (archive closed)" if self._arch._snap is None else ""
        return f"<ArchivedList {kind}{self._n} {noun}{state}>"


D.register(ArchivedDict=ArchivedDict, ArchivedList=ArchivedList)
