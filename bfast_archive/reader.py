"""The reader: an Archive over a mapped file or any buffer, and lazy views.

Every step of a path (``arch["users"][i]["name"]``) is one call into the C
core, which checks the node and the child slot it returns (bounds, alignment,
type, children-before-parents) before Python reads a byte of it. Python then
decodes only the value asked for. Containers come back as views, byte
payloads as read-only memoryviews / NumPy arrays over the buffer, everything
else as ordinary Python values.
"""
from __future__ import annotations

import datetime as _dt
import mmap
import operator
import os
import sys
from collections.abc import ItemsView, Mapping, Sequence, ValuesView
from typing import Any, Iterator

from . import _pytable
from . import format as F
from ._limits import gc_paused, recursion_headroom
from ._mappings import TooSmall, forget, map_file
from ._native import (E_INDEX, NOTFOUND, archive_error, buffer_pointer, check_slot,
                      dict_check, dict_find, offsets_check, parse_header, release, seq_check,
                      seq_get, slots_check, table_check)
from .errors import ArchiveError

_SLOT = F.SLOT.unpack_from
_F64 = F.SLOT_FLOAT.unpack_from
_NDH = F.NDARRAY_HEADER.unpack_from
_DICT_ENTRIES = F.DICT_HEADER.size
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_NONE_TYPE = type(None)
_EPOCH = _dt.datetime(1, 1, 1)
_np = None


def _numpy():
    global _np
    if _np is None:
        import numpy

        _np = numpy
    return _np


def _closed() -> ArchiveError:
    return ArchiveError("archive is closed")


# close() in one thread may run while other threads read (docs/SECURITY.md).
# close() drops the archive's references (_ptr first, then _file, _mv, _raw)
# and never releases or unmaps anything itself, so a read never touches freed
# memory as long as it works on references it holds:
# - every read takes each buffer attribute (_ptr, _raw, _mv) into a local
#   once, raises "archive is closed" if it is None, and from then on uses only
#   the local, never the attribute again (the helpers below, or inline checks
#   on the hot paths); copy-outs take all of them at once in a _Walk;
# - a C call receives that local pointer, which owns the buffer export
#   (from_buffer; _native.buffer_pointer): while the call runs, with the GIL
#   released, the caller's frame holds the pointer, so the export, and with it
#   the mmap or bytes object, outlive the call even if close() has dropped
#   every other reference meanwhile. The mapping goes when the last holder does.

def _raw_of(arch: Any) -> Any:
    """``arch._raw``, or "archive is closed"."""
    raw = arch._raw
    if raw is None:
        raise _closed()
    return raw


def _mv_of(arch: Any) -> memoryview:
    """``arch._mv``, or "archive is closed"."""
    mv = arch._mv
    if mv is None:
        raise _closed()
    return mv


def _ptr_of(arch: Any) -> Any:
    """``arch._ptr`` (the C pointer), or "archive is closed"."""
    ptr = arch._ptr
    if ptr is None:
        raise _closed()
    return ptr


