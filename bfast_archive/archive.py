"""``Archive``: an open archive over a byte source (a mapped file or any buffer).

Every step of a path (``arch["users"][i]["name"]``) is one call into the C
core, which checks the node and the child slot it returns (bounds, alignment,
type, children-before-parents) before Python reads a byte of it. Python then
decodes only the value asked for. Containers come back as views, byte
payloads as read-only memoryviews / NumPy arrays over the buffer, everything
else as ordinary Python values.
"""
from __future__ import annotations

import mmap
import os
from collections.abc import Mapping, Sequence
from typing import Any, Iterator

from . import _decode as D
from ._decode import decode, dict_pos
from . import format as F
from ._limits import gc_paused, recursion_headroom
from ._mappings import kept_mapping
from ._native import archive_error, buffer_pointer, check_slot, parse_header, release
from ._refs import ArchiveRef, reopen
from ._snapshot import Snapshot, closed
from ._source import ByteSource, CallerBuffer, MappedFile
from ._urls import is_url, split_source
from .arrays import ndarray
from .errors import ArchiveError
from .tables import ArchivedTable
from .views import ArchivedDict, ArchivedList

_T_DICT, _T_LIST, _T_TUPLE, _T_TABLE, _T_MODEL = F.T_DICT, F.T_LIST, F.T_TUPLE, F.T_TABLE, F.T_MODEL
_T_NDARRAY = F.T_NDARRAY
_new_archive = object.__new__
_SEP = os.sep


