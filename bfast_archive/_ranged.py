"""Archives read by byte range: the image of a remote object, filled as
reads need it.

A ``RangedImage`` is an anonymous mapping the size of the archive (pages
cost memory only once written) plus a residency map of blocks, registered
with the C core (csrc/sparse.c). The core's read functions, handed its
base, make every block they load resident first by calling back into
``_fill`` (``bfa_py_fill``), which fetches the missing blocks through a
``RemoteFile`` (one round trip for all of them, adjacent blocks in one
request) and copies them in. The Python reader calls ``ensure(off, n)``
before it reads bytes the core did not read for it (table columns, array
data, string blobs). So no byte is read before it arrived, and all bytes
come from the one version of the object pinned at open: a replaced object
raises ArchiveError "changed while reading".

``RangedSource`` is the byte source over such an image (``_source.py``);
``Archive.open(url)`` builds one.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Iterable

from ._native import ffi, lib, set_io_error
from ._source import ByteSource
from .errors import ArchiveError

_IMAGES: "weakref.WeakValueDictionary[int, RangedImage]" = weakref.WeakValueDictionary()
# blocks fetched past the ones a load of the core needs: a node that starts
# near the end of a block (a table's column descriptors, a dict's entries)
# goes on in the next one, which would otherwise cost a round trip of its own
READAHEAD = 1
LARGE_READ = 1 << 20  # reads of array data this big bypass the block cache
_NEXT = [1]
_NEXT_LOCK = threading.Lock()


@ffi.def_extern()  # type: ignore[untyped-decorator]
def bfa_py_fill(userdata: Any, first: int, end: int) -> int:
    """The core's fill call: make blocks [first, end) of an image resident.
    0 on success; else -1, with the exception kept for the reader to raise
    (``_native.archive_error`` for BFA_E_IO)."""
    try:
        image = _IMAGES.get(int(ffi.cast("uintptr_t", userdata)))
        if image is None:
            raise ArchiveError("archive is closed")
        image.fill_blocks(first, end + READAHEAD)
        return 0
    except BaseException as exc:  # noqa: B902 (handed to the reading thread)
        set_io_error(exc)
        return -1


class RangedImage:
    """The bytes of one remote object as they arrive (see the module doc).
    ``fetched`` counts the bytes copied into the image."""

    __slots__ = ("remote", "size", "block", "shift", "ptr", "_c", "_have", "_lock", "_key",
                 "fetched", "prefix", "suffix", "__weakref__")

    def __init__(self, remote: Any, poison: int | None = None) -> None:
        # ``remote``: what fetches bytes: ``read_ranges``, ``size``,
        # ``block_size`` and ``url`` (a RemoteFile, or _Structure)
        self.remote = remote
        self.size = size = remote.size
        block = remote.block_size
        if block & (block - 1) or block < 512:
            raise ValueError(f"block_size must be a power of two >= 512, not {block}")
        self.block, self.shift = block, block.bit_length() - 1
        with _NEXT_LOCK:
            key = self._key = _NEXT[0]
            _NEXT[0] += 1
        c = lib.bfa_image_new(max(size, 1), self.shift, lib.bfa_py_fill, ffi.cast("void *", key))
        if c == ffi.NULL:
            raise MemoryError(f"cannot reserve an image of {size} bytes for {remote.url}")
        self._c = c
        # the base pointer frees the image (unregistered, then unmapped) when
        # the last buffer over it goes: every snapshot holds it
        self.ptr = ffi.gc(lib.bfa_image_base(c), lambda _p, c=c: lib.bfa_image_free(c))
        if poison is not None:  # tests: bytes never fetched read as garbage, not zeros
            ffi.memmove(self.ptr, bytes([poison]) * size, size)
        self._have = bytearray(((max(size, 1) - 1) >> self.shift) + 1)
        self._lock = threading.Lock()
        self.fetched = 0
        self.prefix = 0  # bytes [0, prefix) are resident whatever their blocks (set_prefix)
        self.suffix = size  # and so are bytes [suffix, size) (the tail fetched at open)
        _IMAGES[key] = self

    def buffer(self) -> Any:
        """The whole image as a buffer (holds the image alive)."""
        return ffi.buffer(self.ptr, self.size)

    def set_prefix(self, data: bytes) -> None:
        """Copy ``data`` in at 0 and make those bytes resident (not their
        blocks: a nodes image's header is known before any chunk is)."""
        ffi.memmove(self.ptr, data, len(data))
        self.prefix = len(data)
        lib.bfa_image_prefix(self._c, len(data))

    def _put(self, off: int, data: bytes) -> None:
        """Copy ``data`` in at ``off`` and mark the blocks it covers whole
        (the last block of the object counts whole when ``data`` reaches it)."""
        n = len(data)
        if not n:
            return
        ffi.memmove(self.ptr + off, data, n)
        self.fetched += n
        end = off + n
        first = (off + self.block - 1) >> self.shift
        last = (end >> self.shift) if end < self.size else ((self.size - 1) >> self.shift) + 1
        if last > first:
            lib.bfa_image_mark(self._c, first, last)
            self._have[first:last] = b"\x01" * (last - first)

    def fill_blocks(self, first: int, end: int) -> None:
        """Fetch the missing blocks of [first, end) (one round trip)."""
        self._fill([(first, min(end, len(self._have)))])

    def _fill(self, spans: list[tuple[int, int]]) -> None:
        """Fetch the missing blocks of each block span [first, end), all in
        one round trip (adjacent missing blocks in one request)."""
        with self._lock:
            have = self._have
            runs: list[tuple[int, int]] = []
            for first, end in sorted(spans):
                b = max(first, runs[-1][1]) if runs else first
                while b < end:
                    b = have.find(0, b, end)
                    if b < 0:
                        break
                    a = b
                    b = have.find(1, a, end)
                    if b < 0:
                        b = end
                    if runs and runs[-1][1] == a:
                        runs[-1] = (runs[-1][0], b)
                    else:
                        runs.append((a, b))
            if not runs:
                return
            ranges = [(a << self.shift, min(b << self.shift, self.size) - (a << self.shift))
                      for a, b in runs]
            cover = getattr(self.remote, "cover", None)
            if cover is not None:  # whole units of the source (decoded chunks): all kept
                ranges = cover(ranges)
            for (off, _), data in zip(ranges, self.remote.read_ranges(ranges)):
                self._put(off, data)

    def _outside(self, off: int, n: int) -> ArchiveError:
        return ArchiveError(f"{self.remote.url}: bytes [{off}, {off + n}) are outside the "
                            f"archive ({self.size} bytes)")

    def ensure(self, off: int, n: int) -> None:
        """Make bytes [off, off + n) resident (a round trip if some are not).
        ArchiveError for a range outside the object."""
        self.ensure_ranges(((off, n),))

    def ensure_ranges(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Make each (off, n) resident, all in one round trip."""
        spans = []
        for off, n in ranges:
            if n <= 0:
                continue
            if off < 0 or off + n > self.size:
                raise self._outside(off, n)
            if off + n <= self.prefix or off >= self.suffix:
                continue
            first, end = off >> self.shift, ((off + n - 1) >> self.shift) + 1
            if self._have.find(0, first, end) >= 0:
                spans.append((first, end))
        if spans:
            self._fill(spans)

    def resident(self, off: int, n: int) -> bool:
        """Whether bytes [off, off + n) are in the image (no round trip)."""
        if off + n <= self.prefix or off >= self.suffix or n <= 0:
            return True
        return self._have.find(0, off >> self.shift, ((off + n - 1) >> self.shift) + 1) < 0

    def read(self, off: int, n: int) -> bytes | memoryview:
        """Bytes [off, off + n) fetched for the caller alone (array data):
        not copied into the image, no block cache beyond the remote file's."""
        if off < 0 or n < 0 or off + n > self.size:
            raise self._outside(off, n)
        if self.resident(off, n):
            return bytes(ffi.buffer(self.ptr + off, n))
        if n >= LARGE_READ:  # straight into one buffer: no block cache, no joins
            big: memoryview = self.remote.read_into(off, n)  # writable, this call's own
            return big
        data: bytes = self.remote.read_ranges([(off, n)])[0]
        return data


class RangedSource(ByteSource):
    """A remote object read by byte range (``Archive.open(url)``): its image
    fills as reads need it; ``whole()`` is the image."""

    __slots__ = ("image", "name", "size", "identity", "storage_options", "poison")

    def __init__(self, remote: Any, storage_options: dict[str, Any] | None = None,
                 poison: int | None = None) -> None:
        self.image = image = RangedImage(remote, poison)
        image._put(0, remote.head)  # what the open fetched
        image._put(remote.tail_start, remote.tail)
        image.suffix = remote.tail_start
        self.name = remote.url
        self.size = remote.size
        # what a pickled archive checks when it opens the URL again (_refs.py)
        self.identity = ("remote", remote.etag, remote.version, remote.size)
        self.storage_options = storage_options
        self.poison = poison  # (tests: the nodes image of a compressed archive too)

    def read(self, off: int, n: int) -> memoryview:
        self.image.ensure(off, n)
        return memoryview(self.image.buffer())[off:off + n].toreadonly()

    def whole(self) -> Any:
        return self.image.buffer()


BLOCK = 16 << 10  # fetch and residency unit of a ranged archive


def open_ranged(url: str, storage_options: dict[str, Any] | None = None, *,
                block: int = BLOCK, tail: int = 64 << 10, cache_bytes: int = 64 << 20,
                poison: int | None = None) -> RangedSource:
    """A ranged source over the object at ``url``: one round trip (its last
    ``tail`` bytes and its first block, fetched together). ``poison`` (tests)
    fills the image with that byte first, so that a byte read before it was
    fetched shows as garbage instead of zeros."""
    from .remote import RemoteFile

    remote = RemoteFile(url, storage_options, block_size=block, head=block, tail=tail,
                        cache_bytes=cache_bytes)
    return RangedSource(remote, storage_options, poison)


NODE_BLOCK = 1 << 10  # residency unit of the nodes image of a compressed archive
# nodes stored in at most this many bytes are fetched whole by their first read:
# with the open's 80 KiB, one more round trip of at most 208 KiB serves every
# later read of nodes
NODES_WHOLE = 128 << 10


class _Structure:
    """What fills the nodes image of a compressed archive read by byte range
    (the header, then payload 0): the chunks holding the asked bytes,
    fetched (once: the file's image keeps them) and decoded, their XXH64
    checked. Every fill is widened to whole chunks (``cover``), all of them
    kept in the image (all the nodes when they are stored in at most
    ``NODES_WHOLE`` bytes); the chunks of ranges asked for together are
    fetched in one round trip. The image's blocks are small
    (``NODE_BLOCK``), so a fill seldom reaches into a neighbouring chunk it
    does not need."""

    def __init__(self, layer: Any, header: bytes, url: str) -> None:
        self.layer = layer
        self.header = header
        self.url = url
        self.block_size = NODE_BLOCK
        self.payload_size = layer._entry(0)[0]
        self.size = len(header) + self.payload_size
        self.chunk = layer.chunk_size(0)
        self.whole = layer.stored_bytes(0) <= NODES_WHOLE

    def cover(self, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """``ranges`` (sorted (offset, n) of the image) widened to the whole
        chunks holding them (to all the nodes when ``whole``), overlapping
        ones merged. The last chunk, when it is less than half a chunk,
        comes with the one before it: the nodes read first (the root, its
        tables' and arrays' nodes) lie at the end of the image and often
        reach back past it."""
        head, chunk, size = len(self.header), self.chunk, self.size
        if self.whole and ranges[-1][0] + ranges[-1][1] > head:
            return [(min(ranges[0][0], head), size - min(ranges[0][0], head))]
        last = head + max(self.payload_size - 1, 0) // chunk * chunk
        out: list[tuple[int, int]] = []
        for off, n in ranges:
            a, b = off, off + n
            if b > head:
                a = min(a, head + (max(a, head) - head) // chunk * chunk)
                b = min(size, head + -(-(b - head) // chunk) * chunk)
                if b == size and a == last > head and 2 * (size - last) < chunk:
                    a -= chunk
            if out and a <= out[-1][0] + out[-1][1]:
                a = out[-1][0]
                b = max(b, a + out[-1][1])
                out.pop()
            out.append((a, b - a))
        return out

    def read_ranges(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        head = len(self.header)
        chunk = self.chunk
        # every chunk the ranges need, fetched in one round trip first
        spans = [((max(off, head) - head) // chunk, -(-(off + n - head) // chunk))
                 for off, n in ranges if off + n > head]
        self.layer.fetch_chunks(0, spans)
        out = []
        for off, n in ranges:
            part = self.header[off:off + n] if off < head else b""
            a, b = max(off, head) - head, off + n - head
            if b > a:
                part += bytes(self.layer.payload_range(0, self.payload_size, a, b, 1))
            out.append(part)
        return out


def structure_image(layer: Any, file_image: RangedImage, poison: int | None = None) -> RangedImage:
    """The nodes image of a compressed archive whose file is ``file_image``,
    decoded chunk by chunk as reads need it (``_Structure``)."""
    from . import format as F

    file_image.ensure(0, F.HEADER_SIZE)
    header = bytes(ffi.buffer(file_image.ptr, F.HEADER_SIZE))
    nodes = RangedImage(_Structure(layer, header, file_image.remote.url), poison)
    nodes.set_prefix(header)  # the root slot is in it: reading it fetches no chunk
    return nodes