class Archive:
    """A read-only archive over a memory-mapped file or a caller's buffer.

    ``Archive.open(path)`` maps the file and checks the 64-byte header: O(1),
    whatever the file's size, nothing else is read. ``arch.root`` is the root
    value; ``arch[key]`` is ``arch.root[key]``. Use it as a context manager or
    call ``close()``; arrays and memoryviews handed out stay valid after close
    (the mapping lives until the last of them is gone), views do not.
    """

    __slots__ = ("_mv", "_raw", "_ptr", "_owner", "_size", "_source", "_name", "_tables",
                 "_root_tag", "_root_off", "_root_slots", "max_depth", "threads", "_file",
                 "model", "__weakref__")

    def __new__(cls, *args: Any, **kwargs: Any) -> "Archive":
        # The constructor is internal (Archive.open and Archive.from_buffer
        # call it with a source, its memoryview and a name): a user's
        # Archive("x.bfa") is told what to call instead.
        if len(args) < 3 or not isinstance(args[1], memoryview):
            raise TypeError("Archive objects are made by Archive.open(path) (a file) or "
                            "Archive.from_buffer(buffer) (bytes in memory), not Archive(...)")
        return super().__new__(cls)

    def __init__(self, source: Any, view: memoryview, name: str,
                 max_depth: int = F.DEFAULT_MAX_DEPTH, *, verify: bool = False,
                 require_zero_copy: bool = False, threads: int | None = None,
                 model: type | None = None, caches: dict | None = None) -> None:
        self.model = model
        self._source = source
        self._name = name
        # what is parsed from the bytes once (table geometry, array descriptors,
        # schemas, the root's slots); shared with other archives over the same
        # kept mapping of an unchanged file (_mappings.py)
        if caches is None:
            self._tables: dict[Any, Any] = {}
            self._root_slots: dict[str, tuple[int, int, int]] = {}
        else:
            self._tables = caches.setdefault("tables", {})
            self._root_slots = caches.setdefault("root", {})
        self.max_depth = max_depth
        self.threads = threads
        # The C pointer exports from the source object itself, never from our
        # memoryview: a memoryview with exports that ends up in cyclic garbage
        # at interpreter exit cannot be cleared safely. For the same reason no
        # view is cached on the archive (a view refers to its archive).
        owner, ptr = buffer_pointer(source)
        self._file = None
        self._owner = self._ptr = None
        try:
            header = caches.get("header") if caches is not None else None
            if header is None:  # (a kept mapping's header was checked by an earlier open)
                header = parse_header(ptr, view.nbytes)
                if caches is not None:
                    caches["header"] = header
            if header.flags & F.F_COMPRESSED:
                from .payloads import FileLayer

                self._file = FileLayer(source, view, owner, ptr, header)
            elif header.flags & F.F_CHECKSUMS:
                self._file = header  # the checksum layer is built by verify()
        except BaseException:
            release(owner)
            raise
        if self._file is not None and header.flags & F.F_COMPRESSED:
            if require_zero_copy:
                self._file.release()
                raise ArchiveError("archive is compressed: reading it decompresses (copies) "
                                   "data; open it without require_zero_copy=True")
            try:
                image = self._file.structure(self._threads())
                owner, ptr = buffer_pointer(image)
                view = memoryview(image).toreadonly()
                source = image
            except BaseException:
                self._file.release()
                raise
        self._owner, self._ptr = owner, ptr
        self._mv = view
        # what string and struct reads slice: bytes and mmap slice to bytes, fastest
        self._raw = source if type(source) in (bytes, mmap.mmap) else view
        compressed = bool(header.flags & F.F_COMPRESSED)
        self._size = header.nodes_end if compressed else header.file_size
        w0, self._root_off = _SLOT(view, F.ROOT_SLOT_POS)
        self._root_tag = w0 & 0xFF
        if compressed:
            rc = check_slot(ptr, self._size, F.ROOT_SLOT_POS, self._size)
            if rc < 0:
                self._release()
                raise archive_error(rc, "root slot at offset 24")
        if verify:
            try:
                self.verify()
            except BaseException:
                self._release()
                raise

    def _threads(self) -> int:
        from .framing import default_threads

        return default_threads(self.threads)

    _seen: Any = None  # set below to _NoTracking(): a lazy single-value read tracks nothing

    @classmethod
    def open(cls, path: str | os.PathLike, *, model: type | None = None, verify: bool = False,
             require_zero_copy: bool = False, threads: int | None = None,
             max_depth: int = F.DEFAULT_MAX_DEPTH) -> "Archive":
        """Map the file at ``path`` read-only and check its header. O(1) for an
        uncompressed archive: one open, one mmap, one 64-byte read; the rest is
        paged in on access. The mapping is kept for the next ``open`` of the
        same unchanged file, which then costs one ``stat`` instead of mapping
        it again (``bfa.release_mappings()`` drops kept mappings). A
        compressed archive also decompresses its nodes (not its array
        payloads) here. ``verify=True`` checks every checksum
        first (reads the whole file, in parallel on ``threads`` threads);
        ``require_zero_copy=True`` refuses a compressed archive. With
        ``model=M`` (a pydantic model class, or ``list[M]``, ``tuple[M, ...]``,
        ``dict[str, M]``), ``root`` is a typed ``ArchivedModel`` view
        (``arch.root.users[3].name``), or a list or dict of them."""
        return cls._open_path(path, True, model=model, verify=verify,
                              require_zero_copy=require_zero_copy, threads=threads,
                              max_depth=max_depth)

    @classmethod
    def _open_path(cls, path: str | os.PathLike, keep_mapping: bool, *, model: type | None,
                   verify: bool, require_zero_copy: bool, threads: int | None,
                   max_depth: int) -> "Archive":
        name = os.path.expanduser(os.fspath(path))
        try:
            mm, caches = map_file(name, F.HEADER_SIZE, keep_mapping)
        except TooSmall as small:
            raise ArchiveError(f"{name}: archive is truncated ({small.args[0]} bytes, "
                               f"the header alone is {F.HEADER_SIZE})") from None
        try:
            return cls(mm, memoryview(mm), name, max_depth, verify=verify,
                       require_zero_copy=require_zero_copy, threads=threads, model=model,
                       caches=caches)
        except ArchiveError as exc:
            forget(name, mm)  # unmapped once the last reference goes
            if str(exc).startswith(f"{name}: "):  # verify=True: verify() named the file
                raise
            raise ArchiveError(f"{name}: {exc}") from None

    @classmethod
    def from_buffer(cls, buffer: Any, *, model: type | None = None, verify: bool = False,
                    require_zero_copy: bool = False, threads: int | None = None,
                    max_depth: int = F.DEFAULT_MAX_DEPTH) -> "Archive":
        """An archive over any buffer-protocol object (bytes, bytearray,
        memoryview, mmap, a NumPy byte array), without copying it. The buffer
        must not change while the archive or its views are in use. Options as
        for ``open``."""
        try:
            view = memoryview(buffer)
        except TypeError:
            raise TypeError(f"from_buffer needs a bytes-like object, "
                            f"not {type(buffer).__name__}") from None
        if not view.c_contiguous:
            raise TypeError("from_buffer needs a contiguous buffer")
        view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        return cls(buffer, view.toreadonly(), f"<{type(buffer).__name__}>", max_depth,
                   verify=verify, require_zero_copy=require_zero_copy, threads=threads,
                   model=model)

    @property
    def checksummed(self) -> bool:
        """True if the archive carries XXH64 checksums (all archives this
        library writes do); ``verify()`` then checks them."""
        return self._file is not None

    @property
    def compressed(self) -> bool:
        """True if the archive's nodes and payloads are LZ4-compressed."""
        return self._layer() is not None and self._file.compressed

    def _layer(self) -> Any:
        """The file layer (directory, checksums, payloads), built on first need."""
        layer = self._file
        if layer is not None and not hasattr(layer, "verify"):
            from .payloads import FileLayer

            layer = self._file = FileLayer(self._source, self._mv, self._owner, self._ptr, layer)
        return layer

    def verify(self) -> int:
        """Check every checksum of the archive, on ``threads`` threads in C:
        the XXH64 of each section (uncompressed) or of each stored chunk
        (compressed). Raises ArchiveError naming the first bad section or
        chunk; returns the number of bytes checked. An archive written without
        checksums is instead checked by walking all of it."""
        if self._ptr is None:
            raise _closed()
        try:
            layer = self._layer()
            if layer is None:
                self.to_python()
                return self._size
            return layer.verify(self._threads())
        except ArchiveError as exc:
            if str(exc).startswith(f"{self._name}: "):
                raise
            raise ArchiveError(f"{self._name}: {exc}") from None

    def array(self, key: Any) -> Any:
        """A lazy handle on the array at ``arch[key]`` (see ``ArchivedDict.array``)."""
        root = self.root
        if not isinstance(root, ArchivedDict):
            raise TypeError("Archive.array needs an archive whose root is a dict")
        return root.array(key)

    # -- access ----------------------------------------------------------------
    @property
    def root(self) -> Any:
        """The root value: a view for a container, else a plain value. O(1).
        Opened with ``model=M``: an ``ArchivedModel`` (or a list of them)."""
        if self._ptr is None:
            raise _closed()
        value = _decode(self, F.ROOT_SLOT_POS)
        if self.model is not None:
            from .models import typed_view

            schema = self._tables.get("root schema") if self._root_tag == _T_MODEL else None
            return typed_view(value, self.model, schema if schema is not None
                              else self._root_schema())
        return value

    def _root_schema(self) -> Any:
        """The stored schema of the root when it is a model node; else None."""
        if self._root_tag != _T_MODEL:
            return None
        schema = self._tables.get("root schema")
        if schema is None:
            schema = self._tables["root schema"] = _schema(self, self._root_off)
        return schema

    def _item_schema(self) -> Any:
        """The stored schema of the root's first item or value when that is
        a model node (a list or dict of model instances); else None."""
        tag = self._root_tag
        if tag in (_T_LIST, _T_TUPLE, _T_DICT):
            value = _decode(self, F.ROOT_SLOT_POS)
            if len(value):
                return model_schema_at(value, 0 if tag != _T_DICT else next(iter(value)))
        return None

    def to_model(self, model: Any = None, *, trusted: bool = False,
                 verify: bool = True) -> Any:
        """The whole archive as instances of pydantic model ``model`` (default:
        the one given to ``open``; also ``list[M]``, ``tuple[M, ...]``,
        ``dict[str, M]``): validated by field name, every field's stored type
        checked against the model's (models.py); with ``trusted=True`` and an
        archive written from the same models (every schema fingerprint
        matches) built directly, without validation. Checksums are verified first, as for
        ``to_python``. Cost: the whole archive."""
        from .models import build, trusted_classes, trusted_result

        model = model or self.model
        if model is None:
            raise TypeError("to_model needs a pydantic model class")
        if self._ptr is None:
            raise _closed()
        if verify:
            _check_sums(self, self._size)
        classes = trusted_classes(model) if trusted else None
        with recursion_headroom(self.max_depth), gc_paused():
            if classes:
                walk = _Walk(self, check=verify)
                walk._models = classes
                try:
                    done = trusted_result(model, _mat(walk, F.ROOT_SLOT_POS, 0))
                except _NotTrusted:  # a model node of a class that changed
                    done = None
                except (TypeError, ValueError, KeyError, AttributeError) as exc:
                    if isinstance(exc, ArchiveError):
                        raise
                    done = None  # values no instance can be built from: validated instead
                if done is not None:
                    return done[0]
            walk = _Walk(self, check=verify)
            walk._models = {}  # copy out plainly, noting every model node's schema
            data = _mat(walk, F.ROOT_SLOT_POS, 0)
        return build(model, data, self._root_schema() or self._item_schema(), noted_schemas(self),
                     items_only=self._root_tag != _T_MODEL)

    def __getitem__(self, key: Any) -> Any:
        if self.model is not None:
            return self.root[key]
        if self._root_tag == _T_DICT and self._ptr is not None:
            # Top-level keys are looked up again and again (arch["users"][i]...):
            # the checked slot of a container is remembered, as plain ints.
            # Other values: the checked slot's position.
            hit = self._root_slots.get(key) if type(key) is str else None
            if hit is not None:
                tag, n, p = hit
                if tag == _T_DICT:
                    return ArchivedDict(self, p, n)
                if tag == _T_TABLE:
                    return ArchivedTable(self, p, n, tag)
                if tag == _T_LIST or tag == _T_TUPLE:
                    return ArchivedList(self, p, n, tag)
                return _decode(self, p)
            pos = _dict_pos(self, self._root_off, key)
            if type(key) is str:
                w0, p = _SLOT(_raw_of(self), pos)
                tag = w0 & 0xFF
                if tag in (_T_DICT, _T_TABLE, _T_LIST, _T_TUPLE):
                    self._root_slots[key] = (tag, w0 >> 8, p)
                else:
                    self._root_slots[key] = (-1, 0, pos)
            return _decode(self, pos)
        root = self.root
        if not isinstance(root, (ArchivedDict, ArchivedList)):
            raise TypeError(f"the archive's root is a {type(root).__name__}, not a container")
        return root[key]

    # The container protocol of the root: ``key in arch``, ``len(arch)``,
    # ``iter(arch)`` (a dict's keys, a list's items), as ``arch.root`` gives them.
    def _container(self) -> Any:
        root = self.root
        if not isinstance(root, (Mapping, Sequence)) or isinstance(root, (str, memoryview)):
            raise TypeError(f"the archive's root is a {type(root).__name__}, not a container")
        return root

    def __contains__(self, key: object) -> bool:
        return key in self._container()

    def __len__(self) -> int:
        return len(self._container())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._container())

    def __bool__(self) -> bool:
        return True  # an archive, open or closed, not its root's emptiness (no __len__ call)

    def to_python(self, *, verify: bool = True) -> Any:
        """Copy the whole archive out into plain Python objects (arrays as
        owned copies, bytes as ``bytes``). Cost: proportional to the archive.

        A copy checks what it copies: the XXH64 checksums of the archive are
        verified first (in C, in parallel, 1-2.5% of the copy's time for
        100,000 records; once per open archive), so damaged bytes raise ``ArchiveError`` instead of
        coming back as altered data. ``verify=False`` skips that check (the
        structural checks of every read still run)."""
        if self._ptr is None:
            raise _closed()
        if verify:
            _check_sums(self, self._size)
        with recursion_headroom(self.max_depth), gc_paused():
            return _mat(_Walk(self, check=verify), F.ROOT_SLOT_POS, 0)

    @property
    def nbytes(self) -> int:
        """The archive's size in bytes, as its header declares."""
        return self._file.file_size if self._file is not None else self._size

    @property
    def closed(self) -> bool:
        return self._ptr is None

    # -- lifetime --------------------------------------------------------------
    def close(self) -> None:
        """Release the buffer. Views raise ArchiveError afterwards; arrays and
        memoryviews already handed out keep the mapping alive until they go."""
        if self._ptr is not None:
            self._release()

    def _release(self) -> None:
        # References are dropped, never closed by hand: CPython unmaps the file
        # (and releases the C pointer's export) when the last user is gone,
        # so a walk still running in another thread, or an array handed out,
        # keeps reading valid memory.
        self._ptr = self._owner = None
        self._file = None
        self._tables = {}
        self._root_slots = {}
        self._mv = self._raw = None
        self._source = None

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else f"{self.nbytes} bytes"
        return f"<Archive {self._name} {state}>"


