"""The tail copy of a compressed archive (docs/format/layout.md, "Tail copy",
format 1.2): payload 0's last chunks stored again, as the last payload, just
before the directory, so that a reader by range finds the root in the tail it
fetches at open. Readers that do not know it ignore it (no node names it);
the ranged reader takes those chunks from it only when it is an exact copy,
checked against payload 0's chunk entries, and every byte read from it is
checked against their XXH64."""
import struct

import fsspec
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import bfast_archive as bfa
from bfast_archive import format as F
from bfast_archive._ranged import open_ranged
from bfast_archive.archive import Archive
from bfast_archive.framing import TAIL_COPY_AFTER, TAIL_COPY_OF, _Task, tail_copy_start

_names = iter(range(10**9))
NOISE = np.random.default_rng(3).integers(0, 256, 200_000, dtype=np.uint8)  # stored raw


def _memory_url(data: bytes) -> str:
    url = f"memory://tail-copy/{next(_names)}.bfa"
    with fsspec.open(url, "wb") as f:
        f.write(data)
    return url


def _layout(data: bytes) -> tuple:
    """(payload entries, chunk entries, sections_off) of a compressed archive."""
    sections = struct.unpack_from("<Q", data, 48)[0]
    _, n_payloads, n_chunks, _ = F.DIRECTORY_HEADER.unpack_from(data, sections)
    at = sections + F.DIRECTORY_HEADER.size
    payloads = [F.PAYLOAD_ENTRY.unpack_from(data, at + i * 40)[:4] for i in range(n_payloads)]
    at += n_payloads * 40
    chunks = [F.CHUNK_ENTRY.unpack_from(data, at + i * 32)[:4] for i in range(n_chunks)]
    return payloads, chunks, sections


def _users(n: int) -> list:
    return [{"id": i, "name": f"user-{i:06d}", "score": i / 4} for i in range(n)]


def test_the_last_chunks_of_the_nodes_are_stored_again_before_the_directory():
    value = {"users": _users(30_000), "noise": NOISE}
    data = bfa.dumps(value, compression="lz4", chunk_size=1 << 16)
    payloads, chunks, sections = _layout(data)
    (size0, cs0, _, n0), (size, cs, first, n) = payloads[0], payloads[-1]
    assert len(payloads) == 3 and cs == cs0
    assert size == size0 - (n0 - n) * cs0 >= min(size0, TAIL_COPY_OF)  # the last 16 KiB at least
    assert size - cs0 < TAIL_COPY_OF  # and no more chunks than that needs
    for j in range(n):  # the same stored bytes: length, XXH64, codec
        copy, orig = chunks[first + j], chunks[n0 - n + j]
        assert copy[1:] == orig[1:]
        assert data[copy[0]:copy[0] + copy[1]] == data[orig[0]:orig[0] + orig[1]]
    end = chunks[-1][0] + chunks[-1][1]
    assert chunks[first][0] % 64 == 0 and sections - end < 8  # right before the directory
    assert struct.unpack_from("<H", data, 10)[0] == F.VERSION_MINOR_TAIL_COPY
    with bfa.Archive.from_buffer(data, verify=True) as arch:
        assert arch.to_python()["users"] == value["users"]
        assert np.array_equal(arch["noise"], NOISE)


@pytest.mark.parametrize("value", [
    {"users": _users(3_000)},  # no payload but the nodes
    {"users": _users(3_000), "small": NOISE[:65_536]},  # the others store at most 64 KiB
    {"users": _users(3_000), "zeros": np.zeros(1 << 20, np.uint8)},  # ... once compressed
], ids=["nodes-only", "small-payload", "compressible-payload"])
def test_archives_whose_nodes_are_already_near_the_end_get_no_tail_copy(value):
    data = bfa.dumps(value, compression="lz4")
    payloads, _, _ = _layout(data)
    assert len(payloads) == len(value)  # payload 0, then one per external value
    assert struct.unpack_from("<H", data, 10)[0] == 0  # still a 1.0 archive, byte for byte


def test_frames_and_1_1_forms_keep_the_higher_minor_version():
    value = {"t": np.zeros(2, np.longlong), "noise": NOISE, "users": _users(2_000)}  # (q: 1.1)
    data = bfa.dumps(value, compression="lz4")
    assert struct.unpack_from("<H", data, 10)[0] == 2
    assert _layout(data)[0][-1][1] == _layout(data)[0][0][1]


def _task(payload: int, a: int, b: int) -> _Task:
    return _Task(payload, 0, 0, a, b, None, None, 0, 0, 0)


