"""Where an archive's bytes come from: the byte-source interface.

A ``ByteSource`` answers one question, "give me bytes [off, off + n) as a
buffer the C core may read" (``read``), and says how big the archive is and
what to call it in errors. Two sources exist today, both holding the whole
archive in memory the C core reads in place (``whole()``):

- ``MappedFile``: a file mapped read-only (kept for the next open of the same
  unchanged file, ``_mappings.py``);
- ``CallerBuffer``: any buffer-protocol object the caller hands in.

A source without ``whole()`` (a ranged remote object) serves ``read`` alone;
the reader asks it only for the ranges a step needs.
"""
from __future__ import annotations

import os
from typing import Any

from . import format as F
from ._mappings import TooSmall, forget, map_file
from .errors import ArchiveError


class ByteSource:
    """The bytes of one archive. Subclasses set ``name`` (used in errors)
    and ``size`` and implement ``read``; ``whole`` returns the whole archive
    as one buffer when the source has it in memory."""

    __slots__ = ()
    name: str
    size: int
    caches: dict[Any, Any] | None = None  # parsed structures shared across opens of one source
    identity: tuple[Any, ...] | None = None  # a file's (_mappings.identity); None: in memory

    def read(self, off: int, n: int) -> memoryview:
        """Bytes [off, off + n) as a read-only buffer the C core may read.
        ArchiveError if the range is outside the archive."""
        raise NotImplementedError

    def whole(self) -> Any:
        """The whole archive as a buffer-protocol object, or None."""
        return None

    def failed(self) -> None:
        """Called when the archive over this source failed to open."""

    def _check_range(self, off: int, n: int) -> None:
        if off < 0 or n < 0 or off + n > self.size:
            raise ArchiveError(f"{self.name}: bytes [{off}, {off + n}) are outside the "
                               f"archive ({self.size} bytes)")


class CallerBuffer(ByteSource):
    """A caller's buffer (bytes, bytearray, memoryview, mmap, a NumPy byte
    array), read in place: it must not change while the archive is in use."""

    __slots__ = ("obj", "view", "name", "size")

    def __init__(self, obj: Any) -> None:
        try:
            view = memoryview(obj)
        except TypeError:
            raise TypeError(f"from_buffer needs a bytes-like object, "
                            f"not {type(obj).__name__}") from None
        if not view.c_contiguous:
            raise TypeError("from_buffer needs a contiguous buffer")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        self.obj = obj
        self.view = view.toreadonly()
        self.name = f"<{type(obj).__name__}>"
        self.size = view.nbytes

    def read(self, off: int, n: int) -> memoryview:
        self._check_range(off, n)
        return self.view[off:off + n]

    def whole(self) -> Any:
        return self.obj


class MappedFile(ByteSource):
    """A file mapped read-only. ``keep`` keeps the mapping for the next open
    of the same unchanged file (``bfa.release_mappings()`` drops it)."""

    __slots__ = ("mm", "name", "size", "caches", "identity")

    def __init__(self, path: str | os.PathLike[str], keep: bool = True) -> None:
        name = os.fspath(path)
        if type(name) is not str or name[:1] == "~":  # (most paths: no call)
            name = os.path.expanduser(name)
        self.name = name
        try:
            self.mm, self.caches, self.identity = map_file(self.name, F.HEADER_SIZE, keep)
        except TooSmall as small:
            raise ArchiveError(f"{self.name}: archive is truncated ({small.args[0]} bytes, "
                               f"the header alone is {F.HEADER_SIZE})") from None
        self.size = len(self.mm)

    def read(self, off: int, n: int) -> memoryview:
        self._check_range(off, n)
        return memoryview(self.mm)[off:off + n]

    def whole(self) -> Any:
        return self.mm

    def failed(self) -> None:
        forget(self.name, self.mm)  # unmapped once the last reference goes