class ArchivedDict(Mapping):
    """A read-only, lazy view of an archived dict: a ``Mapping`` in the
    original insertion order. ``d[key]`` hashes the key and probes the
    archived index in C: O(1) expected, touches a few cache lines."""

    __slots__ = ("_arch", "_off", "_n")

    def __init__(self, arch: Archive, off: int, n: int) -> None:
        self._arch = arch
        self._off = off
        self._n = n

    def __getitem__(self, key: Any) -> Any:
        return _dict_get(self._arch, self._off, key)

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        arch = self._arch
        for pos in self._entries():
            yield _mat(arch, pos, 0)

    def _entries(self) -> Iterator[int]:
        """Positions of the entries' key slots, after one C check of the node."""
        arch = self._arch
        rc = dict_check(_ptr_of(arch), arch._size, self._off, self._n)
        if rc < 0:
            raise archive_error(rc, f"dict node at offset {self._off}")
        start = self._off + _DICT_ENTRIES
        for pos in range(start, start + 32 * self._n, 32):
            if arch._ptr is None:
                raise _closed()
            yield pos

    def values(self) -> ValuesView:
        return _DictValues(self)

    def array(self, key: Any) -> Any:
        """A lazy ``ArrayHandle`` on the array at ``self[key]``: ``.shape``,
        ``.dtype``, ``len``, slicing along the first axis, ``np.asarray``.
        On a compressed archive a slice decompresses only the chunks that
        hold its rows; uncompressed, slices are zero-copy views. O(1)."""
        arch = self._arch
        ptr = arch._ptr
        if ptr is None:
            raise _closed()
        kind, kb = _key_bytes(key)
        pos = dict_find(ptr, arch._size, self._off, kind, kb, len(kb),
                        int.from_bytes(kb, "little", signed=True) if kind == _K_INT else 0)
        if pos < 0:
            if pos == NOTFOUND:
                raise KeyError(key)
            raise archive_error(pos, f"dict node at offset {self._off}")
        w0, p = _SLOT(_raw_of(arch), pos)
        if w0 & 0xFF != _T_NDARRAY:
            raise TypeError(f"{key!r} is a {F.TAG_NAMES.get(w0 & 0xFF, 'value')}, not an array")
        from .arrays import ArrayHandle

        return ArrayHandle(arch, p)

    def items(self) -> ItemsView:
        return _DictItems(self)

    def to_python(self) -> dict:
        """Copy this dict out into plain Python objects. Cost: its whole subtree."""
        return _to_python(self._arch, F.T_DICT, self._off, self._n)

    def __repr__(self) -> str:
        if self._arch._ptr is None:
            return f"<ArchivedDict {self._n} keys (archive closed)>"
        shown = []
        for i, key in enumerate(self):
            if i == 8:
                shown.append("...")
                break
            shown.append(repr(key))
        noun = "key" if self._n == 1 else "keys"
        return f"<ArchivedDict {self._n} {noun}{': ' if shown else ''}{', '.join(shown)}>"


class _DictValues(ValuesView):
    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        d = self._mapping
        for pos in d._entries():
            yield _decode(d._arch, pos + 16)


class _DictItems(ItemsView):
    __slots__ = ()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        d = self._mapping
        arch = d._arch
        for pos in d._entries():
            yield _mat(arch, pos, 0), _decode(arch, pos + 16)


class ArchivedList(Sequence):
    """A read-only, lazy view of an archived list or tuple: a ``Sequence``.
    ``l[i]`` (negative too) is one C call, O(1); slices give a list of items."""

    __slots__ = ("_arch", "_off", "_n", "_tag")

    def __init__(self, arch: Archive, off: int, n: int, tag: int) -> None:
        self._arch = arch
        self._off = off
        self._n = n
        self._tag = tag

    def __getitem__(self, index: Any) -> Any:
        arch = self._arch
        ptr = arch._ptr
        if ptr is None:
            raise _closed()
        if type(index) is not int:
            if isinstance(index, slice):
                return [self[i] for i in range(*index.indices(self._n))]
            try:
                index = operator.index(index)
            except TypeError:
                raise TypeError(f"ArchivedList indices must be integers or slices, "
                                f"not {type(index).__name__}") from None
        if not _INT_MIN <= index <= _INT_MAX:
            raise IndexError("ArchivedList index out of range")
        pos = seq_get(ptr, arch._size, self._off, index)
        if pos < 0:
            if pos == E_INDEX:
                raise IndexError("ArchivedList index out of range")
            raise archive_error(pos, f"list node at offset {self._off}")
        return _decode(arch, pos)

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        arch = self._arch
        for pos in self._slots():
            yield _decode(arch, pos)

    def _slots(self) -> Iterator[int]:
        arch = self._arch
        rc = seq_check(_ptr_of(arch), arch._size, self._off, self._n)
        if rc < 0:
            raise archive_error(rc, f"list node at offset {self._off}")
        start = self._off + 8
        for pos in range(start, start + 16 * self._n, 16):
            if arch._ptr is None:
                raise _closed()
            yield pos

    @property
    def is_tuple(self) -> bool:
        """True if the archived value was a tuple (``to_python`` gives a tuple)."""
        return self._tag == F.T_TUPLE

    def column(self, name: Any) -> Any:
        """The value of key ``name`` in every item of this list of dicts, as
        a table's ``column`` gives it (whatever layout the list was stored
        in): an owned NumPy array when the values are numbers the array holds
        exactly (a masked array if some are None; see ``_numeric_array``),
        else a list of plain values. KeyError naming the first item that has
        no key ``name``; TypeError if an item is not a dict. Cost: one dict
        probe per item plus each value's copy-out."""
        arch = self._arch
        if arch._ptr is None:
            raise _closed()
        with recursion_headroom(arch.max_depth), gc_paused():
            walk = _Walk(arch)
            values = []
            for i, pos in enumerate(self._slots()):
                w0, p = _SLOT(walk._raw, pos)
                tag = w0 & 0xFF
                if tag == _T_MODEL:  # (a model instance among plain items: its field dict)
                    w0, p = _SLOT(walk._raw, _model_body(walk, p))
                    tag = w0 & 0xFF
                if tag != _T_DICT:
                    raise TypeError(f"column() needs a list of dicts: item {i} is a "
                                    f"{F.TAG_NAMES.get(tag, 'value')}")
                try:
                    at = _dict_pos(walk, p, name)
                except KeyError:
                    raise KeyError(f"item {i} has no key {name!r}") from None
                values.append(_mat(walk, at, 1))
        array = _numeric_array(values)
        return values if array is None else array

    def to_python(self) -> list | tuple:
        """Copy this list out into plain Python objects. Cost: its whole subtree."""
        return _to_python(self._arch, self._tag, self._off, self._n)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ArchivedList):
            other = other.to_python()
        if isinstance(other, (list, tuple)):
            return self.to_python() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kind = "tuple, " if self._tag == F.T_TUPLE else ""
        noun = "item" if self._n == 1 else "items"
        state = " (archive closed)" if self._arch._ptr is None else ""
        return f"<ArchivedList {kind}{self._n} {noun}{state}>"