@pytest.mark.parametrize("size0, cs0, stored0, after, expect", [
    (100_000, 32_768, 20_000, TAIL_COPY_AFTER + 1, 2),      # last chunk 1,696 B: and the one before
    (98_304 + 20_000, 32_768, 20_000, TAIL_COPY_AFTER + 1, 3),  # last chunk holds 16 KiB alone
    (100_000, 32_768, 20_000, TAIL_COPY_AFTER, None),       # the others store too little
    (100_000, 32_768, 40_000, TAIL_COPY_AFTER + 1, None),   # the copy would take over 64 KiB
    (10_000, 32_768, 9_000, TAIL_COPY_AFTER + 1, 0),        # nodes in one chunk: all of them
    (100_000, 4_096, 1_000, TAIL_COPY_AFTER + 1, 20),       # small chunks: the last 16 KiB
])
def test_which_chunks_the_tail_copy_holds(size0, cs0, stored0, after, expect):
    n0 = -(-size0 // cs0)
    tasks = [_task(0, 0, n0 // 2), _task(0, n0 // 2, n0), _task(1, 0, 2)]
    results = [(None, 0, [stored0] * (n0 // 2), None, None),
               (None, 0, [stored0] * (n0 - n0 // 2), None, None),
               (None, 0, [after // 2, after - after // 2], None, None)]
    start = tail_copy_start([size0, 1 << 20], [cs0, 1 << 20], tasks, results)
    assert start == expect
    if start is not None:
        assert (n0 - start) * stored0 <= F.TAIL_COPY_MAX
        assert size0 - start * cs0 >= min(size0, TAIL_COPY_OF)


def test_a_copy_that_does_not_match_payload_0_is_not_used():
    # the copy's last chunk entry names other stored bytes (its XXH64 changed):
    # the ranged reader reads payload 0's own chunks and gives the right values
    value = {"users": _users(20_000), "noise": NOISE}
    data = bytearray(bfa.dumps(value, compression="lz4"))
    payloads, chunks, sections = _layout(bytes(data))
    last = len(chunks) - 1
    at = sections + 32 + 40 * len(payloads) + 32 * last + 16
    struct.pack_into("<Q", data, at, struct.unpack_from("<Q", data, at)[0] ^ 1)
    with Archive._open_source(open_ranged(_memory_url(bytes(data)), poison=0xA5)) as arch:
        assert arch._snap.layer._copy is None
        assert arch["users"][19_999]["name"] == "user-019999"
        with pytest.raises(bfa.ArchiveError, match="checksum mismatch in chunk"):
            arch.verify()  # the copy is still a payload: its chunks are checked


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 12_000), noise=st.integers(0, 150_000), chunk=st.sampled_from([4096, 1 << 16, 1 << 20]))
def test_ranged_reads_through_the_tail_copy_give_exactly_what_was_dumped(rows, noise, chunk):
    value = {"users": _users(rows), "noise": NOISE[:noise], "meta": {"rows": rows}}
    data = bfa.dumps(value, compression="lz4", chunk_size=chunk)
    has_copy = struct.unpack_from("<H", data, 10)[0] == 2
    with Archive._open_source(open_ranged(_memory_url(data), poison=0xA5)) as arch:
        assert (arch._snap.layer._copy is not None) == has_copy
        assert arch["meta"]["rows"] == rows
        assert arch["users"][rows - 1]["name"] == f"user-{rows - 1:06d}"
        assert arch["users"][rows // 2]["score"] == (rows // 2) / 4
        got = arch.to_python()
    assert got["users"] == value["users"] and np.array_equal(got["noise"], value["noise"])


def _copy_span(data: bytes) -> tuple[int, int]:
    payloads, chunks, _ = _layout(data)
    first, n = payloads[-1][2], payloads[-1][3]
    lo = chunks[first][0]
    return lo, chunks[first + n - 1][0] + chunks[first + n - 1][1]


DAMAGED = bfa.dumps({"users": _users(4_000), "noise": NOISE}, compression="lz4", chunk_size=4096)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_damage_to_the_tail_copy_is_reported_by_a_ranged_read_never_returned(data):
    lo, hi = _copy_span(DAMAGED)
    assert hi - lo > 1000
    pos = data.draw(st.integers(lo, hi - 1))
    bad = bytearray(DAMAGED)
    bad[pos] ^= 1 << data.draw(st.integers(0, 7))
    want = {"users": _users(4_000), "noise": NOISE}
    try:
        with Archive._open_source(open_ranged(_memory_url(bytes(bad)), poison=0xA5)) as arch:
            got = arch.to_python()
    except bfa.ArchiveError as exc:
        assert "checksum mismatch" in str(exc) and "tail copy" in str(exc)
    else:  # (a copied chunk the reads never needed)
        assert got["users"] == want["users"] and np.array_equal(got["noise"], NOISE)
    with bfa.Archive.from_buffer(bytes(bad)) as local:  # a local reader never reads the copy
        assert local["users"][3_999]["name"] == "user-003999"


def test_damage_to_a_copied_chunk_of_the_nodes_is_left_to_verify_by_a_ranged_reader():
    # the ranged reader takes the chunk from the copy (its checksum passes), so
    # it gives the values as dumped; verify() reads every chunk and reports the
    # damaged original, as a local open does at once
    payloads, chunks, _ = _layout(DAMAGED)
    n0, n = payloads[0][3], payloads[-1][3]
    off, length = chunks[n0 - 1][:2]  # payload 0's last chunk: one of the copied ones
    assert n >= 1
    bad = bytearray(DAMAGED)
    bad[off + length // 2] ^= 0x10
    with pytest.raises(bfa.ArchiveError, match=f"checksum mismatch in chunk {n0 - 1} of payload 0"):
        bfa.Archive.from_buffer(bytes(bad))
    with Archive._open_source(open_ranged(_memory_url(bytes(bad)), poison=0xA5)) as arch:
        got = arch.to_python()
        assert got["users"] == _users(4_000) and np.array_equal(got["noise"], NOISE)
        with pytest.raises(bfa.ArchiveError, match=f"checksum mismatch in chunk {n0 - 1} "):
            arch.verify()


def test_dump_to_a_file_writes_the_same_bytes_as_dumps_whatever_the_threads(tmp_path):
    value = {"t": np.zeros(2, np.longlong), "noise": NOISE, "users": _users(5_000)}
    one = bfa.dumps(value, compression="lz4", chunk_size=1 << 16, threads=1)
    assert struct.unpack_from("<H", one, 10)[0] == 2 and len(_layout(one)[0]) == 3
    assert bfa.dumps(value, compression="lz4", chunk_size=1 << 16, threads=2) == one
    bfa.dump(value, tmp_path / "a.bfa", compression="lz4", chunk_size=1 << 16, threads=2)
    assert (tmp_path / "a.bfa").read_bytes() == one
