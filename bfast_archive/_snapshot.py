"""What an open archive reads: one immutable snapshot of its buffers.

An ``Archive`` holds a ``Snapshot`` and replaces it by ``None`` on
``close()``. Every read takes ``arch._snap`` into a local once, raises
"archive is closed" if it is None, and from then on reads only through that
local. Nothing in a snapshot changes after it is made and ``close()`` never
releases or unmaps anything itself, so a read that holds a snapshot reads
valid memory whatever another thread does meanwhile: the C pointer owns its
buffer export (``_native.buffer_pointer``), and the mapping or bytes object
lives as long as its last holder. One reference read gives a consistent view
of all the buffers, also on free-threaded CPython.

A copy-out (``to_python``, a full load) walks the archive with
``snap.walk()``: a snapshot over the same buffers that also tracks the nodes
it has copied out, so a file that shares nodes (which no writer makes) is
refused instead of expanding without bound.
"""
from __future__ import annotations

from typing import Any

from .errors import ArchiveError


def closed() -> ArchiveError:
    return ArchiveError("archive is closed")


class NoTracking:
    """The ``seen`` of a lazy read of one value: nothing to track."""

    __slots__ = ()

    def __contains__(self, item: object) -> bool:
        return False

    def add(self, item: object) -> None:
        pass


_NO_TRACKING = NoTracking()


class Snapshot:
    """The buffers of one open archive, fixed when it opens.

    - ``raw``: what string and struct reads slice (the ``bytes`` or mmap
      itself when the source is one: they slice to ``bytes`` fastest, else a
      read-only memoryview);
    - ``mv``: a read-only memoryview of the same bytes (zero-copy slices);
    - ``ptr``, ``owner``: the ``uint8_t *`` handed to C and its export;
    - ``size``: the length C may read (the nodes image of a compressed
      archive, else the file);
    - ``header``: the checked header; ``layer``: the directory, checksums and
      payloads (``payloads.FileLayer``), None for an archive without them;
    - ``tables``: what is parsed from the bytes once (table geometry, array
      descriptors and in-place arrays, schemas), shared by the archives over
      one kept mapping (which also share one snapshot per set of options);
    - ``image``: for an archive read by byte range (``_ranged.py``), its
      image, whose ``ensure(off, n)`` the reader calls before reading bytes
      the C core did not read for it; None when every byte is at hand;
    - ``seen``, ``models``, ``check``, ``arch``: the state of a copy-out walk
      (``walk()``); a lazy read tracks nothing.
    """

    __slots__ = ("raw", "mv", "ptr", "owner", "size", "header", "layer", "tables",
                 "root_slots", "max_depth", "threads", "image")
    # a lazy read's walk state (a Walk sets its own): nothing tracked
    seen: Any = _NO_TRACKING
    models: dict[Any, Any] | None = None
    check: bool = False
    arch: Any = None

    def __init__(self, raw: Any, mv: memoryview, ptr: Any, owner: Any, size: int, header: Any,
                 layer: Any, tables: dict[Any, Any], root_slots: dict[Any, Any], max_depth: int,
                 threads: int | None, image: Any = None) -> None:
        self.raw = raw
        self.mv = mv
        self.ptr = ptr
        self.owner = owner
        self.size = size
        self.header = header
        self.layer = layer
        self.tables = tables
        self.root_slots = root_slots
        self.max_depth = max_depth
        self.threads = threads
        self.image = image

    def walk(self, arch: Any = None, *, check: bool = False,
             models: dict[Any, Any] | None = None) -> "Snapshot":
        """A snapshot over the same buffers for one copy-out: it tracks the
        nodes it copies (``claim``); ``check`` verifies the checksums of
        compressed payloads used in place; ``models`` maps schema
        fingerprints to classes in a model load (empty: note schemas only);
        ``arch`` is the archive, for values that are built from views."""
        w = Walk(self.raw, self.mv, self.ptr, self.owner, self.size, self.header, self.layer,
                 self.tables, self.root_slots, self.max_depth, self.threads, self.image)
        w.seen = set()
        w.models = models
        w.check = check
        w.arch = arch
        return w

    def nthreads(self) -> int:
        """The number of threads for parallel byte work (checksums, decoding)."""
        from .framing import default_threads

        return default_threads(self.threads)


class Walk(Snapshot):
    """A snapshot for one copy-out (``Snapshot.walk``): the same buffers,
    plus the nodes copied so far and the walk's options."""

    __slots__ = ("seen", "models", "check", "arch")


def claim(s: Snapshot, key: Any) -> None:
    """Mark a node as copied out by this walk; a second claim is an error."""
    seen = s.seen
    if key in seen:
        raise ArchiveError(f"node at offset {key if isinstance(key, int) else key[1]} is "
                           f"referenced twice: archives never share nodes (a file that "
                           f"did could expand without bound)")
    seen.add(key)