def _dict_get(arch: Archive, off: int, key: Any) -> Any:
    """``d[key]`` for the dict node at ``off``: one C probe of its hash index."""
    return _decode(arch, _dict_pos(arch, off, key))


def _dict_pos(arch: Archive, off: int, key: Any) -> int:
    """Position of the checked value slot of ``key`` in the dict node at ``off``."""
    ptr = arch._ptr
    if ptr is None:
        raise _closed()
    t = type(key)
    if t is str:
        try:
            kb = key.encode()
        except UnicodeEncodeError:  # lone surrogates, stored as the writer encodes them
            kb = key.encode("utf-8", "surrogatepass")
        pos = dict_find(ptr, arch._size, off, _K_STR, kb, len(kb), 0)
    elif t is int and _INT_MIN <= key <= _INT_MAX:
        pos = dict_find(ptr, arch._size, off, _K_INT, b"", 0, key)
    else:
        kind, kb = _key_bytes(key)
        int_key = int.from_bytes(kb, "little", signed=True) if kind == _K_INT else 0
        pos = dict_find(ptr, arch._size, off, kind, kb, len(kb), int_key)
    if pos < 0:
        if pos == NOTFOUND:
            raise KeyError(key)
        raise archive_error(pos, f"dict node at offset {off}")
    return pos


_K_STR, _K_INT = F.K_STR, F.K_INT


