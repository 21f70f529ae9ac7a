"""Framing: the header, checksums, compression and the directory around the
nodes image the writer lays out (docs/format/layout.md, "Header", "Directory").

Uncompressed: ``[header][nodes][directory: XXH64 of each <= 4 MiB section of
the nodes]``. Compressed (``compression="lz4"``): ``[header][payload chunks]
[directory: payloads and chunks]``, where payload 0 is the nodes image and
the others are array data and large ``bytes``. Hashing and compression run
in C over many chunks per call, on a thread pool, with the GIL released.
"""
from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

from . import format as F
from ._native import alloc_uninit, check_internal, ffi, lib
from ._output import nbytes
from ._parallel import run_parallel, split_range
from .errors import InternalError

if TYPE_CHECKING:
    from typing import TypeAlias

    from ._native import CData
    from ._output import Piece

    # a checksummed block: (piece, start within piece, length, archive offset)
    Block: TypeAlias = tuple[Piece, int, int, int]
    # a compression task's result: its stored chunks packed (but for raw ones
    # left in their part), the bytes of them written, and per chunk its
    # stored size, XXH64 and codec
    _Encoded: TypeAlias = tuple[CData, int, CData, CData, CData]

COMPRESSIONS = (None, "lz4")
# payload 0 (the nodes) is cut into small chunks, so that reading one value of
# a remote archive fetches and decodes a few small chunks of nodes, not a few
# ``chunk_size`` ones; at most NODE_CHUNKS of them, so that the directory still
# comes with the tail fetched at open (docs/format/canonical-form.md, "Compressed")
NODE_CHUNK = 32 << 10
NODE_CHUNKS = 1024
# the tail copy (docs/format/layout.md, "Tail copy"): the chunks of payload 0
# that hold its last TAIL_COPY_OF bytes (the root and the nodes near it),
# stored again just before the directory, when the other payloads store more
# than TAIL_COPY_AFTER bytes between them and the end and the copy takes at
# most format.TAIL_COPY_MAX: a reader by range then finds the root in the tail
# it fetches at open
TAIL_COPY_OF = 16 << 10
TAIL_COPY_AFTER = 64 << 10


def payload_chunk_size(index: int, size: int, chunk_size: int) -> int:
    """The chunk size of payload ``index`` of ``size`` bytes in an archive
    dumped with ``chunk_size``: for the nodes (payload 0), ``min(chunk_size,
    c)`` where ``c`` is the smallest power of two from NODE_CHUNK up that
    cuts them into at most NODE_CHUNKS chunks; ``chunk_size`` for every
    other payload."""
    if index:
        return chunk_size
    c = NODE_CHUNK
    while size > NODE_CHUNKS * c and c < chunk_size:
        c *= 2
    return min(chunk_size, c)


def check_options(compression: str | None, chunk_size: int, threads: int | None) -> None:
    """Reject bad ``dump`` options before any work is done."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be None or 'lz4', not {compression!r}")
    if type(chunk_size) is not int or not 4096 <= chunk_size <= F.MAX_CHUNK:
        raise ValueError(f"chunk_size must be an int from 4096 to {F.MAX_CHUNK}, "
                         f"not {chunk_size!r}")
    if threads is not None and (type(threads) is not int or threads < 1):
        raise ValueError(f"threads must be None or a positive int, not {threads!r}")


_CORES: int | None = None


def default_threads(threads: int | None) -> int:
    """``threads``, or the machine's core count (looked up once: it costs ~15 us)."""
    global _CORES
    if threads is not None:
        return threads
    if _CORES is None:
        _CORES = os.cpu_count() or 1
    return _CORES


def _header(flags: int, file_size: int, root: bytes, nodes_end: int, sections_off: int,
            minor: int = F.VERSION_MINOR) -> bytes:
    tag_word, payload = F.SLOT.unpack(root)
    head = bytearray(F.HEADER.pack(F.MAGIC, F.VERSION_MAJOR, minor, flags, file_size,
                                   tag_word, payload, nodes_end, sections_off, 0))
    head[56:64] = F.U64.pack(lib.bfa_xxh64(bytes(head[:56]), 56, 0))
    return bytes(head)


def frame(pieces: list[Piece], nodes_end: int, root: bytes, payloads: list[Any],
          compression: str | None, chunk_size: int, threads: int | None) -> list[Piece]:
    """The archive file as a list of buffers to write in order."""
    threads = default_threads(threads)
    if compression is None:
        return _frame_plain(pieces, nodes_end, root, threads)
    return _frame_compressed(pieces, nodes_end, root, payloads, chunk_size, threads)


