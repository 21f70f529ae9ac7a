"""The one ``bytes`` that ``dumps`` returns, joined from the archive's
pieces by threads.

``b"".join`` copies on the calling thread, into memory touched for the first
time (a page fault per 4 KiB): for a few hundred MiB that costs more than the
compression that produced the pieces. Here the result is allocated once at
its final size and filled from the pool's threads, each copy one C call with
the GIL released, after a hint that asks Linux for 2 MiB pages on it.

The result is a ``bytes`` object filled after creation
(``_pytable.new_bytes``): it is written only while its creator holds its
sole reference, before it is hashed or seen by anyone else.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._native import CData, check_internal, ffi, lib
from ._parallel import run_parallel, split_range
from ._pytable import new_bytes

if TYPE_CHECKING:
    from typing import TypeAlias

    Piece: TypeAlias = bytes | bytearray | memoryview
    _Span: TypeAlias = tuple[Piece, int, int, int]

# Below this size b"".join is as fast: whether the memory is fresh (a page
# fault per 4 KiB, which the threads here share) or reused from glibc's heap
# depends on what the process freed before; for a few MiB it costs little.
JOIN_DIRECT_MAX = 4 << 20
SPAN = 4 << 20  # copies are cut into spans of at most this many bytes


def nbytes(piece: Piece) -> int:
    """Length in bytes of a piece (bytes, bytearray or memoryview)."""
    return piece.nbytes if isinstance(piece, memoryview) else len(piece)


def join_pieces(pieces: list[Piece], threads: int) -> bytes:
    """``b"".join(pieces)``, copied by up to ``threads`` threads for large
    results. Cost: one copy of every byte; no other allocation."""
    sizes = [nbytes(p) for p in pieces]
    total = sum(sizes)
    if total < JOIN_DIRECT_MAX:
        return b"".join(pieces)
    spans: list[_Span] = []  # (piece, start within piece, length, offset in the result)
    at = 0
    for piece, size in zip(pieces, sizes):
        for s in range(0, size, SPAN):
            spans.append((piece, s, min(SPAN, size - s), at + s))
        at += size
    out = new_bytes(total)  # pages are touched first by the copies below
    with ffi.from_buffer("uint8_t[]", out) as dst:
        lib.bfa_advise_huge(dst, total)
        groups = [spans[a:b] for a, b in split_range(len(spans), 2 * threads)]
        run_parallel(lambda group: _copy_spans(dst, total, group), groups, threads)
    return out


def _copy_spans(dst: CData, total: int, spans: list[_Span]) -> None:
    for piece, start, length, at in spans:
        with ffi.from_buffer("uint8_t[]", piece) as src:
            check_internal(lib.bfa_copy(dst, total, at, src + start, length), "piece copy")
