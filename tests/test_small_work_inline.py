"""Byte work too small to pay for a hand-off to threads runs on the calling
thread: a compressed read under ``F.PARALLEL_DECODE_MIN`` decoded bytes, a
``verify`` of entries spanning under ``F.PARALLEL_MIN`` bytes. Larger work
still goes to up to ``threads`` threads, and the checks are the same."""
from __future__ import annotations

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import format as F
from bfast_archive import payloads


@pytest.fixture
def thread_counts(monkeypatch):
    """The ``threads`` each run_parallel call of the payload layer was given."""
    seen: list[int] = []
    real = payloads.run_parallel

    def spy(fn, tasks, threads):
        seen.append(threads)
        return real(fn, tasks, threads)

    monkeypatch.setattr(payloads, "run_parallel", spy)
    return seen


def _archive(nbytes: int, compression: str | None, chunk_size: int = 4096) -> tuple[bytes, np.ndarray]:
    a = (np.arange(nbytes // 4, dtype=np.int32) % 97).astype(np.int32)
    return bfa.dumps({"a": a}, compression=compression, chunk_size=chunk_size), a


def test_a_small_compressed_read_decodes_on_the_calling_thread(thread_counts):
    blob, a = _archive(64 << 10, "lz4")  # 16 chunks
    with bfa.Archive.from_buffer(blob, threads=2) as arch:
        assert np.array_equal(arch["a"], a)
    assert thread_counts and set(thread_counts) == {1}


def test_a_large_compressed_read_decodes_on_threads(thread_counts):
    blob, a = _archive(F.PARALLEL_DECODE_MIN * 2, "lz4", chunk_size=64 << 10)
    with bfa.Archive.from_buffer(blob, threads=2) as arch:
        assert np.array_equal(arch["a"], a)
    assert 2 in thread_counts


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_a_small_verify_hashes_on_the_calling_thread_and_still_finds_damage(thread_counts, compression):
    blob, _ = _archive(1 << 20, compression)
    with bfa.Archive.from_buffer(blob, threads=2) as arch:
        assert arch.verify() > 0
    assert thread_counts and set(thread_counts) == {1}
    damaged = bytearray(blob)
    damaged[100] ^= 0xFF  # in the first payload's bytes (compressed: its nodes, checked at open)
    with pytest.raises(bfa.ArchiveError, match="checksum"):
        with bfa.Archive.from_buffer(bytes(damaged), threads=2) as arch:
            arch.verify()


def test_a_large_verify_hashes_on_threads(thread_counts):
    blob, _ = _archive(F.PARALLEL_MIN + (1 << 20), None)
    with bfa.Archive.from_buffer(blob, threads=2) as arch:
        assert arch.verify() >= F.PARALLEL_MIN
    assert thread_counts == [2]