def _key_bytes(key: Any) -> tuple[int, bytes]:
    """The (kind, bytes) the format hashes for a dict key; KeyError if no
    archived key can equal it."""
    if isinstance(key, str):
        return F.K_STR, str(key).encode("utf-8", "surrogatepass")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return F.K_BYTES, bytes(key)
    k = _int_equal(key)
    if _INT_MIN <= k <= _INT_MAX:
        return F.K_INT, k.to_bytes(8, "little", signed=True)
    return F.K_BIGINT, k.to_bytes(k.bit_length() // 8 + 1, "little", signed=True)


def _int_equal(key: Any) -> int:
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
# Both walkers below receive positions of slots the C core has already checked.
# Tags are bound to module globals: attribute lookups cost on the hot path.
_T_NONE, _T_TRUE, _T_INT, _T_FLOAT = F.T_NONE, F.T_TRUE, F.T_INT, F.T_FLOAT
_T_STR, _T_SSTR, _T_BYTES, _T_SBYTES = F.T_STR, F.T_SSTR, F.T_BYTES, F.T_SBYTES
_T_LIST, _T_TUPLE, _T_DICT, _T_TABLE = F.T_LIST, F.T_TUPLE, F.T_DICT, F.T_TABLE
_T_NDARRAY, _T_XBYTES, _T_MODEL = F.T_NDARRAY, F.T_XBYTES, F.T_MODEL

def _decode(arch: Archive, pos: int) -> Any:
    """The lazy value of the checked slot at ``pos``: views for containers,
    zero-copy memoryviews/arrays for byte payloads, else plain values."""
    raw = arch._raw
    try:
        w0, p = _SLOT(raw, pos)
    except TypeError:  # raw is None: closed, by another thread (a try costs nothing)
        raise _closed() from None
    tag = w0 & 0xFF
    if tag == _T_SSTR:
        return _utf8(raw[pos + 8:pos + 8 + (w0 >> 8)], pos)
    if tag == _T_INT:
        return p
    if tag == _T_STR:
        return _utf8(raw[p:p + (w0 >> 8)], p)
    if tag == _T_DICT:
        return ArchivedDict(arch, p, w0 >> 8)
    if tag == _T_TABLE:
        return ArchivedTable(arch, p, w0 >> 8, tag)
    if tag == _T_LIST or tag == _T_TUPLE:
        return ArchivedList(arch, p, w0 >> 8, tag)
    if tag == _T_FLOAT:
        return _F64(raw, pos)[1]
    if tag == _T_NDARRAY:
        return _ndarray(arch, p, copy=False)
    if tag == _T_SBYTES:
        return _mv_of(arch)[pos + 8:pos + 8 + (w0 >> 8)]
    if tag == _T_BYTES:
        return _mv_of(arch)[p:p + (w0 >> 8)]
    if tag == _T_XBYTES:
        return _xbytes(arch, p, w0 >> 8, copy=False)
    if tag == _T_MODEL:  # read without its model: the plain body (dict or table)
        return _decode(arch, _model_body(arch, p))
    if tag == F.T_FRAME:  # format 1.1: a data frame (bfast_archive/frames.py)
        from .frames import frame_view
        return frame_view(arch, p)
    with recursion_headroom(arch.max_depth):  # sets and fixed-shape nodes recurse
        return _mat(_Walk(arch), pos, 0)


def _mat(arch: Archive, pos: int, depth: int) -> Any:
    """The fully materialised value of the checked slot at ``pos``."""
    raw = arch._raw
    try:
        w0, p = _SLOT(raw, pos)
    except TypeError:  # raw is None: closed (arch is the Archive, for a dict's keys)
        raise _closed() from None
    tag = w0 & 0xFF
    if tag == _T_SSTR:
        return _utf8(raw[pos + 8:pos + 8 + (w0 >> 8)], pos)
    if tag == _T_INT:
        return p
    if tag == _T_STR:
        if w0 >> 8 > _TRACK_MIN:
            _claim(arch, p)
        return _utf8(raw[p:p + (w0 >> 8)], p)
    if tag == _T_FLOAT:
        return _F64(raw, pos)[1]
    if tag <= _T_TRUE:
        return None if tag == _T_NONE else tag == _T_TRUE
    if tag == _T_SBYTES:
        return bytes(raw[pos + 8:pos + 8 + (w0 >> 8)])
    if tag == _T_BYTES:
        if w0 >> 8 > _TRACK_MIN:
            _claim(arch, p)
        return bytes(raw[p:p + (w0 >> 8)])
    if tag == _T_MODEL:
        return _mat_model(arch, p, pos, depth)
    if tag == F.T_FRAME:  # format 1.1: a data frame (bfast_archive/frames.py)
        from .frames import frame_value
        return frame_value(arch, p, depth)
    if tag in _CONTAINERS:
        if depth >= arch.max_depth:
            raise ArchiveError(f"nesting deeper than max_depth={arch.max_depth} "
                               f"at offset {p}")
        return _mat_node(arch, tag, p, w0 >> 8, depth)
    decoder = _SCALARS.get(tag)
    if decoder is None:  # the C core accepted it, so this reader must know it
        raise ArchiveError(f"unexpected node type {tag} at offset {pos}")
    if depth >= arch.max_depth:  # fixed-shape nodes nest through their fields too
        raise ArchiveError(f"nesting deeper than max_depth={arch.max_depth} at offset {p}")
    return decoder(arch, w0 >> 8, p, pos, depth)


def _to_python(arch: Archive, tag: int, off: int, n: int) -> Any:
    """``to_python`` of a view: the node's whole subtree, depth-capped, after
    the checksums of the bytes it can occupy (``_check_sums``)."""
    if arch._ptr is None:
        raise _closed()
    _check_sums(arch, _node_end(arch, tag, off, n))
    with recursion_headroom(arch.max_depth), gc_paused():
        return _mat_node(_Walk(arch, check=True), tag, off, n, 0)


def _check_sums(arch: Archive, end: int) -> None:
    """Before a copy-out of bytes below offset ``end``: verify the checksums
    of every section of an uncompressed archive that holds any of them.
    Children lie before their parents, so a subtree lies below the end of
    its node: ``end`` is that, or the archive's size for a whole read. Each
    section is hashed once per open archive, in C on the thread pool. In a
    compressed archive every chunk is checked as it is decoded."""
    if isinstance(arch, _Walk):
        arch = arch._arch
    layer = arch._layer()
    if layer is not None and not layer.compressed:
        layer.verify_through(end, arch._threads())


def _node_end(arch: Archive, tag: int, off: int, n: int) -> int:
    """The end of the (checked) container node at ``off``."""
    if tag == _T_DICT:
        _, nbuckets, width, _ = F.DICT_HEADER.unpack_from(_raw_of(arch), off)
        return off + _DICT_ENTRIES + 32 * n + nbuckets * width
    if tag == _T_TABLE:
        return off + F.TABLE_HEADER_SIZE + F.COLUMN.size * F.U64.unpack_from(
            _raw_of(arch), off + 8)[0]
    return off + 8 + 16 * n


class _Walk:
    """One materialisation: the archive's buffers, held for the walk's
    length, and every node it has copied out so far. A node reached twice
    means the file shares nodes, which no writer does: refused, so a small
    hostile file cannot expand exponentially ("billion laughs")."""

    __slots__ = ("_arch", "_raw", "_mv", "_ptr", "_owner", "_size", "_file", "_tables",
                 "max_depth", "_seen", "_models", "_check")

    def __init__(self, arch: Archive, check: bool = False) -> None:
        self._arch = arch
        self._check = check  # verify the checksums of compressed payloads used in place
        # _file before _ptr: close() drops _ptr first, so a _ptr still set
        # means _file (None for a plain archive) was read before close began
        self._size, self._file, self._tables = arch._size, arch._file, arch._tables
        self._raw, self._mv, self._ptr, self._owner = arch._raw, arch._mv, arch._ptr, arch._owner
        if self._ptr is None or self._raw is None or self._mv is None:
            raise _closed()
        self.max_depth = arch.max_depth
        self._seen: set = set()
        self._models: dict | None = None  # fingerprint -> class, in a trusted model load

    def _threads(self) -> int:
        return self._arch._threads()


def _model_body(arch: Any, off: int) -> int:
    """Position of the checked body slot of the MODEL node at ``off``."""
    pos = seq_get(_ptr_of(arch), arch._size, off, 1)
    if pos < 0:
        raise archive_error(pos, f"model node at offset {off}")
    if _SLOT(_raw_of(arch), pos)[0] & 0xFF not in (_T_DICT, _T_TABLE):
        raise ArchiveError(f"model node at offset {off}: its body is not a dict or a table")
    return pos


def _schema(arch: Any, off: int) -> Any:
    """The schema dict of the MODEL node at ``off``, decoded once per
    archive: schema nodes are shared by all instances of a class."""
    pos = seq_get(_ptr_of(arch), arch._size, off, 0)
    if pos < 0:
        raise archive_error(pos, f"model node at offset {off}")
    w0, p = _SLOT(_raw_of(arch), pos)
    if w0 & 0xFF != _T_DICT:
        raise ArchiveError(f"model node at offset {off}: its schema is not a dict")
    key = ("schema", p)
    schema = arch._tables.get(key)
    if schema is None:
        base = arch._arch if isinstance(arch, _Walk) else arch
        schema = _mat_node(_Walk(base), _T_DICT, p, w0 >> 8, 0)
        arch._tables[key] = schema
    return schema


def _mat_model(arch: Any, off: int, pos: int, depth: int) -> Any:
    """A MODEL node copied out: its body as plain data, or, in a trusted
    load with the model class known, the model instance(s) built directly."""
    if depth >= arch.max_depth:
        raise ArchiveError(f"nesting deeper than max_depth={arch.max_depth} at offset {off}")
    _claim(arch, off)
    body_pos = _model_body(arch, off)
    models = getattr(arch, "_models", None)
    cls = None
    if models is not None:  # a model load: schemas noted (arch._tables), classes looked up
        schema = _schema(arch, off)
        if models:
            cls = models.get(schema.get("fingerprint")) if isinstance(schema, dict) else None
            if cls is None:
                raise _NotTrusted
    if cls is not None:
        from .models import construct, construct_columns

        w0, p = _SLOT(_raw_of(arch), body_pos)
        if w0 & 0xFF == _T_TABLE:  # a list of instances: built column by column
            _claim(arch, p)
            info = _table_info(arch, p, w0 >> 8)
            columns = [_column_values(arch, info, c, depth + 1) for c in range(info.ncols)]
            return construct_columns(cls, info.names(arch), columns)
        body = _mat(arch, body_pos, depth + 1)
        if isinstance(body, list):
            return [construct(cls, row) for row in body]
        return construct(cls, body) if isinstance(body, dict) else body
    return _mat(arch, body_pos, depth + 1)


def model_schema_at(view: Any, key: Any) -> Any:
    """The stored schema of the model node at ``view[key]`` (a key of an
    ``ArchivedDict``, an index of an ``ArchivedList``), or None when that
    value is not a model node. For typed views (models.py): one probe."""
    arch = getattr(view, "_arch", None)
    if arch is None or arch._ptr is None:
        return None
    memo = ("slot schema", view._off, key)  # a node's offset names it in its archive
    hit = arch._tables.get(memo, memo)
    if hit is not memo:
        return hit
    if type(view) is ArchivedDict:
        pos = _dict_pos(arch, view._off, key)
    elif type(view) is ArchivedList and type(key) is int:
        pos = seq_get(arch._ptr, arch._size, view._off, key)
        if pos < 0:
            return None
    else:
        return None
    w0, p = _SLOT(_raw_of(arch), pos)
    schema = _schema(arch, p) if w0 & 0xFF == _T_MODEL else None
    arch._tables[memo] = schema
    return schema


def copy_noting_schemas(view: Any) -> tuple:
    """``(view.to_python(), schemas)`` for an ``ArchivedDict``,
    ``ArchivedList`` (a table too) or table row: the copy notes the schema
    of every model node it passes; ``schemas`` are all the schemas the
    archive has noted so far. For ``to_model`` of typed views (models.py)."""
    arch = view._arch
    if arch._ptr is None:
        raise _closed()
    with recursion_headroom(arch.max_depth), gc_paused():
        walk = _Walk(arch)
        walk._models = {}  # no classes: a plain copy that notes schemas (_mat_model)
        if type(view) is ArchivedRow:
            info = view._info
            data = {name: _cell(walk, info, c, view._row, 1, True)
                    for c, name in enumerate(info.names(arch))}
        else:
            tag = _T_DICT if type(view) is ArchivedDict else view._tag
            data = _mat_node(walk, tag, view._off, view._n, 0)
    return data, noted_schemas(arch)


def noted_schemas(arch: Any) -> list:
    """The model schemas decoded from this archive so far (``_schema``)."""
    return [v for k, v in list(arch._tables.items()) if type(k) is tuple and k[0] == "schema"]


class _NotTrusted(Exception):
    """A trusted model load met a model node of a class it does not have
    (one that changed since writing): the load validates instead."""


class _NoTracking:
    """The ``_seen`` of a lazy read of one value: nothing to track."""

    __slots__ = ()

    def __contains__(self, item: object) -> bool:
        return False

    def add(self, item: object) -> None:
        pass


Archive._seen = _NoTracking()
Archive._check = False  # (a _Walk's flag: an Archive reads lazily, one value at a time)


def _claim(arch: Any, key: Any) -> None:
    """Mark a node as copied out by this walk; a second claim is an error."""
    seen = arch._seen
    if key in seen:
        raise ArchiveError(f"node at offset {key if isinstance(key, int) else key[1]} is "
                           f"referenced twice: archives never share nodes (a file that "
                           f"did could expand without bound)")
    seen.add(key)


def _mat_node(arch: Any, tag: int, off: int, n: int, depth: int) -> Any:
    ptr = arch._ptr
    if ptr is None:
        raise _closed()
    _claim(arch, off)
    if tag == F.T_DICT:
        rc = dict_check(ptr, arch._size, off, n)
        if rc < 0:
            raise archive_error(rc, f"dict node at offset {off}")
        start = off + _DICT_ENTRIES
        d = depth + 1
        out = {}
        for pos in range(start, start + 32 * n, 32):
            out[_mat(arch, pos, d)] = _mat(arch, pos + 16, d)
        return out
    if tag == F.T_TABLE:
        return _table_rows(arch, _table_info(arch, off, n), depth)
    rc = seq_check(ptr, arch._size, off, n)
    if rc < 0:
        raise archive_error(rc, f"{F.TAG_NAMES.get(tag, tag)} node at offset {off}")
    d = depth + 1
    items = [_mat(arch, pos, d) for pos in range(off + 8, off + 8 + 16 * n, 16)]
    if tag == F.T_LIST:
        return items
    if tag == F.T_TUPLE:
        return tuple(items)
    try:
        return set(items) if tag == F.T_SET else frozenset(items)
    except TypeError:
        raise ArchiveError(f"set node at offset {off} holds an unhashable member") from None


_TRACK_MIN = 64  # shorter strings shared many times expand at most 4-fold: not tracked
_CONTAINERS = frozenset({F.T_LIST, F.T_TUPLE, F.T_DICT, F.T_SET, F.T_FROZENSET, F.T_TABLE})


def _utf8(raw: memoryview, where: int) -> str:
    try:
        return str(raw, "utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"invalid UTF-8 in string at offset {where}: {exc.reason}") from None


def _fields(arch: Archive, tag: int, n: int, off: int, depth: int, kinds: tuple) -> list:
    """The fields of a fixed-shape node, each checked against ``kinds``."""
    name = F.TAG_NAMES[tag]
    if n != len(kinds):
        raise ArchiveError(f"{name} node at offset {off} has {n} fields, expected {len(kinds)}")
    values = _mat_node(arch, F.T_LIST, off, n, depth)
    for i, (v, ok) in enumerate(zip(values, kinds)):
        ok = ok if isinstance(ok, tuple) else (ok,)
        if not isinstance(v, ok) or isinstance(v, bool) and bool not in ok:
            raise ArchiveError(f"{name} node at offset {off}: field {i} has type "
                               f"{type(v).__name__}")
    return values


def _tz(offset: Any, name: Any) -> Any:
    if offset is None:
        if name is not None:
            raise ValueError("timezone name without an offset")
        return None
    delta = _dt.timedelta(microseconds=offset)
    return _dt.timezone(delta) if name is None else _dt.timezone(delta, name)


def _checked(tag: int, off: int, build) -> Any:
    try:
        return build()
    except (ValueError, OverflowError, TypeError, ArithmeticError) as exc:
        raise ArchiveError(f"invalid {F.TAG_NAMES[tag]} at offset {off}: {exc}") from None


_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))