# -- uncompressed: checksums of the nodes ------------------------------------------

def _frame_plain(pieces: list[Piece], nodes_end: int, root: bytes, threads: int) -> list[Piece]:
    pieces, blocks = plain_layout(pieces, nodes_end, root)
    if nodes_end < F.PARALLEL_MIN:
        threads = 1  # starting threads costs more than hashing a few MiB
    hashes = run_parallel(hash_blocks, [blocks[a:b] for a, b in
                                         split_range(len(blocks), 4 * threads)], threads)
    return pieces + [plain_directory(blocks, [h for part in hashes for h in part])]


def plain_layout(pieces: list[Piece], nodes_end: int, root: bytes
                 ) -> tuple[list[Piece], list[Block]]:
    """An uncompressed archive but for its directory: the pieces of the
    nodes image with the header filled in (it does not depend on the
    checksums), and the checksummed blocks, (piece, start within piece,
    length, archive offset), which tile the pieces after the header in file
    order. ``plain_directory(blocks, their XXH64s)`` is the last piece."""
    blocks: list[Block] = []
    at = 0
    for piece in pieces:
        n = nbytes(piece)
        start = F.HEADER_SIZE - at if at < F.HEADER_SIZE else 0
        for s in range(start, n, F.CHECK_BLOCK):
            blocks.append((piece, s, min(F.CHECK_BLOCK, n - s), at + s))
        at += n
    file_size = nodes_end + F.DIRECTORY_HEADER.size + len(blocks) * F.CHECK_ENTRY.size
    head = pieces[0]
    assert isinstance(head, bytearray)  # (the writer's first segment)
    head[:F.HEADER_SIZE] = _header(F.F_CHECKSUMS, file_size, root, nodes_end, nodes_end)
    return pieces, blocks


def plain_directory(blocks: list[Block], hashes: list[int]) -> bytes:
    """The directory of an uncompressed archive: a checksum entry per block."""
    entries = [F.CHECK_ENTRY.pack(off, length, h)
               for (_, _, length, off), h in zip(blocks, hashes)]
    return F.DIRECTORY_HEADER.pack(len(entries), 0, 0, 0) + b"".join(entries)


def hash_blocks(blocks: list[Block]) -> list[int]:
    """The XXH64 of each block (see ``plain_layout``): a C call each, GIL released."""
    out: list[int] = []
    for piece, start, length, _ in blocks:
        with ffi.from_buffer("uint8_t[]", piece) as p:
            out.append(lib.bfa_xxh64(p + start, length, 0))
    return out


# -- compressed: chunked LZ4 payloads ----------------------------------------------