class Archive:
    """A read-only archive over a memory-mapped file or a caller's buffer.

    ``Archive.open(path)`` maps the file and checks the 64-byte header: O(1),
    whatever the file's size, nothing else is read. ``arch.root`` is the root
    value; ``arch[key]`` is ``arch.root[key]``. Use it as a context manager or
    call ``close()``; arrays and memoryviews handed out stay valid after close
    (the mapping lives until the last of them is gone), views do not.

    The archive's buffers are one immutable ``Snapshot`` (``_snap``), dropped
    by ``close()``; every read takes it once (see ``_snapshot.py``). The
    archives over one kept mapping opened with the same options share it.

    An archive opened from a file, and its views, pickle by reference (the
    path, the file's identity, the open options; ``_refs.py``): unpickling
    opens the file again, in this process or another, and raises
    ArchiveError if it changed since (a copy elsewhere is another file).
    """

    __slots__ = ("_snap", "_name", "_nbytes", "_root_tag", "_root_off", "max_depth", "threads",
                 "model", "_origin", "__weakref__")
    _nbytes: int
    _snap: Snapshot | None

    def __init__(self, source: ByteSource, max_depth: int = F.DEFAULT_MAX_DEPTH, *,
                 verify: bool = False, require_zero_copy: bool = False,
                 threads: int | None = None, model: type | None = None) -> None:
        # The constructor takes a byte source (Archive.open and from_buffer
        # make one): a user's Archive("x.bfa") is told what to call instead.
        if not isinstance(source, ByteSource):
            raise TypeError("Archive objects are made by Archive.open(path) (a file) or "
                            "Archive.from_buffer(buffer) (bytes in memory), not Archive(...)")
        self._setup(source.name, source.identity, max_depth, threads, model, verify,
                    require_zero_copy, getattr(source, "storage_options", None))
        # An unchanged kept mapping's snapshot (immutable) and root, made by
        # an earlier open with the same options, serve this open as they are.
        caches = source.caches
        kept = _kept_open(caches, max_depth, threads)
        if kept is not None:
            self._snap, self._nbytes, self._root_tag, self._root_off = kept
        else:
            s = _snapshot(source, max_depth, threads, require_zero_copy)
            w0, self._root_off = D.SLOT(s.raw, F.ROOT_SLOT_POS)
            self._root_tag = w0 & 0xFF
            self._nbytes = s.header.file_size
            self._snap = s
            layer = s.layer
            if caches is not None and s.image is None and (layer is None or not layer.compressed):
                # (a compressed archive's snapshot holds its own payload cache: never shared)
                caches["opened"] = (max_depth, threads,
                                    (s, self._nbytes, self._root_tag, self._root_off))
        if verify:
            try:
                self.verify()
            except BaseException:
                self._snap = None
                raise

    def _setup(self, name: str, identity: Any, max_depth: int, threads: int | None,
               model: type | None, verify: bool, require_zero_copy: bool,
               storage_options: Any) -> None:
        """The attributes every archive sets before its snapshot (``_snap``,
        None until then)."""
        self.model = model
        self._name = name
        self.max_depth = max_depth
        self.threads = threads
        # where a file's archive came from, kept cheap (the reference is built
        # when pickled, ``_ref``): the path made absolute now, the file's identity
        self._origin = None if identity is None else (
            name if name[:1] == _SEP or is_url(name) else os.path.join(os.getcwd(), name),
            identity, verify, require_zero_copy, storage_options)
        self._snap = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, model: type | None = None, verify: bool = False,
             require_zero_copy: bool = False, threads: int | None = None,
             max_depth: int = F.DEFAULT_MAX_DEPTH,
             storage_options: dict[str, Any] | None = None,
             cache_bytes: int = 64 << 20) -> "Archive":
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
        (``arch.root.users[3].name``), or a list or dict of them.

        ``path`` may be a URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``,
        ``memory://``; ``storage_options`` go to its fsspec file system, as in
        pandas): the archive is then read by byte range. Opening costs one
        round trip (the last 64 KiB and the first block, fetched together);
        each read fetches only the blocks it touches that have not arrived
        (16 KiB blocks, adjacent ones in one request), so
        ``arch["users"][50000]["name"]`` costs one or two more. Arrays come
        back as owned copies fetched for the read; ``verify=True`` and whole
        copies (``to_python``, ``load``) fetch the whole object. Every
        request is pinned to the version seen at open: a replaced object
        raises ArchiveError ("changed while reading"). ``cache_bytes``
        bounds the LRU cache of blocks read for arrays and payload chunks;
        node bytes stay in the archive's image while it is open (what the
        reads touched, at most the nodes' size). A ``file://`` URL is a
        local file."""
        if type(path) is str and "://" not in path and storage_options is None:
            # a local path (it names no scheme://). Opened again while its
            # kept mapping still names the file, with the options of the open
            # that made the mapping's snapshot: the archive ``__init__`` makes
            # from those (see there), made here without a byte source.
            name = path if path[:1] != "~" else os.path.expanduser(path)
            entry = kept_mapping(name) if cls is Archive and not verify else None
            if entry is not None and (kept := _kept_open(entry[1], max_depth, threads)) is not None:
                arch = _new_archive(cls)
                arch._setup(name, entry[2], max_depth, threads, model, False, require_zero_copy, None)
                arch._snap, arch._nbytes, arch._root_tag, arch._root_off = kept
                return arch
            source: ByteSource = MappedFile(path)
        else:
            url, path = split_source(path, storage_options)
            if url is not None:
                from ._ranged import open_ranged

                ranged = open_ranged(url, storage_options, cache_bytes=cache_bytes)
                if verify:  # the whole object, in concurrent requests
                    ranged.image.ensure(0, ranged.size)
                source = ranged
            else:
                source = MappedFile(path)
        return cls._open_source(source, model=model, verify=verify,
                                require_zero_copy=require_zero_copy, threads=threads,
                                max_depth=max_depth)

    @classmethod
    def _open_source(cls, source: ByteSource, *, model: type | None = None,
                     verify: bool = False, require_zero_copy: bool = False,
                     threads: int | None = None,
                     max_depth: int = F.DEFAULT_MAX_DEPTH) -> "Archive":
        """An archive over ``source``; errors name the source."""
        name = source.name
        try:
            return cls(source, max_depth, verify=verify, require_zero_copy=require_zero_copy,
                       threads=threads, model=model)
        except ArchiveError as exc:
            source.failed()
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
        return cls(CallerBuffer(buffer), max_depth, verify=verify,
                   require_zero_copy=require_zero_copy, threads=threads, model=model)

    def _snapshot(self) -> Snapshot:
        s = self._snap
        if s is None:
            raise closed()
        return s

    @property
    def checksummed(self) -> bool:
        """True if the archive carries XXH64 checksums (all archives this
        library writes do); ``verify()`` then checks them."""
        return self._snapshot().layer is not None

    @property
    def compressed(self) -> bool:
        """True if the archive's nodes and payloads are LZ4-compressed."""
        layer = self._snapshot().layer
        return layer is not None and layer.compressed

    def verify(self) -> int:
        """Check every checksum of the archive, on ``threads`` threads in C:
        the XXH64 of each section (uncompressed) or of each stored chunk
        (compressed). Raises ArchiveError naming the first bad section or
        chunk; returns the number of bytes checked. An archive written without
        checksums is instead checked by walking all of it."""
        s = self._snapshot()
        try:
            if s.layer is None:
                self.to_python()
                return s.size
            checked: int = s.layer.verify(s.nthreads())
            return checked
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
        s = self._snapshot()
        if self.model is not None:
            return _typed_root()(self, s, self.model,
                                 lambda: D.decode(self, s, F.ROOT_SLOT_POS), self._root_schema)
        return D.decode(self, s, F.ROOT_SLOT_POS)

    def _root_schema(self) -> Any:
        """The stored schema of the root when it is a model node; else None."""
        if self._root_tag != _T_MODEL:
            return None
        s = self._snapshot()
        schema = s.tables.get("root schema")
        if schema is None:
            schema = s.tables["root schema"] = D.schema(s, self._root_off)
        return schema

    def _item_schema(self) -> Any:
        """The stored schema of the root's first item or value when that is
        a model node (a list or dict of model instances); else None."""
        from .tables import model_schema_at

        tag = self._root_tag
        if tag in (_T_LIST, _T_TUPLE, _T_DICT):
            value = D.decode(self, self._snapshot(), F.ROOT_SLOT_POS)
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
        s = self._snapshot()
        if verify:
            D.check_sums(s, s.size)
        classes = trusted_classes(model) if trusted else None
        with recursion_headroom(s.max_depth), gc_paused():
            if classes:
                try:
                    done = trusted_result(model, D.mat(s.walk(self, check=verify, models=classes),
                                                       F.ROOT_SLOT_POS, 0))
                except D.NotTrusted:  # a model node of a class that changed
                    done = None
                except (TypeError, ValueError, KeyError, AttributeError) as exc:
                    if isinstance(exc, ArchiveError):
                        raise
                    done = None  # values no instance can be built from: validated instead
                if done is not None:
                    return done[0]
            # copy out plainly, noting every model node's schema
            data = D.mat(s.walk(self, check=verify, models={}), F.ROOT_SLOT_POS, 0)
        return build(model, data, self._root_schema() or self._item_schema(),
                     D.noted_schemas(s), items_only=self._root_tag != _T_MODEL)

    def __getitem__(self, key: Any) -> Any:
        if self.model is not None:
            return self.root[key]
        s = self._snap
        if self._root_tag == _T_DICT and s is not None:
            # Top-level keys are looked up again and again (arch["users"][i]...):
            # the checked slot of a container is remembered, as plain ints.
            # Other values: the checked slot's position.
            hit = s.root_slots.get(key) if type(key) is str else None
            if hit is not None:
                tag, n, p = hit
                if tag == _T_DICT:
                    return ArchivedDict(self, p, n)
                if tag == _T_TABLE:
                    return ArchivedTable(self, p, n, tag)
                if tag == _T_LIST or tag == _T_TUPLE:
                    return ArchivedList(self, p, n, tag)
                if tag == _T_NDARRAY:
                    return ndarray(s, p, False)
                return decode(self, s, p)
            pos = dict_pos(s, self._root_off, key)
            if type(key) is str:
                w0, p = D.SLOT(s.raw, pos)
                tag = w0 & 0xFF
                if tag in (_T_DICT, _T_TABLE, _T_LIST, _T_TUPLE, _T_NDARRAY):
                    s.root_slots[key] = (tag, w0 >> 8, p)
                else:
                    s.root_slots[key] = (-1, 0, pos)
            return decode(self, s, pos)
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
        s = self._snapshot()
        if verify:
            D.check_sums(s, s.size)
        with recursion_headroom(s.max_depth), gc_paused():
            return D.mat(s.walk(self, check=verify), F.ROOT_SLOT_POS, 0)

    @property
    def nbytes(self) -> int:
        """The archive's size in bytes, as its header declares."""
        return self._nbytes

    @property
    def closed(self) -> bool:
        return self._snap is None

    # -- lifetime --------------------------------------------------------------
    def close(self) -> None:
        """Release the buffer. Views raise ArchiveError afterwards; arrays and
        memoryviews already handed out keep the mapping alive until they go."""
        # The snapshot is dropped, never closed by hand: CPython unmaps the
        # file (and releases the C pointer's export) when the last holder is
        # gone, so a walk still running in another thread, or an array handed
        # out, keeps reading valid memory.
        self._snap = None

    @property
    def _ref(self) -> ArchiveRef | None:
        """What this archive pickles as (``_refs.py``): the file's absolute
        path and identity, and the options it was opened with; None for an
        archive over a caller's buffer."""
        if self._origin is None:
            return None
        path, identity, verify, require_zero_copy, storage_options = self._origin
        remote = (("storage_options", storage_options),) if storage_options else ()
        return ArchiveRef(path if is_url(path) else os.path.normpath(path), identity, (
            ("model", self.model), ("verify", verify), ("require_zero_copy", require_zero_copy),
            ("threads", self.threads), ("max_depth", self.max_depth)) + remote)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by reference: ``(path, file identity, open options)``,
        reopened (and checked) by ``_refs.reopen``. TypeError for an archive
        over a caller's buffer, ArchiveError for a closed one."""
        ref = self._ref
        if ref is None:
            raise TypeError(f"an archive over a caller's buffer ({self._name}, "
                            f"Archive.from_buffer) cannot be pickled by reference: pickle "
                            f"its value (.to_python()) instead, or write it to a file "
                            f"(bfa.dump) and pickle the archive opened from that file")
        if self._snap is None:
            raise closed()
        return reopen, (ref,)

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._snap is None else f"{self._nbytes} bytes"
        return f"<Archive {self._name} {state}>"


