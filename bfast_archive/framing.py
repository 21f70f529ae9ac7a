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
from typing import TYPE_CHECKING, Any

from . import format as F
from ._native import check_internal, ffi, lib
from ._output import nbytes
from ._parallel import run_parallel, split_range

if TYPE_CHECKING:
    from typing import TypeAlias

    from ._native import CData
    from ._output import Piece

    # a checksummed block: (piece, start within piece, length, archive offset)
    Block: TypeAlias = tuple[Piece, int, int, int]
    # a compression task: (payload index, its bytes, first chunk, end chunk)
    _Task: TypeAlias = tuple[int, memoryview, int, int]
    # its result: (compressed chunks at a stride, and per chunk its size, XXH64 and codec)
    _Encoded: TypeAlias = tuple[memoryview, list[int], list[int], list[int]]

COMPRESSIONS = (None, "lz4")
PARALLEL_MIN = 8 << 20  # below this many bytes, byte work runs on the calling thread
# payload 0 (the nodes) is cut into small chunks, so that reading one value of
# a remote archive fetches and decodes a few small chunks of nodes, not a few
# ``chunk_size`` ones; at most NODE_CHUNKS of them, so that the directory still
# comes with the tail fetched at open (docs/format/canonical-form.md, "Compressed")
NODE_CHUNK = 32 << 10
NODE_CHUNKS = 1024


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


def _header(flags: int, file_size: int, root: bytes, nodes_end: int, sections_off: int) -> bytes:
    tag_word, payload = F.SLOT.unpack(root)
    head = bytearray(F.HEADER.pack(F.MAGIC, F.VERSION_MAJOR, F.VERSION_MINOR, flags, file_size,
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
    if nodes_end < PARALLEL_MIN:
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

    structure = b"".join(pieces)[F.HEADER_SIZE:]
    sources = [memoryview(structure)] + [memoryview(p).cast("B") for p in payloads]
    chunk_sizes = [payload_chunk_size(index, src.nbytes, chunk_size)
                   for index, src in enumerate(sources)]
    if sum(src.nbytes for src in sources) < PARALLEL_MIN:
        threads = 1
    tasks: list[_Task] = []
    for index, src in enumerate(sources):
        nchunks = -(-src.nbytes // chunk_sizes[index])
        per_task = max(1, -(-nchunks // (4 * threads)))
        for a in range(0, nchunks, per_task):
            tasks.append((index, src, a, min(nchunks, a + per_task)))
    results = run_parallel(lambda t: _compress(t, chunk_sizes[t[0]], COMPRESS), tasks, threads)

    out: list[Piece] = [b""]  # header, filled last
    at = F.HEADER_SIZE
    payload_entries: list[bytes] = []
    chunk_entries: list[bytes] = []
    by_payload: dict[int, list[tuple[memoryview, int, _Encoded]]] = {}
    for (index, src, a, b), result in zip(tasks, results):
        by_payload.setdefault(index, []).append((src, a, result))
    for index, src in enumerate(sources):
        cs = chunk_sizes[index]
        stride = lib.bfa_lz4_bound(cs)
        pad = -at % F.ARRAY_ALIGN
        if pad:
            out.append(bytes(pad))
            at += pad
        first = len(chunk_entries)
        for src_view, a, (dst, sizes, hashes, codecs) in by_payload.get(index, []):
            for i, (size, h, codec) in enumerate(zip(sizes, hashes, codecs)):
                k = a + i
                if codec == F.CODEC_RAW:
                    out.append(src_view[k * cs:k * cs + size])
                else:
                    out.append(dst[i * stride:i * stride + size])
                chunk_entries.append(F.CHUNK_ENTRY.pack(at, size, h, codec, 0))
                at += size
        payload_entries.append(F.PAYLOAD_ENTRY.pack(src.nbytes, cs, first,
                                                    len(chunk_entries) - first, 0))
    pad = -at % F.NODE_ALIGN
    if pad:
        out.append(bytes(pad))
        at += pad
    directory = (F.DIRECTORY_HEADER.pack(0, len(payload_entries), len(chunk_entries), 0)
                 + b"".join(payload_entries) + b"".join(chunk_entries))
    out.append(directory)
    out[0] = _header(F.F_COMPRESSED | F.F_CHECKSUMS, at + len(directory), root, nodes_end, at)
    return out


_alloc_uninit = ffi.new_allocator(should_clear_after_alloc=False)


def _compress(task: _Task, chunk_size: int, compress: CData) -> _Encoded:
    """Compress chunks [a, b) of one payload cut in ``chunk_size`` pieces:
    one C call, GIL released; the results lie ``bfa_lz4_bound(chunk_size)``
    bytes apart."""
    _, src, a, b = task
    n = b - a
    stride = lib.bfa_lz4_bound(chunk_size)
    # not zero-filled: the pages are first touched by the C call, on this
    # thread with the GIL released (a bytearray would memset them under the GIL)
    # (only the bytes the C call writes are ever handed on)
    d = _alloc_uninit("uint8_t[]", n * stride)
    lib.bfa_advise_huge(d, n * stride)  # 2 MiB pages: far fewer page faults
    sizes = ffi.new("uint64_t[]", n)
    hashes = ffi.new("uint64_t[]", n)
    codecs = ffi.new("uint32_t[]", n)
    with ffi.from_buffer("uint8_t[]", src) as s:
        check_internal(lib.bfa_chunks_encode(s, src.nbytes, chunk_size, a, b, d, stride,
                                             compress, 1, sizes, hashes, codecs),
                       "chunk encoding")
    return memoryview(ffi.buffer(d)), list(sizes), list(hashes), list(codecs)


def set_minor(first: Piece, minor: int) -> bytearray:
    """The first piece of a framed archive (it starts with the header) with
    version_minor set to ``minor`` and the header checksum recomputed: the
    writer marks content that uses a form of a later minor version
    (docs/format/layout.md, "Header"). A bytearray is changed in place."""
    head = first if isinstance(first, bytearray) else bytearray(first)
    head[10:12] = minor.to_bytes(2, "little")
    head[56:64] = F.U64.pack(lib.bfa_xxh64(bytes(head[:56]), 56, 0))
    return head