def _frame_compressed(pieces: list[Piece], nodes_end: int, root: bytes, payloads: list[Any],
                      chunk_size: int, threads: int) -> list[Piece]:
    from ._lz4 import COMPRESS

    # payload 0, the nodes image after the header, is read where the writer
    # left it, in its pieces: a chunk that straddles two is gathered in C
    sources = [_parts(pieces, F.HEADER_SIZE)] + [[memoryview(p).cast("B")] for p in payloads]
    sizes = [sum(p.nbytes for p in parts) for parts in sources]
    chunk_sizes = [payload_chunk_size(index, size, chunk_size) for index, size in enumerate(sizes)]
    if sum(sizes) < F.PARALLEL_MIN:
        threads = 1
    held: list[CData] = []
    try:
        tasks: list[_Task] = []
        for index, parts in enumerate(sources):
            size, cs = sizes[index], chunk_sizes[index]
            bufs = [ffi.from_buffer("uint8_t[]", p) for p in parts]
            held += bufs
            ptrs = ffi.new("uint8_t *[]", bufs)
            lens = ffi.new("uint64_t[]", [p.nbytes for p in parts])
            starts = list(accumulate((p.nbytes for p in parts), initial=0))[:-1]
            nchunks = -(-size // cs)
            per_task = max(1, -(-nchunks // (4 * threads)))
            for a in range(0, nchunks, per_task):
                b = min(nchunks, a + per_task)
                # the parts that hold chunks [a, b)
                p0 = bisect_right(starts, a * cs) - 1
                p1 = bisect_left(starts, min(b * cs, size))
                tasks.append(_Task(index, size, cs, a, b, ptrs, lens, p0, p1, starts[p0]))
        results = run_parallel(lambda t: _compress(t, COMPRESS), tasks, threads)
    finally:
        for buf in held:
            ffi.release(buf)
    return _assemble(sources, sizes, chunk_sizes, tasks, results, root, nodes_end)


def _parts(pieces: list[Piece], skip: int) -> list[memoryview]:
    """The bytes of ``pieces`` after the first ``skip``, as non-empty byte views."""
    parts = []
    for piece in pieces:
        view = memoryview(piece).cast("B")
        if skip >= view.nbytes:
            skip -= view.nbytes
            continue
        parts.append(view[skip:])
        skip = 0
    return parts


class _Task(NamedTuple):
    """Chunks [a, b) of payload number ``payload`` (``size`` bytes in ``cs`` chunks),
    whose bytes are the parts ``p0 .. p1 - 1`` of ``ptrs`` / ``lens`` (part
    ``p0`` starts at byte ``first_off`` of the payload)."""
    payload: int
    size: int
    cs: int
    a: int
    b: int
    ptrs: CData
    lens: CData
    p0: int
    p1: int
    first_off: int


def _compress(task: _Task, compress: CData) -> _Encoded:
    """Compress one task's chunks: one C call, GIL released."""
    n = task.b - task.a
    room = n * lib.bfa_lz4_bound(task.cs)
    # not zero-filled: the pages are first touched by the C call, on this
    # thread with the GIL released (a bytearray would memset them under the GIL)
    # (only the bytes the C call writes are ever handed on)
    d = alloc_uninit("uint8_t[]", room)
    lib.bfa_advise_huge(d, room)  # 2 MiB pages: far fewer page faults
    nparts = task.p1 - task.p0
    scratch = alloc_uninit("uint8_t[]", task.cs) if nparts > 1 else ffi.NULL
    sizes = ffi.new("uint64_t[]", n)
    hashes = ffi.new("uint64_t[]", n)
    codecs = ffi.new("uint32_t[]", n)
    used = ffi.new("uint64_t *")
    check_internal(lib.bfa_chunks_encode(task.ptrs + task.p0, task.lens + task.p0, nparts,
                                         task.first_off, task.size, task.cs, task.a, task.b,
                                         d, room, scratch, task.cs if nparts > 1 else 0,
                                         compress, 1, sizes, hashes, codecs, used),
                   "chunk encoding")
    return d, int(used[0]), sizes, hashes, codecs


def _assemble(sources: list[list[memoryview]], sizes: list[int], chunk_sizes: list[int],
              tasks: list[_Task], results: list[_Encoded], root: bytes, nodes_end: int
              ) -> list[Piece]:
    """The compressed archive's pieces: header, each payload's chunks (its
    tasks' in order) aligned to ARRAY_ALIGN, the directory."""
    counts = [0] * len(sources)
    for t in tasks:
        counts[t.payload] += t.b - t.a
    copy_from = tail_copy_start(sizes, chunk_sizes, tasks, results)
    if copy_from is not None:  # one more payload: payload 0's last chunks again
        sizes = sizes + [sizes[0] - copy_from * chunk_sizes[0]]
        chunk_sizes = chunk_sizes + [chunk_sizes[0]]
        counts.append(counts[0] - copy_from)
    nchunks = sum(counts)
    chunks_at = entries_at = F.DIRECTORY_HEADER.size + len(sizes) * F.PAYLOAD_ENTRY.size
    directory = bytearray(entries_at + nchunks * F.CHUNK_ENTRY.size)
    F.DIRECTORY_HEADER.pack_into(directory, 0, 0, len(sizes), nchunks, 0)
    first = 0
    for index, size in enumerate(sizes):
        F.PAYLOAD_ENTRY.pack_into(directory, F.DIRECTORY_HEADER.size + index * F.PAYLOAD_ENTRY.size,
                                  size, chunk_sizes[index], first, counts[index], 0)
        first += counts[index]
    out: list[Piece] = [b""]  # header, filled last
    at = F.HEADER_SIZE
    end = ffi.new("uint64_t *")
    current = -1
    with ffi.from_buffer("uint8_t[]", directory) as dirp:
        for task, (dst, used, csizes, hashes, codecs) in zip(tasks, results):
            if task.payload != current:  # a payload starts at an ARRAY_ALIGN boundary
                current = task.payload
                pad = -at % F.ARRAY_ALIGN
                if pad:
                    out.append(bytes(pad))
                    at += pad
            n = task.b - task.a
            check_internal(lib.bfa_chunk_entries(dirp + entries_at, len(directory) - entries_at,
                                                 at, csizes, hashes, codecs, n, end),
                           "chunk entries")
            entries_at += n * F.CHUNK_ENTRY.size
            packed = memoryview(ffi.buffer(dst, used))
            if used == end[0] - at:  # every chunk in dst: one piece
                if used:
                    out.append(packed)
            else:  # raw chunks left in their parts
                out += _pieces_of(task, sources[task.payload], packed, csizes, codecs)
            at = int(end[0])
    if copy_from is not None:
        pad = -at % F.ARRAY_ALIGN
        if pad:
            out.append(bytes(pad))
            at += pad
        start = at
        first_off = F.CHUNK_ENTRY.unpack_from(directory, chunks_at + copy_from * F.CHUNK_ENTRY.size)[0]
        for k in range(copy_from, counts[0]):
            _, stored, xxh, codec, _ = F.CHUNK_ENTRY.unpack_from(
                directory, chunks_at + k * F.CHUNK_ENTRY.size)
            F.CHUNK_ENTRY.pack_into(directory, entries_at, at, stored, xxh, codec, 0)
            entries_at += F.CHUNK_ENTRY.size
            at += stored
        # payload 0's chunks lie back to back: their bytes are one run of the file
        out += _file_range(out, first_off, at - start)
    pad = -at % F.NODE_ALIGN
    if pad:
        out.append(bytes(pad))
        at += pad
    out.append(directory)
    out[0] = _header(F.F_COMPRESSED | F.F_CHECKSUMS, at + len(directory), root, nodes_end, at,
                     F.VERSION_MINOR if copy_from is None else F.VERSION_MINOR_TAIL_COPY)
    return out


def tail_copy_start(sizes: list[int], chunk_sizes: list[int], tasks: list[_Task],
                    results: list[_Encoded]) -> int | None:
    """The first chunk of payload 0 that the archive's tail copy holds, or
    None when it gets none: the chunks holding the last TAIL_COPY_OF bytes of
    payload 0, when the other payloads store more than TAIL_COPY_AFTER bytes
    and those chunks at most format.TAIL_COPY_MAX (docs/format/layout.md, "Tail copy")."""
    if len(sizes) < 2 or not sizes[0]:
        return None
    size, cs = sizes[0], chunk_sizes[0]
    start = (size - min(size, TAIL_COPY_OF)) // cs
    after = copied = 0
    for task, (_, _, stored, _, _) in zip(tasks, results):
        if task.payload:
            if after <= TAIL_COPY_AFTER:
                after += sum(stored[0:task.b - task.a])
        elif task.b > start:
            copied += sum(stored[max(task.a, start) - task.a:task.b - task.a])
    return start if after > TAIL_COPY_AFTER and copied <= F.TAIL_COPY_MAX else None


def _file_range(out: list[Piece], off: int, n: int) -> list[Piece]:
    """Bytes [off, off + n) of the file whose pieces so far are ``out`` (the
    first, the header, not yet filled in: no range asked for starts in it)."""
    parts: list[Piece] = []
    for view in _parts(out[1:], off - F.HEADER_SIZE):
        if not n:
            break
        parts.append(view[:n])
        n -= len(parts[-1])
    if n:
        raise InternalError("the tail copy's chunks are not in the file")
    return parts


def _pieces_of(task: _Task, parts: list[memoryview], packed: memoryview, sizes: CData,
               codecs: CData) -> list[Piece]:
    """A task's chunks in order: runs of packed ones as slices of ``packed``,
    a raw chunk that lies whole in one part as a slice of it (as C left it)."""
    starts = list(accumulate((p.nbytes for p in parts), initial=0))
    out: list[Piece] = []
    run = taken = 0  # the packed run not yet handed on: [taken, taken + run)
    for i in range(task.b - task.a):
        size = int(sizes[i])
        if codecs[i] == F.CODEC_RAW:
            s = (task.a + i) * task.cs
            p = bisect_right(starts, s) - 1
            if s + size <= starts[p + 1]:
                if run:
                    out.append(packed[taken:taken + run])
                    taken += run
                    run = 0
                out.append(parts[p][s - starts[p]:s - starts[p] + size])
                continue
        run += size
    if run:
        out.append(packed[taken:taken + run])
    return out


def set_minor(first: Piece, minor: int) -> bytearray:
    """The first piece of a framed archive (it starts with the header) with
    version_minor raised to ``minor`` (kept if already higher) and the
    header checksum recomputed: the writer marks content that uses a form of
    a later minor version (docs/format/layout.md, "Header"). A bytearray is
    changed in place."""
    head = first if isinstance(first, bytearray) else bytearray(first)
    minor = max(minor, int.from_bytes(head[10:12], "little"))
    head[10:12] = minor.to_bytes(2, "little")
    head[56:64] = F.U64.pack(lib.bfa_xxh64(bytes(head[:56]), 56, 0))
    return head
