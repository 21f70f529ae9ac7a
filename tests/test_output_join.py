"""Joining the archive's pieces into the ``bytes`` that ``dumps`` returns
(bfast_archive/_output.py): parallel copies into one preallocated result."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bfast_archive as bfa
from bfast_archive import _native, _output, _pytable
from bfast_archive._bfa_core import ffi, lib


@pytest.fixture
def always_copy(monkeypatch):
    """Every size takes the copying path, cut into small spans."""
    monkeypatch.setattr(_output, "JOIN_DIRECT_MAX", 0)
    monkeypatch.setattr(_output, "SPAN", 4096)


def _piece(kind: str, data: bytes):
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    # a 2-D float array's memory, as the writer hands over array payloads
    usable = len(data) - len(data) % 8
    return memoryview(np.frombuffer(data[:usable], np.float32).reshape(-1, 2)) if usable else b""


pieces_st = st.lists(st.tuples(st.sampled_from(["bytes", "bytearray", "memoryview", "array"]),
                               st.binary(max_size=20_000)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(pieces=pieces_st, threads=st.integers(1, 4))
def test_join_pieces_equals_bytes_join(pieces, threads):
    saved = _output.JOIN_DIRECT_MAX, _output.SPAN
    _output.JOIN_DIRECT_MAX, _output.SPAN = 0, 4096  # (a fixture would not reset per example)
    try:
        parts = [_piece(kind, data) for kind, data in pieces]
        got = _output.join_pieces(parts, threads)
    finally:
        _output.JOIN_DIRECT_MAX, _output.SPAN = saved
    expected = b"".join(parts)
    assert type(got) is bytes
    assert got == expected
    assert hash(got) == hash(expected)


def test_each_result_is_a_new_object(always_copy):
    a = _output.join_pieces([b"x" * 5000], 2)
    b = _output.join_pieces([b"x" * 5000], 2)
    assert a == b and a is not b


@pytest.mark.parametrize("through_c_api", [True, False])
def test_new_bytes_gives_a_fresh_object_of_the_size(through_c_api, monkeypatch):
    if not through_c_api:  # as without ctypes: bytes(n)
        monkeypatch.setitem(_native._FUNCS, "PyBytes_FromStringAndSize", False)
    for n in (0, 1, 2, 100, 5 << 20):
        a, b = _pytable.new_bytes(n), _pytable.new_bytes(n)
        assert type(a) is bytes and len(a) == n and len(b) == n
        if n >= 2:
            assert a is not b
            with ffi.from_buffer("uint8_t[]", a) as p:
                lib.bfa_copy(p, n, n - 2, b"xy", 2)
            assert a.endswith(b"xy") and hash(a) == hash(bytes(bytearray(a)))


def test_copy_refuses_to_write_past_the_buffer():
    dst = ffi.new("uint8_t[]", 16)
    src = b"abcdefgh"
    assert lib.bfa_copy(dst, 16, 8, src, 8) == lib.BFA_OK
    assert bytes(ffi.buffer(dst))[8:] == src
    assert lib.bfa_copy(dst, 16, 9, src, 8) == lib.BFA_E_BOUNDS
    assert lib.bfa_copy(dst, 16, 17, src, 0) == lib.BFA_E_BOUNDS
    assert lib.bfa_copy(dst, 16, 2**64 - 1, src, 2) == lib.BFA_E_BOUNDS  # no wrap-around
    assert lib.bfa_copy(dst, 16, 0, ffi.NULL, 1) == lib.BFA_E_ARG


def test_huge_page_hint_accepts_any_range():
    buf = ffi.new("uint8_t[]", 5 << 20)
    for start, n in [(0, 5 << 20), (1, (5 << 20) - 1), (4095, 3 << 20), (0, 0), (7, 100)]:
        lib.bfa_advise_huge(buf + start, n)  # a hint only: never fails, never writes
    assert not any(bytes(ffi.buffer(buf)))
    lib.bfa_advise_huge(ffi.NULL, 1 << 30)


@pytest.mark.parametrize("compression", [None, "lz4"])
@pytest.mark.parametrize("threads", [1, 2])
def test_large_dumps_equal_the_file_dump_writes(tmp_path, compression, threads):
    # above JOIN_DIRECT_MAX: the real copying path, with its real span size
    rng = np.random.default_rng(7)
    obj = {"emb": rng.standard_normal((40 << 20) // 4, dtype=np.float32).reshape(-1, 32),
           "ids": np.arange(1 << 18, dtype=np.int64), "name": "big"}
    data = bfa.dumps(obj, compression=compression, threads=threads)
    assert len(data) > _output.JOIN_DIRECT_MAX or compression == "lz4"
    path = tmp_path / "big.bfa"
    bfa.dump(obj, path, compression=compression, threads=threads, fsync=False)
    assert data == path.read_bytes()
    back = bfa.loads(data)
    assert back["name"] == "big"
    np.testing.assert_array_equal(back["emb"], obj["emb"])
    np.testing.assert_array_equal(back["ids"], obj["ids"])
    with bfa.Archive.from_buffer(data) as arch:
        arch.verify()