def _datetime(arch, n, off, pos, depth):
    wall, fold, offset, name = _fields(arch, F.T_DATETIME, n, off, depth,
                                       (int, int, _OPT_INT, _OPT_STR))
    return _checked(F.T_DATETIME, off, lambda: (
        _EPOCH + _dt.timedelta(microseconds=wall)).replace(fold=fold, tzinfo=_tz(offset, name)))


def _time(arch, n, off, pos, depth):
    micros, fold, offset, name = _fields(arch, F.T_TIME, n, off, depth,
                                         (int, int, _OPT_INT, _OPT_STR))

    def build():
        if not 0 <= micros < 86_400_000_000:
            raise ValueError("time of day out of range")
        secs, us = divmod(micros, 1_000_000)
        return _dt.time(secs // 3600, secs // 60 % 60, secs % 60, us,
                        tzinfo=_tz(offset, name), fold=fold)
    return _checked(F.T_TIME, off, build)


def _timedelta(arch, n, off, pos, depth):
    days, secs, us = _fields(arch, F.T_TIMEDELTA, n, off, depth, (int, int, int))
    return _checked(F.T_TIMEDELTA, off, lambda: _dt.timedelta(days, secs, us))


def _complex(arch, n, off, pos, depth):
    re_, im = _fields(arch, F.T_COMPLEX, n, off, depth, (float, float))
    return complex(re_, im)


def _npscalar(arch, n, off, pos, depth):
    from .dtypes import descr_to_dtype

    descr, raw = _fields(arch, F.T_NPSCALAR, n, off, depth, (str, bytes))
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
    raise ArchiveError(f"numpy scalar at offset {off}: {_BAD_CODE_POINT}")


_BAD_CODE_POINT = "'U' data holds a code point above U+10FFFF"


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
        raise ArchiveError(f"numpy scalar at offset {off}: {_BAD_CODE_POINT}") from None


def has_text(dt: Any) -> bool:
    """Does dtype ``dt`` hold 'U' (UCS-4) data, itself or in a field?"""
    dt = dt.base  # the item dtype of a subarray dtype
    if dt.names:
        return any(has_text(dt.fields[name][0]) for name in dt.names)
    return dt.kind == "U"


def bad_code_point(arr: Any) -> bool:
    """Does the 'U' data of ``arr`` (its dtype's or its fields') hold a code
    point above U+10FFFF? NumPy turns such an element into a str that
    CPython cannot represent (SystemError, then or later), so each place
    that makes Python objects of elements checks them first. O(arr.nbytes):
    called on the elements being converted, never on a whole array view."""
    dt = arr.dtype
    if dt.names:
        return any(bad_code_point(arr[name]) for name in dt.names)
    if dt.kind != "U" or dt.itemsize == 0 or arr.size == 0:
        return False
    np = _numpy()
    codes = np.ascontiguousarray(arr).reshape(-1).view(dt.str[0] + "u4")
    return bool(codes.max() > 0x10FFFF)


def _uuid(arch, n, off, pos, depth):
    import uuid

    return uuid.UUID(bytes=bytes(_mv_of(arch)[off:off + 16]))


def _decimal(arch, n, off, pos, depth):
    import decimal

    if n > _TRACK_MIN:
        _claim(arch, off)
    text = bytes(_mv_of(arch)[off:off + n])

    def build():
        value = decimal.Decimal(text.decode("ascii"))
        if str(value) != text.decode("ascii"):  # only str(Decimal)'s own spelling is valid
            raise ValueError(f"{text[:40]!r} is not in the canonical form {str(value)[:40]!r}")
        return value
    return _checked(F.T_DECIMAL, off, build)


def _bigint(arch, n, off, pos, depth):
    if n > _TRACK_MIN:
        _claim(arch, off)
    return int.from_bytes(_mv_of(arch)[off:off + n], "little", signed=True)


def _ndarray_copy(arch, n, off, pos, depth):
    return _ndarray(arch, off, copy=True)


_SCALARS = {
    F.T_BIGINT: _bigint,
    F.T_DATE: lambda arch, n, p, pos, depth: _dt.date.fromordinal(p),
    F.T_DATETIME: _datetime,
    F.T_TIME: _time,
    F.T_TIMEDELTA: _timedelta,
    F.T_COMPLEX: _complex,
    F.T_NPSCALAR: _npscalar,
    F.T_UUID: _uuid,
    F.T_DECIMAL: _decimal,
    F.T_NDARRAY: _ndarray_copy,
    F.T_XBYTES: lambda arch, n, p, pos, depth: _xbytes(arch, p, n, copy=True),
}


def _array_meta(arch: Archive, off: int) -> tuple:
    """(dtype, shape, order, data offset or payload number, nbytes, external)
    of the checked ndarray node at ``off``; parsed once per archive."""
    meta = arch._tables.get(("array", off))
    if meta is None:
        meta = arch._tables[("array", off)] = _parse_array_meta(arch, off)
    return meta


def _parse_array_meta(arch: Archive, off: int) -> tuple:
    from .dtypes import descr_to_dtype

    raw = _raw_of(arch)
    data_off, nbytes, ndim, flags, dlen = _NDH(raw, off)
    descr_at = off + F.NDARRAY_HEADER.size
    dt = descr_to_dtype(bytes(raw[descr_at:descr_at + dlen]))
    if dt.subdtype is not None:
        raise ArchiveError(f"ndarray at offset {off}: a subarray dtype {dt} cannot be an "
                           f"array's own dtype")
    shape_at = descr_at + dlen + (-dlen % 8)
    shape = tuple(F.U64.unpack_from(raw, shape_at + 8 * i)[0] for i in range(ndim))
    count = 1
    for d in shape:
        count *= d
    if count * dt.itemsize != nbytes:
        raise ArchiveError(f"ndarray at offset {off}: shape {shape} of {dt} needs "
                           f"{count * dt.itemsize} bytes, node says {nbytes}")
    order = "F" if flags & F.NDARRAY_FORTRAN else "C"
    return dt, shape, order, data_off, nbytes, bool(flags & F.NDARRAY_EXTERNAL)


