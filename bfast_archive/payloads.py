"""The file layer under an Archive: the directory after the nodes, its
checksums, and the chunked LZ4 payloads of a compressed archive
(docs/format/layout.md, "Directory").

Decoding a payload checks each chunk's XXH64 and decompresses a whole range
of chunks per C call, with the GIL released, straight into one preallocated
buffer; ranges run on a thread pool. A payload whose chunks were all stored
raw, back to back and 64-aligned, is handed out as a view of the file.
"""
from __future__ import annotations

import struct
import threading
from typing import Any

from . import format as F
from ._native import CData, ffi, lib
from ._native import archive_error, release
from ._parallel import run_parallel, split_range
from ._pytable import new_bytes
from .errors import ArchiveError

# how far before the directory a tail copy can start: its chunks, and the
# padding to 64 before them
TAIL_COPY_REACH = F.TAIL_COPY_MAX + F.ARRAY_ALIGN
# the first two fields of a directory entry (check or chunk): offset, length
_SPAN = struct.Struct("<QQ").unpack_from


class FileLayer:
    """Directory, checksums and payloads of one archive file or buffer."""

    __slots__ = ("view", "owner", "ptr", "header", "file_size", "compressed", "directory",
                 "cache", "lock", "_source", "checked", "image", "_copy")

    def __init__(self, source: object, view: memoryview, owner: CData, ptr: CData,
                 header: CData, image: Any = None) -> None:
        self._source = source
        self.image = image  # an archive read by byte range: fetch before reading
        self.view = view
        self.owner = owner
        self.ptr = ptr
        self.header = header
        self.file_size = header.file_size
        self.compressed = bool(header.flags & F.F_COMPRESSED)
        # checked on first need: open stays O(1) when uncompressed
        self.directory: CData | None = None
        self.cache: dict[int, memoryview] = {}
        self.lock = threading.Lock()
        self.checked = 0  # uncompressed: sections 0..checked-1 verified (verify_through)
        self._copy: tuple[int, int] | None = None  # (tail_copy)
        if self.compressed:
            self._directory()

    def _directory(self) -> CData:
        d = self.directory
        if d is None:
            if self.ptr is None:
                raise ArchiveError("archive is closed")
            d = ffi.new("bfa_directory *")
            image, at = self.image, self.header.sections_off
            if image is not None:  # the directory: at the end, read at open if small
                if self.compressed and not image.resident(at, self.file_size - at):
                    # not in the tail fetched at open: bring a tail copy along
                    at = max(F.HEADER_SIZE, min(at, self.file_size) - TAIL_COPY_REACH)
                image.ensure(at, self.file_size - at)
            rc = lib.bfa_directory_check(self.ptr, self.file_size, self.header, d)
            if rc < 0:
                raise archive_error(rc, f"directory at offset {self.header.sections_off}")
            self.directory = d
            if image is not None and self.compressed:
                self._copy = self._tail_copy(d)
        return d

    def _tail_copy(self, d: CData) -> tuple[int, int] | None:
        """Ranged archive: (p, k) when the last payload ``p`` is a tail copy
        of payload 0 from its chunk ``k`` on (docs/format/layout.md, "Tail
        copy"): its chunks the same size and the same stored bytes (length,
        XXH64, codec) as payload 0's last ones. The chunks are then read from
        the copy, which came with the directory. None otherwise."""
        p = d.n_payloads - 1
        if p < 1:
            return None
        size0, cs0, first0, n0 = self._entry(0)
        size, cs, first, n = self._entry(p)
        k = n0 - n
        if cs != cs0 or not 1 <= n <= n0 or size != size0 - k * cs0:
            return None
        entry, table = F.CHUNK_ENTRY.size, d.chunks_off
        # its bytes first (chunks follow one another, each at least 1 byte:
        # this also bounds the entries compared below by the bytes at hand)
        lo = self._span(table, entry, first)[0]
        last_off, last_n = self._span(table, entry, first + n - 1)
        if not self.image.resident(lo, last_off + last_n - lo):
            return None
        for j in range(n):
            mine = F.CHUNK_ENTRY.unpack_from(self.view, table + (first + j) * entry)
            theirs = F.CHUNK_ENTRY.unpack_from(self.view, table + (first0 + k + j) * entry)
            if mine[1:] != theirs[1:]:
                return None
        return p, k

    def release(self) -> None:
        if self.owner is not None:
            release(self.owner)
        self.owner = self.ptr = None
        self.cache = {}

    # -- payloads --------------------------------------------------------------
    def _entry(self, index: int) -> tuple[int, int, int, int]:
        d = self._directory()
        if not 0 <= index < d.n_payloads:
            raise ArchiveError(f"payload {index} does not exist "
                               f"(the archive has {d.n_payloads})")
        size, chunk_size, first, n, _ = F.PAYLOAD_ENTRY.unpack_from(
            self.view, d.payloads_off + index * F.PAYLOAD_ENTRY.size)
        return size, chunk_size, first, n

    def chunk_size(self, index: int) -> int:
        """The size of the chunks payload ``index`` was compressed in."""
        return self._entry(index)[1]

    def _raw_run(self, first: int, n: int, size: int) -> int | None:
        """File offset of the payload if all its chunks are raw, contiguous
        and 64-aligned (then it is used in place), else None."""
        d = self._directory()
        start: int | None = None
        at = 0  # (set with start)
        for k in range(first, first + n):
            off, stored, _, codec, _ = F.CHUNK_ENTRY.unpack_from(
                self.view, d.chunks_off + k * F.CHUNK_ENTRY.size)
            if codec != F.CODEC_RAW or (start is not None and off != at):
                return None
            if start is None:
                start = off
            at = off + stored
        if start is None or start % F.ARRAY_ALIGN or at - start != size:
            return None
        return start

    def structure(self, threads: int) -> Any:
        """The nodes image of a compressed archive: payload 0 after a copy of
        the header. Costs the size of the nodes, not of the array payloads."""
        size, chunk_size, first, n = self._entry(0)
        total = F.HEADER_SIZE + size
        # a bytes object filled once, here, while this call holds its only
        # reference (as C fills PyBytes_FromStringAndSize(NULL, n)): the
        # reader slices bytes faster than any other buffer
        image = new_bytes(total)
        with ffi.from_buffer("uint8_t[]", image) as dst:
            lib.bfa_advise_huge(dst, total)
            lib.bfa_copy(dst, total, 0, self.ptr, F.HEADER_SIZE)
            self._decode_into(0, 0, n, dst + F.HEADER_SIZE, size, threads)
        return image

    def payload(self, index: int, nbytes: int, threads: int, cache: bool = True,
                check: bool = False) -> tuple[memoryview, bool]:
        """Payload ``index`` (>= 1) as a memoryview of ``nbytes`` bytes, and
        whether it was decoded just for this call (an owned, writable buffer).
        Decoded chunks are always checked against their XXH64; with ``check``
        so are the chunks of a payload used in place (for a copy-out)."""
        if index == 0:
            raise ArchiveError("payload 0 holds the nodes, not a value")
        hit = self.cache.get(index)
        if hit is not None and not check:
            return hit, False
        size, chunk_size, first, n = self._entry(index)
        if size != nbytes:
            raise ArchiveError(f"payload {index} holds {size} bytes, its node says {nbytes}")
        start = self._raw_run(first, n, size)
        if start is not None:
            if check:
                self._verify_entries(first, first + n, threads)
            if self.image is not None:
                self.image.ensure(start, size)
            view = self.view[start:start + size]
            self.cache[index] = view
            return view, False
        if hit is not None:  # decoded earlier, its chunks checked then
            return hit, False
        if not cache:
            return self._decode_aligned(index, n, size, threads), True
        with self.lock:
            hit = self.cache.get(index)
            if hit is None:
                hit = self._decode_aligned(index, n, size, threads).toreadonly()
                self.cache[index] = hit
        return hit, False

    def payload_range(self, index: int, nbytes: int, start: int, stop: int,
                      threads: int) -> memoryview:
        """Bytes [start, stop) of payload ``index``, decoding only the chunks
        that hold them (or slicing the cached / in-place payload)."""
        hit = self.cache.get(index)
        if hit is not None:
            return hit[start:stop]
        size, chunk_size, first, n = self._entry(index)
        if size != nbytes:
            raise ArchiveError(f"payload {index} holds {size} bytes, its node says {nbytes}")
        raw_at = self._raw_run(first, n, size)
        if raw_at is not None:
            if self.image is not None:
                self.image.ensure(raw_at + start, stop - start)
            return self.view[raw_at + start:raw_at + stop]
        if start >= stop:
            return memoryview(b"")
        k0, k1 = start // chunk_size, -(-stop // chunk_size)
        buf = bytearray(min(size, k1 * chunk_size) - k0 * chunk_size)
        with ffi.from_buffer("uint8_t[]", buf, require_writable=True) as dst:
            self._decode_into(index, k0, k1, dst, len(buf), threads)
        base = k0 * chunk_size
        return memoryview(buf)[start - base:stop - base]

    def _decode_aligned(self, index: int, n: int, size: int, threads: int) -> memoryview:
        import numpy as np

        block = np.empty(size + F.ARRAY_ALIGN, np.uint8)
        skip = -block.ctypes.data % F.ARRAY_ALIGN
        out = block[skip:skip + size]
        with ffi.from_buffer("uint8_t[]", out, require_writable=True) as dst:
            self._decode_into(index, 0, n, dst, size, threads)
        return out.data  # (memoryview(out))

    def _decode_into(self, index: int, k0: int, k1: int, dst: Any, room: int,
                     threads: int) -> None:
        """Decode chunks [k0, k1) of payload ``index`` to ``dst``, a pointer
        to ``room`` writable bytes (the caller keeps the memory alive), on up to
        ``threads`` threads; under ``F.PARALLEL_DECODE_MIN`` bytes on this one."""
        from ._lz4 import DECOMPRESS

        d = self._directory()
        size, chunk_size, first, n = self._entry(index)
        copy = self._copy if index == 0 else None
        split = k1 if copy is None else max(k0, min(k1, copy[1]))
        if self.image is not None:  # the chunks' stored bytes, in one round trip
            self._fetch_entries(d.chunks_off, F.CHUNK_ENTRY.size, first + k0, first + split)

        def task(rng: tuple[int, int]) -> None:
            a, b = rng
            lo = (a - k0) * chunk_size
            hi = min(size, b * chunk_size) - k0 * chunk_size
            if hi > room:
                raise ArchiveError(f"payload {index} does not fit its buffer")
            if self.ptr is None:
                raise ArchiveError("archive is closed")
            p = index
            if a >= split and copy is not None:  # the same chunks, from the tail copy
                p, a, b = copy[0], a - copy[1], b - copy[1]
            bad = ffi.new("uint64_t *")
            rc = lib.bfa_payload_decode(self.ptr, self.file_size, d, p, a, b,
                                        dst + lo, hi - lo, DECOMPRESS, 1, bad)
            if rc < 0:
                raise self._chunk_error(rc, bad[0], p)

        if min(size, k1 * chunk_size) - k0 * chunk_size < F.PARALLEL_DECODE_MIN:
            threads = 1  # a small read: decoded on this thread
        tasks = [(k0 + a, k0 + b) for a, b in split_range(split - k0, threads)]
        tasks += [(split + a, split + b) for a, b in split_range(k1 - split, threads)]
        run_parallel(task, tasks, threads)

    def _chunk_error(self, rc: int, chunk: int, index: int | None) -> Exception:
        d = self._directory()
        off, stored, _, _, _ = F.CHUNK_ENTRY.unpack_from(
            self.view, d.chunks_off + chunk * F.CHUNK_ENTRY.size) \
            if chunk < d.n_chunks else (0, 0, 0, 0, 0)
        where = f"chunk {chunk}" + (f" of payload {index}" if index is not None else "") + \
            f" (file bytes {off}..{off + stored})"
        if self._copy is not None and index == self._copy[0]:
            where += ", the tail copy of payload 0"
        if rc == lib.BFA_E_CHECKSUM:
            return ArchiveError(f"checksum mismatch in {where}")
        return archive_error(rc, where)

    def stored_bytes(self, index: int) -> int:
        """The bytes the chunks of payload ``index`` take in the file."""
        d = self._directory()
        first, n = self._entry(index)[2:]
        return sum(self._span(d.chunks_off, F.CHUNK_ENTRY.size, k)[1]
                   for k in range(first, first + n))

    def fetch_chunks(self, index: int, spans: list[tuple[int, int]]) -> None:
        """Ranged archive: fetch the stored bytes of chunks [k0, k1) of payload
        ``index`` for each span, all in one round trip."""
        d = self._directory()
        first = self._entry(index)[2]
        stop = self._copy[1] if index == 0 and self._copy is not None else None
        ranges = []
        for k0, k1 in spans:  # (the chunks of a tail copy came with the directory)
            for k in range(first + k0, first + (k1 if stop is None else min(k1, stop))):
                if k < d.n_chunks:
                    off, stored = self._span(d.chunks_off, F.CHUNK_ENTRY.size, k)
                    ranges.append((off, min(stored, max(self.file_size - off, 0))))
        self.image.ensure_ranges(ranges)

    def _span(self, table: int, entry: int, i: int) -> tuple[int, int]:
        """(offset, length) of entry ``i`` of a directory table whose entries
        are ``entry`` bytes (checks and chunks both start with them)."""
        off, n = _SPAN(self.view, table + i * entry)
        return off, n

    def _fetch_entries(self, table: int, entry: int, first: int, stop: int) -> None:
        """Ranged archive: fetch the bytes of directory entries [first, stop)
        (sections or chunks; each entry starts with its offset and size)."""
        lo, hi = self.file_size, 0
        for i in range(first, stop):
            off, n = self._span(table, entry, i)
            lo, hi = min(lo, off), max(hi, off + n)
        if hi > lo:
            self.image.ensure(lo, min(hi, self.file_size) - lo)

    # -- verification ------------------------------------------------------------
    def verify(self, threads: int) -> int:
        """Check all checksums in parallel; return the number of bytes hashed."""
        d = self._directory()
        if self.compressed:
            table, entry, count = d.chunks_off, F.CHUNK_ENTRY.size, d.n_chunks
        else:
            table, entry, count = d.checks_off, F.CHECK_ENTRY.size, d.n_checks
        self._verify_entries(0, count, threads)
        total = 0
        for i in range(count):
            total += F.U64.unpack_from(self.view, table + i * entry + 8)[0]
        if not self.compressed:
            self.checked = count
        return total

    def verify_through(self, end: int, threads: int) -> None:
        """Uncompressed: check the sections that hold any byte below offset
        ``end`` and were not checked by an earlier call (each section is
        hashed at most once per layer). Sections start at 64 and follow one
        another, so that is a run of them from the first one."""
        d = self._directory()
        lo, hi = self.checked, d.n_checks
        if lo >= hi:
            return
        table, entry = d.checks_off, F.CHECK_ENTRY.size
        stop = lo  # first section starting at or past ``end`` (binary search)
        while stop < hi:
            mid = (stop + hi) // 2
            if F.U64.unpack_from(self.view, table + mid * entry)[0] < end:
                stop = mid + 1
            else:
                hi = mid
        if stop > lo:
            self._verify_entries(lo, stop, threads)
            self.checked = max(self.checked, stop)  # (another thread may have gone further)

    def _verify_entries(self, first: int, stop: int, threads: int) -> None:
        """Check directory entries [first, stop) (sections, or chunks when
        compressed) in C on up to ``threads`` threads (on this one when they
        span under ``F.PARALLEL_MIN`` bytes); ArchiveError names the first bad one."""
        d = self._directory()
        if self.compressed:
            table, entry = d.chunks_off, F.CHUNK_ENTRY.size
        else:
            table, entry = d.checks_off, F.CHECK_ENTRY.size
        if self.image is not None:
            self._fetch_entries(table, entry, first, stop)

        def task(rng: tuple[int, int]) -> None:
            bad = ffi.new("uint64_t *")
            if self.ptr is None:
                raise ArchiveError("archive is closed")
            rc = lib.bfa_verify_entries(self.ptr, self.file_size, table, entry, rng[0],
                                        rng[1] - rng[0], bad)
            if rc < 0:
                i = bad[0]
                if self.compressed:
                    raise self._chunk_error(rc, i, None)
                off, n, _ = F.CHECK_ENTRY.unpack_from(self.view, table + i * entry)
                what = "checksum mismatch" if rc == lib.BFA_E_CHECKSUM else "bad entry"
                raise ArchiveError(f"{what} in section {i} (bytes {off}..{off + n})")

        if stop > first:
            lo, _ = self._span(table, entry, first)
            off, n = self._span(table, entry, stop - 1)
            if off + n - lo < F.PARALLEL_MIN:
                threads = 1  # hashed on this thread: handing it out costs more (F.PARALLEL_MIN)
        run_parallel(task, [(first + a, first + b) for a, b in
                            split_range(stop - first, 4 * threads)], threads)