def _typed_root() -> Any:
    """models.typed_root, imported on first use (models imports pydantic)."""
    global _TYPED_ROOT
    if _TYPED_ROOT is None:
        from .models import typed_root
        _TYPED_ROOT = typed_root
    return _TYPED_ROOT


_TYPED_ROOT: Any = None


def _kept_open(caches: dict[Any, Any] | None, max_depth: int, threads: int | None
               ) -> tuple[Snapshot, int, int, int] | None:
    """(snapshot, size, root tag, root offset) that an earlier open with the
    same options left in a kept mapping's ``caches``, or None."""
    kept = caches.get("opened") if caches is not None else None
    if kept is None or kept[0] != max_depth or kept[1] != threads:
        return None
    return kept[2]  # type: ignore[no-any-return]


def _snapshot(source: ByteSource, max_depth: int, threads: int | None,
              require_zero_copy: bool) -> Snapshot:
    """Check the header of ``source`` and make the snapshot the archive reads:
    the source's buffer itself, or for a compressed archive its nodes
    decompressed (their chunks checked) into an image."""
    whole = source.whole()
    if whole is None:
        raise ArchiveError(f"{source.name}: this byte source cannot be read in place")
    view = memoryview(whole)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if not view.readonly:
        view = view.toreadonly()
    caches = source.caches
    # The C pointer exports from the source object itself, never from our
    # memoryview: a memoryview with exports that ends up in cyclic garbage
    # at interpreter exit cannot be cleared safely. For the same reason no
    # view is cached on the archive (a view refers to its archive).
    owner, ptr = buffer_pointer(whole)
    # what the archives over one kept mapping share, parsed by the first: the
    # checked header, the checksum layer of an uncompressed file (its sections
    # are verified once per mapping), table geometry and other parsed nodes,
    # the root's slots
    parsed = caches.get("parsed") if caches is not None else None
    image = getattr(source, "image", None)  # a ranged source: bytes fetched as needed
    try:
        if parsed is None:
            header = parse_header(ptr, view.nbytes)
            plain_layer = None
            if header.flags & F.F_CHECKSUMS and not header.flags & F.F_COMPRESSED:
                plain_layer = _file_layer()(whole, view, owner, ptr, header, image)
            parsed = (header, plain_layer, {}, {})
            if caches is not None:
                caches["parsed"] = parsed
        header, layer, tables, root_slots = parsed
        if header.flags & F.F_COMPRESSED:  # its own layer: payloads decoded for this archive
            layer = _file_layer()(whole, view, owner, ptr, header, image)
    except BaseException:
        release(owner)
        raise
    if layer is None or not layer.compressed:
        # what string and struct reads slice: bytes and mmap slice to bytes, fastest
        raw = whole if type(whole) in (bytes, mmap.mmap) else view
        return Snapshot(raw, view, ptr, owner, header.file_size, header, layer, tables,
                        root_slots, max_depth, threads, image)
    if require_zero_copy:
        layer.release()
        raise ArchiveError("archive is compressed: reading it decompresses (copies) "
                           "data; open it without require_zero_copy=True")
    nodes_image = None
    try:
        if image is not None:  # read by range: nodes decoded chunk by chunk as reads need them
            from ._ranged import structure_image

            nodes_image = structure_image(layer, image, getattr(source, "poison", None))
            nodes: Any = nodes_image.buffer()
        else:
            nodes = layer.structure(threads if threads is not None else _cores())
        owner, ptr = buffer_pointer(nodes)
    except BaseException:
        layer.release()
        raise
    size = header.nodes_end
    rc = check_slot(ptr, size, F.ROOT_SLOT_POS, size)
    if rc < 0:
        raise archive_error(rc, "root slot at offset 24")
    mv = memoryview(nodes).toreadonly()
    return Snapshot(nodes if nodes_image is None else mv, mv, ptr, owner, size, header, layer,
                    tables, root_slots, max_depth, threads, nodes_image)


_FileLayer: Any = None


def _file_layer() -> Any:
    """``payloads.FileLayer``, imported on the first archive that has one
    (it brings the thread pool's imports; a plain import here costs ~3 us a call)."""
    global _FileLayer
    if _FileLayer is None:
        from .payloads import FileLayer

        _FileLayer = FileLayer
    return _FileLayer


def _cores() -> int:
    from .framing import default_threads

    return default_threads(None)