def _shape_array(np, flat, shape: tuple, order: str) -> Any:
    if order == "F":
        return flat.reshape(shape[::-1]).T
    return flat.reshape(shape) if len(shape) != 1 else flat


def _ndarray(arch: Archive, off: int, copy: bool) -> Any:
    """The array of the (checked) ndarray node at ``off``: a read-only view
    of the buffer (O(1), about 1 µs), or with ``copy`` an owned array. Data
    in a compressed payload is decompressed once and cached on the archive."""
    np = _numpy()
    dt, shape, order, data_off, nbytes, external = _array_meta(arch, off)
    if copy and nbytes > _TRACK_MIN:
        _claim(arch, ("payload", data_off) if external else data_off)
    try:
        if nbytes == 0 and not external:  # (an external one still names a payload)
            arr = np.empty(shape, dt, order=order)
        elif external:
            buf, fresh = _payloads(arch).payload(data_off, nbytes, arch._threads(),
                                                 cache=not copy, check=copy and arch._check)
            arr = _shape_array(np, np.frombuffer(buf, dt, nbytes // dt.itemsize), shape, order)
            if copy and fresh:
                return arr  # decoded for this call alone: already an owned buffer
        elif copy:
            # copy the bytes, then view them: NumPy's own copy of a structured
            # array leaves padding bytes uninitialised
            owned = np.frombuffer(_mv_of(arch), np.uint8, nbytes, data_off).copy()
            return _shape_array(np, owned.view(dt), shape, order)
        else:
            arr = _shape_array(np, np.frombuffer(_mv_of(arch), dt, nbytes // dt.itemsize,
                                                 data_off), shape, order)
    except (ValueError, MemoryError) as exc:
        raise ArchiveError(f"ndarray at offset {off}: {exc}") from None
    if copy:
        return arr.copy(order="K")
    arr.flags.writeable = False
    return arr


def _payloads(arch: Any) -> Any:
    """The payload layer of a compressed archive; ArchiveError for a node
    that names a payload in an archive that has none."""
    layer = arch._file
    if not getattr(layer, "compressed", False):
        _ptr_of(arch)  # read after _file: set only if close() had not begun then
        raise ArchiveError("a node names a compressed payload in an uncompressed archive")
    return layer


def _xbytes(arch: Archive, index: int, n: int, copy: bool) -> Any:
    """A large ``bytes`` value kept in a compressed payload."""
    layer = _payloads(arch)
    if copy:
        _claim(arch, ("payload", index))
    buf, fresh = layer.payload(index, n, arch._threads(), cache=not copy,
                               check=copy and arch._check)
    return bytes(buf) if copy else buf


# -- record tables ----------------------------------------------------------------
# A list of same-keyed dicts is stored as a table node: one key dict naming the
# columns, one column per key (docs/FORMAT.md, "Table node"). The node and its
# column descriptors are checked in C once per archive and cached; a cell read
# then costs a struct read and a bounds check.

_I64S = __import__("struct").Struct("<q").unpack_from
_D = __import__("struct").Struct("<d").unpack_from
_QQ = __import__("struct").Struct("<QQ").unpack_from


class _TableInfo:
    """A table node's geometry, checked once per archive; column names are
    looked up in its key dict (in C) as they are asked for, and cached."""

    __slots__ = ("off", "nrows", "ncols", "keys_off", "cols", "_names", "_index",
                 "arrow_checked")

    def __init__(self, arch: Archive, off: int, nrows: int) -> None:
        rc = table_check(_ptr_of(arch), arch._size, off, nrows)
        if rc < 0:
            raise archive_error(rc, f"table node at offset {off}")
        raw = _raw_of(arch)
        self.off = off
        self.nrows = nrows
        self.ncols = ncols = F.TABLE_HEADER.unpack_from(raw, off)[1]
        self.keys_off = _SLOT(raw, off + 16)[1]
        base = off + F.TABLE_HEADER_SIZE
        self.cols = [F.COLUMN.unpack_from(raw, base + F.COLUMN.size * c) for c in range(ncols)]
        self._names: list | None = None
        self._index: dict[str, int] = {}
        self.arrow_checked: set[int] = set()  # string columns validated for Arrow (frames.py)

    def column_of(self, arch: Archive, key: Any) -> int:
        """The column number of ``key``; KeyError if the rows have no such key."""
        c = self._index.get(key) if type(key) is str else None
        if c is None:
            c = _dict_get(arch, self.keys_off, key)
            if type(c) is not int or not 0 <= c < self.ncols:
                raise ArchiveError(f"table node at offset {self.off}: key dict names "
                                   f"column {c!r} of {self.ncols}")
            if type(key) is str:
                self._index[key] = c
        return c

    def names(self, arch: Archive) -> list:
        """All column names, in the rows' key order."""
        if self._names is None:
            if isinstance(arch, _Walk):
                key_index = _mat_node(arch, F.T_DICT, self.keys_off, self.ncols, 0)
            else:  # its own walk: recursion headroom, whatever the dict's values hold
                key_index = _to_python(arch, F.T_DICT, self.keys_off, self.ncols)
            if list(key_index.values()) != list(range(self.ncols)) or \
                    not all(type(k) is str for k in key_index):
                raise ArchiveError(f"table node at offset {self.off}: key dict does not "
                                   f"number its {self.ncols} columns in order")
            self._names = list(key_index)
        return self._names


def _table_info(arch: Archive, off: int, nrows: int) -> _TableInfo:
    info = arch._tables.get(off)
    if info is not None and info.nrows == nrows:
        return info
    if arch._ptr is None:
        raise _closed()
    info = arch._tables[off] = _TableInfo(arch, off, nrows)
    return info


_UNIX_EPOCH_MICROS = 62_135_596_800_000_000  # 1970-01-01 counted from 0001-01-01
_MAX_MICROS = 315_537_897_599_999_999       # 9999-12-31 23:59:59.999999


def _datetime_column(raw: memoryview, mask: bytes | None, where: int) -> list:
    """A DATETIME column's naive datetimes (masked cells decoded as 0001-01-01,
    replaced by None afterwards). With NumPy already loaded, in one call."""
    micros = raw.cast("q")
    np = sys.modules.get("numpy")
    if np is not None:
        arr = np.frombuffer(micros, "<i8")
        if mask is not None:
            arr = np.where(np.frombuffer(mask, np.uint8) != 0, 0, arr)
        if arr.size and (arr.min() < 0 or arr.max() > _MAX_MICROS):
            raise ArchiveError(f"datetime column at offset {where}: value out of range")
        return (arr - _UNIX_EPOCH_MICROS).astype("M8[us]").tolist()
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


def _cell(arch: Archive, info: _TableInfo, c: int, row: int, depth: int, full: bool) -> Any:
    """One cell of a table; ``full`` materialises nested values instead of
    returning views."""
    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    mv = arch._raw
    if mv is None:
        raise _closed()
    if flags & F.COL_HAS_NULLS:
        null = mv[(r2 if kind == F.COL_STR or kind == F.COL_BINARY else r1) + row]
        if null:
            if null != 1:
                raise ArchiveError(f"null mask byte {null} in column at offset {r0}")
            return None
    if kind == F.COL_STR:
        a, b = _offset_pair(mv, r0 + 8 * row, r1n, r0)
        return _utf8(mv[r1 + a:r1 + b], r1 + a)
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
        view = _StringsCell(arch, a, b, r1, r2, r2n)
        return view.to_python() if full else view
    if kind >= F.COL_FIXED:  # format 1.1 kinds: bfast_archive/frames.py
        from .frames import typed_cell
        return typed_cell(mv, info.cols[c], row, full)
    pos = r0 + 16 * row  # COL_SLOTS
    rc = check_slot(_ptr_of(arch), arch._size, pos, info.off)
    if rc < 0:
        raise archive_error(rc, f"table cell at offset {pos}")
    return _mat(arch, pos, depth) if full else _decode(arch, pos)


def _strings(arch: Archive, offsets_at: int, count: int, blob_at: int, blob_len: int) -> list:
    """``count`` strings of an offsets region + UTF-8 blob, validated in bulk."""
    mv = _mv_of(arch)
    rc = offsets_check(_ptr_of(arch), arch._size, offsets_at, count + 1, blob_len)
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


def _column_values(arch: Archive, info: _TableInfo, c: int, depth: int) -> list:
    """All values of column ``c`` as Python objects, in bulk."""
    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    mv = _mv_of(arch)
    n = info.nrows
    # regions of no bytes may share an offset with the next thing written
    if r0n:
        _claim(arch, r0)
    if (kind == F.COL_STR or kind == F.COL_STRLIST or kind == F.COL_BINARY) and r1n:
        _claim(arch, r1)
    if kind == F.COL_STRLIST and r2n:
        _claim(arch, r2)
    nulls_at = r2 if kind == F.COL_STR or kind == F.COL_BINARY else r1
    if kind >= F.COL_FIXED:  # format 1.1 kinds: bfast_archive/frames.py
        from .frames import typed_values
        values = typed_values(arch, info.cols[c], n)
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
        values = _strings(arch, r0, n, r1, r1n)
    elif kind == F.COL_STRLIST:
        nitems = r1n // 8 - 1
        rc = offsets_check(_ptr_of(arch), arch._size, r0, n + 1, nitems)
        if rc < 0:
            raise archive_error(rc, f"list offsets at offset {r0}")
        flat = _strings(arch, r1, nitems, r2, r2n)
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
        rc = slots_check(_ptr_of(arch), arch._size, r0, n, info.off)
        if rc < 0:
            raise archive_error(rc, f"table column at offset {r0}")
        if depth >= arch.max_depth:
            raise ArchiveError(f"nesting deeper than max_depth={arch.max_depth}")
        return [_mat(arch, pos, depth + 1) for pos in range(r0, r0 + 16 * n, 16)]
    if flags & F.COL_HAS_NULLS:
        mask = bytes(mv[nulls_at:nulls_at + n])
        if mask.translate(None, b"\x00\x01"):
            raise ArchiveError(f"null mask at offset {nulls_at} holds bytes other than 0 and 1")
        values = _with_nulls(values, mask)
    return values


_NUMBER_KINDS = frozenset("iuf")


def _numeric_array(values: list) -> Any:
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
    if "i" in kinds and not all(_INT_MIN <= v <= _INT_MAX for v in cells if type(v) is int):
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


def _with_nulls(values: list, mask: bytes) -> list:
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


def _table_rows(arch: Archive, info: _TableInfo, depth: int) -> list:
    columns = [_column_values(arch, info, c, depth) for c in range(info.ncols)]
    names = info.names(arch)
    if info.nrows >= _pytable.NATIVE_MIN:
        built = _pytable.rows(tuple(names), columns)
        if built is not None:
            return built
    return [dict(zip(names, cells)) for cells in zip(*columns)]



class _StringsCell(ArchivedList):
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
        arch = self._arch
        if arch._ptr is None:
            raise _closed()
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"ArchivedList indices must be integers or slices, "
                            f"not {type(index).__name__}") from None
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("ArchivedList index out of range")
        raw = arch._raw
        if raw is None:
            raise _closed()
        x, y = _offset_pair(raw, self._items_at + 8 * (self._first + i), self._blob_len,
                            self._items_at)
        return _utf8(raw[self._blob_at + x:self._blob_at + y], self._blob_at + x)

    def __iter__(self) -> Iterator[Any]:
        for i in range(self._n):
            yield self[i]

    def to_python(self) -> list:
        _check_sums(self._arch, max(self._blob_at + self._blob_len,
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

    def _info(self) -> _TableInfo:
        return _table_info(self._arch, self._off, self._n)

    def __getitem__(self, index: Any) -> Any:
        if self._arch._ptr is None:
            raise _closed()
        if type(index) is not int:
            if isinstance(index, slice):
                return [self[i] for i in range(*index.indices(self._n))]
            try:
                index = operator.index(index)
            except TypeError:
                raise TypeError(f"ArchivedList indices must be integers or slices, "
                                f"not {type(index).__name__}") from None
        n = self._n
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("ArchivedList index out of range")
        return ArchivedRow(self._arch, self._info(), index)

    def __iter__(self) -> Iterator[Any]:
        arch, info = self._arch, self._info()
        for row in range(self._n):
            if arch._ptr is None:
                raise _closed()
            yield ArchivedRow(arch, info, row)

    @property
    def columns(self) -> list:
        """The column names, in the rows' key order."""
        return list(self._info().names(self._arch))

    def column(self, name: Any, *, arrow: bool = False) -> Any:
        """Column ``name`` as a read-only NumPy array over the buffer (int64,
        float64 or bool; in a data frame also the other fixed-width types,
        dates copied as ``datetime64[D]``), no copy: O(1). With None cells, a
        masked array whose data and mask are both views. A column stored cell
        by cell whose cells are numbers an array holds exactly (ints among
        floats, NumPy scalars) comes back as an owned array (O(rows);
        ``_numeric_array``); other columns as a list.
        ``arrow=True``: the column as a ``pyarrow.Array`` (zero-copy where the
        layouts agree; ``bfast_archive.frames`` says which)."""
        info = self._info()
        c = info.column_of(self._arch, name)
        if arrow:
            from .frames import column_to_arrow
            return column_to_arrow(self._arch, info, c, name)
        kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
        if kind not in (F.COL_INT64, F.COL_FLOAT64, F.COL_BOOL, F.COL_FIXED):
            arch = self._arch
            with recursion_headroom(arch.max_depth), gc_paused():  # a copy-out: its own walk
                values = _column_values(_Walk(arch), info, c, 0)
            array = _numeric_array(values) if kind == F.COL_SLOTS else None
            return values if array is None else array
        np = _numpy()
        dtype = {F.COL_INT64: "<i8", F.COL_FLOAT64: "<f8", F.COL_BOOL: "?"}.get(kind) or \
            F.FIXED_DTYPES[flags >> F.COL_TYPE_SHIFT]
        mv = _mv_of(self._arch)
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
        return table_to_arrow(self._arch, self._info(), self.columns)

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame, through ``to_arrow()``."""
        from .frames import to_pandas
        return to_pandas(self.to_arrow())

    def to_polars(self) -> Any:
        """The table as a polars DataFrame, through ``to_arrow()``."""
        from .frames import to_polars
        return to_polars(self.to_arrow())

    def __repr__(self) -> str:
        state = " (archive closed)" if self._arch._ptr is None else ""
        return f"<{type(self).__name__} {self._n} rows{state}>"


class ArchivedRow(ArchivedDict):
    """One row of an ``ArchivedTable``: an ``ArchivedDict`` whose keys are the
    table's column names. ``row[key]`` is a dict probe plus one cell read."""

    __slots__ = ("_info", "_row")

    def __init__(self, arch: Archive, info: _TableInfo, row: int) -> None:
        self._arch = arch
        self._off = info.off
        self._n = info.ncols
        self._info = info
        self._row = row

    def __getitem__(self, key: Any) -> Any:
        arch = self._arch
        if arch._ptr is None:
            raise _closed()
        return _cell(arch, self._info, self._info.column_of(arch, key), self._row, 0, False)

    def __iter__(self) -> Iterator[Any]:
        if self._arch._ptr is None:
            raise _closed()
        return iter(list(self._info.names(self._arch)))

    def __contains__(self, key: object) -> bool:
        if self._arch._ptr is None:
            raise _closed()
        try:
            self._info.column_of(self._arch, key)
        except KeyError:
            return False
        return True

    def values(self) -> ValuesView:
        return ValuesView(self)

    def items(self) -> ItemsView:
        return ItemsView(self)

    def array(self, key: Any) -> Any:
        raise TypeError("a table row's cells are not array nodes: use the table's "
                        ".column(name) for a whole column as an array")

    def to_python(self) -> dict:
        arch, info = self._arch, self._info
        if arch._ptr is None:
            raise _closed()
        _check_sums(arch, _node_end(arch, _T_TABLE, info.off, info.nrows))
        with recursion_headroom(arch.max_depth):
            walk = _Walk(arch, check=True)
            return {name: _cell(walk, info, c, self._row, 1, True)
                    for c, name in enumerate(info.names(arch))}
