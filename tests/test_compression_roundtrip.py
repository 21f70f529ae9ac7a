"""Compressed archives (``compression="lz4"``): same values as uncompressed,
chunked random access, checksums, adaptive raw chunks, hostile sizes."""
import mmap
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import bfast_archive as bfa
from bfast_archive import format as F

CHUNK = 1 << 16


def _data():
    rng = np.random.default_rng(5)
    return {
        "meta": {"name": "run", "lr": 1e-3, "tags": ("a", "b")},
        "users": [{"id": i, "name": f"user-{i}", "score": i * 0.5, "ok": i % 2 == 0}
                  for i in range(2000)],
        "emb": rng.standard_normal((3000, 32)).astype(np.float32),   # incompressible
        "ids": np.arange(200_000, dtype=np.int64),                   # compressible
        "fortran": np.asfortranarray(np.arange(40_000, dtype=np.int32).reshape(200, 200)),
        "small": np.arange(7, dtype=np.uint8),
        "blob": b"xyz" * 50_000,
        "empty": np.zeros((0, 4)),
    }


def _equal(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape \
            and np.array_equal(a, b)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("threads", [1, 2, None])
def test_compressed_loads_equal_uncompressed(threads):
    data = _data()
    plain = bfa.loads(bfa.dumps(data))
    packed = bfa.dumps(data, compression="lz4", chunk_size=CHUNK, threads=threads)
    assert _equal(bfa.loads(packed), plain) and _equal(plain, data)
    assert len(packed) < len(bfa.dumps(data))


def test_output_does_not_depend_on_thread_count():
    data = _data()
    one = bfa.dumps(data, compression="lz4", chunk_size=CHUNK, threads=1)
    assert one == bfa.dumps(data, compression="lz4", chunk_size=CHUNK, threads=2)


def test_lazy_access_on_compressed_archive(tmp_path):
    data = _data()
    path = tmp_path / "c.bfa"
    bfa.dump(data, path, compression="lz4", chunk_size=CHUNK)
    with bfa.Archive.open(path) as arch:
        assert arch.compressed
        assert arch["meta"]["name"] == "run"
        assert arch["users"][1234]["name"] == "user-1234"
        ids = arch["ids"]
        assert np.array_equal(ids, data["ids"]) and not ids.flags.writeable
        again = arch["ids"]
        assert np.shares_memory(ids, again), "whole-array access decompresses once"
        assert np.array_equal(arch["fortran"], data["fortran"])
        assert arch["fortran"].flags.f_contiguous
        assert bytes(arch["blob"]) == data["blob"]


@pytest.mark.parametrize("index", [
    slice(10_000, 10_100), slice(None, 5), slice(-7, None), slice(5, 500, 37),
    slice(400, 3, -9), slice(3, 3), 0, -1, 65_537, (slice(2, 9), ), ])
@pytest.mark.parametrize("compression", [None, "lz4"])
def test_array_handle_slices_match_numpy(index, compression):
    data = {"ids": np.arange(200_000, dtype=np.int64).reshape(100_000, 2) * 3}
    arch = bfa.Archive.from_buffer(bfa.dumps(data, compression=compression, chunk_size=CHUNK))
    h = arch.array("ids")
    assert h.shape == (100_000, 2) and h.dtype == np.int64 and len(h) == 100_000
    expect = data["ids"][index]
    got = h[index]
    assert np.array_equal(got, expect) and np.asarray(got).shape == expect.shape
    assert np.array_equal(np.asarray(h), data["ids"])


def test_uncompressed_handle_slices_are_views():
    raw = bfa.dumps({"a": np.arange(100_000)})
    arch = bfa.Archive.from_buffer(raw)
    part = arch.array("a")[100:200]
    assert np.shares_memory(part, np.frombuffer(raw, np.uint8))


def _chunk_table(raw):
    head = F.HEADER.unpack_from(raw, 0)
    sections_off = head[8]
    n_checks, n_payloads, n_chunks, _ = F.DIRECTORY_HEADER.unpack_from(raw, sections_off)
    payloads_at = sections_off + 32 + 24 * n_checks
    chunks_at = payloads_at + F.PAYLOAD_ENTRY.size * n_payloads
    payloads = [F.PAYLOAD_ENTRY.unpack_from(raw, payloads_at + 40 * i) for i in range(n_payloads)]
    chunks = [F.CHUNK_ENTRY.unpack_from(raw, chunks_at + 32 * i) for i in range(n_chunks)]
    return payloads, chunks, chunks_at


def test_slice_decompresses_only_its_chunks():
    data = {"ids": np.arange(400_000, dtype=np.int64)}
    raw = bytearray(bfa.dumps(data, compression="lz4", chunk_size=CHUNK))
    payloads, chunks, _ = _chunk_table(raw)
    size, chunk_size, first, n, _ = payloads[1]
    last = chunks[first + n - 1]
    raw[last[0] + last[1] // 2] ^= 0xFF          # damage the array's last chunk
    arch = bfa.Archive.from_buffer(bytes(raw))
    assert np.array_equal(arch.array("ids")[10_000:10_100], data["ids"][10_000:10_100])
    with pytest.raises(bfa.ArchiveError, match=rf"checksum mismatch in chunk {first + n - 1}"):
        arch.array("ids")[-5:]
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch in chunk"):
        arch["ids"]
    with pytest.raises(bfa.ArchiveError, match=rf"chunk {first + n - 1}"):
        arch.verify()


def test_incompressible_payload_is_raw_and_zero_copy(tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, 1 << 20, dtype=np.uint8)
    path = tmp_path / "n.bfa"
    bfa.dump({"noise": noise}, path, compression="lz4", chunk_size=CHUNK)
    raw = path.read_bytes()
    payloads, chunks, _ = _chunk_table(raw)
    _, _, first, n, _ = payloads[1]
    assert all(c[3] == F.CODEC_RAW for c in chunks[first:first + n])
    with bfa.Archive.open(path) as arch:
        arr = arch["noise"]
        assert np.array_equal(arr, noise)
        mapped = arr.base.obj if isinstance(arr.base, memoryview) else None
        assert isinstance(mapped, mmap.mmap), "raw payload is read in place"


def test_chunks_whose_samples_do_not_compress_are_stored_without_trying_lz4(tmp_path):
    """The writer tries LZ4 on two 32 KiB samples of a chunk (its start and its
    middle) before the whole chunk: if neither saves 1/32, the chunk is raw
    (writing random data costs about what an uncompressed dump costs)."""
    size = 1 << 18  # one chunk of 256 KiB
    rng = np.random.default_rng(3)
    noisy_samples = np.zeros(size, np.uint8)  # random where the samples are, zeros elsewhere
    noisy_samples[:1 << 15] = rng.integers(0, 256, 1 << 15)
    noisy_samples[size // 2:size // 2 + (1 << 15)] = rng.integers(0, 256, 1 << 15)
    noisy_start = np.zeros(size, np.uint8)  # random start only: the middle sample compresses
    noisy_start[:1 << 15] = rng.integers(0, 256, 1 << 15)
    codecs = {}
    for name, arr in (("samples", noisy_samples), ("start", noisy_start)):
        raw = bfa.dumps({"a": arr}, compression="lz4", chunk_size=size)
        payloads, chunks, _ = _chunk_table(raw)
        _, _, first, n, _ = payloads[1]
        assert n == 1
        codecs[name] = chunks[first][3]
        assert np.array_equal(bfa.loads(raw)["a"], arr)
    assert codecs == {"samples": F.CODEC_RAW, "start": F.CODEC_LZ4}
    # a chunk smaller than four samples is always tried whole
    small = noisy_samples[:1 << 16].copy()
    small[1 << 15:] = 0
    payloads, chunks, _ = _chunk_table(bfa.dumps({"a": small}, compression="lz4",
                                                 chunk_size=1 << 16))
    assert chunks[payloads[1][2]][3] == F.CODEC_LZ4


def test_require_zero_copy():
    data = {"a": np.arange(100_000)}
    with pytest.raises(bfa.ArchiveError, match="archive is compressed"):
        bfa.Archive.from_buffer(bfa.dumps(data, compression="lz4"), require_zero_copy=True)
    arch = bfa.Archive.from_buffer(bfa.dumps(data), require_zero_copy=True)
    assert arch["a"][5] == 5


def test_verify_uncompressed_names_the_section(tmp_path):
    path = tmp_path / "u.bfa"
    bfa.dump({"a": np.arange(3_000_000), "b": "text"}, path)
    nodes_end = F.HEADER.unpack_from(path.read_bytes(), 0)[7]
    with bfa.Archive.open(path, verify=True) as arch:
        assert arch.verify() == nodes_end - 64     # every byte after the header is hashed
    raw = bytearray(path.read_bytes())
    raw[5_000_000] ^= 1
    path.write_bytes(raw)
    with pytest.raises(bfa.ArchiveError, match=r"checksum mismatch in section 1 \(bytes"):
        bfa.Archive.open(path, verify=True)
    with bfa.Archive.open(path) as arch:        # plain open does not read the payload
        assert arch["b"] == "text"


def test_decompression_bomb_is_refused():
    raw = bytearray(bfa.dumps({"z": np.zeros(1 << 20)}, compression="lz4", chunk_size=1 << 20))
    payloads, chunks, chunks_at = _chunk_table(raw)
    i = next(i for i, c in enumerate(chunks) if c[3] == F.CODEC_LZ4 and c[1] > 64)
    off, stored, h, codec, _ = chunks[i]
    # claim the chunk is tiny: raw size 1 MiB from a few bytes is beyond LZ4's 255:1
    struct.pack_into("<Q", raw, chunks_at + 32 * i + 8, 16)
    with pytest.raises(bfa.ArchiveError, match="limit|bomb|expand|LZ4|chunk|directory"):
        bfa.Archive.from_buffer(bytes(raw))


@pytest.mark.parametrize("kwargs", [dict(compression="zstd"), dict(chunk_size=100),
                                    dict(chunk_size=1 << 40), dict(threads=0)])
def test_bad_options_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        bfa.dumps({"a": 1}, **kwargs)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(max_size=300),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=6),
    max_leaves=30)


@settings(max_examples=60)
@given(values, st.sampled_from([4096, 1 << 16]))
def test_compressed_roundtrip_property(value, chunk_size):
    plain = bfa.loads(bfa.dumps(value))
    assert bfa.loads(bfa.dumps(value, compression="lz4", chunk_size=chunk_size)) == plain


@pytest.mark.parametrize("threads", [1, 2])
def test_large_compressed_structure_reads_like_the_uncompressed_one(tmp_path, threads):
    """A nodes image of many chunks is decoded in parallel, as one buffer."""
    users = [{"id": i, "name": f"user-{i}", "tags": ["a"] * (i % 3), "score": i / 7}
             for i in range(30_000)]
    data = {"users": users, "meta": {"n": len(users)}}
    plain = bfa.dumps(data)
    assert len(plain) > 1 << 20
    path = tmp_path / "r.bfa"
    bfa.dump(data, path, compression="lz4", chunk_size=1 << 16, threads=threads)
    with bfa.Archive.open(path, threads=threads) as arch:
        assert arch.compressed
        assert arch["users"][12_345] == users[12_345]
        assert arch["users"][-1]["tags"].to_python() == users[-1]["tags"]
        assert arch.to_python() == data
        arch.verify()
    assert bfa.load(path) == bfa.loads(plain) == data


def _cjk_records(n, seed):
    """Records whose string columns LZ4 cannot shrink (random CJK text: no
    repeats) between columns it can: a nodes image in several writer pieces
    (big columns are pieces of their own), with raw and LZ4 chunks."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0x4E00, 0x9FFF, n * 40)
    text = "".join(map(chr, codes.tolist()))
    cut = [(s, s + k) for s, k in zip(rng.integers(0, len(text) - 80, 2 * n).tolist(),
                                      rng.integers(0, 80, 2 * n).tolist())]
    return [{"id": i, "name": text[slice(*cut[i])], "note": text[slice(*cut[n + i])],
             "tag": f"t{i % 7}", "x": i * 0.25} for i in range(n)]


@pytest.mark.parametrize("threads", [1, 2])
def test_nodes_in_many_pieces_compress_as_one_image(monkeypatch, threads):
    """Payload 0 is compressed from the writer's pieces, where they lie; a
    chunk that straddles two pieces is gathered first. The archive is the one
    the same nodes image in one piece gives, byte for byte, and a raw chunk
    inside a piece, or across two, reads back."""
    from bfast_archive import framing, writer
    from bfast_archive._output import join_pieces

    monkeypatch.setattr(F, "PARALLEL_MIN", 0)  # tasks on threads at this size too
    data = {"users": _cjk_records(20_000, 8), "meta": {"n": 20_000}}
    for chunk_size in (4096, 1 << 16):
        (pieces, nodes_end, root, payloads), _ = writer._layout(
            data, F.DEFAULT_MAX_DEPTH, "lz4", chunk_size, threads)
        assert len(pieces) > 3
        whole = [bytearray(b"".join(pieces))]
        got = join_pieces(framing.frame(pieces, nodes_end, root, payloads, "lz4", chunk_size,
                                        threads), threads)
        one = join_pieces(framing.frame(whole, nodes_end, root, payloads, "lz4", chunk_size,
                                        threads), threads)
        assert got == one == bfa.dumps(data, compression="lz4", chunk_size=chunk_size,
                                       threads=threads)
        # the case this covers: raw node chunks within a piece and across two
        ends = set(np.cumsum([len(p) for p in pieces]).tolist())
        payload_list, chunks, _ = _chunk_table(got)
        size, cs, first, n, _ = payload_list[0]
        kinds = set()
        for k in range(n):
            if chunks[first + k][3] == F.CODEC_RAW:
                lo, hi = F.HEADER_SIZE + k * cs, F.HEADER_SIZE + min(size, (k + 1) * cs)
                kinds.add(any(lo < e < hi for e in ends))
        assert kinds == ({True, False} if chunk_size == 4096 else {False})
        assert any(c[3] == F.CODEC_LZ4 for c in chunks[first:first + n])
        assert bfa.loads(got) == data
        with bfa.Archive.from_buffer(got) as arch:
            arch.verify()


def test_chunk_encoder_refuses_parts_that_do_not_hold_the_chunks():
    """bfa_chunks_encode reads only the parts it is given, and writes only
    the room it is told of."""
    from bfast_archive._lz4 import COMPRESS
    from bfast_archive._native import ffi, lib

    data = bytes(range(256)) * 64  # 16 KiB, in chunks of 4 KiB
    halves = [ffi.from_buffer("uint8_t[]", data[:5000]), ffi.from_buffer("uint8_t[]", data[5000:])]
    ptrs = ffi.new("uint8_t *[]", halves)
    lens = ffi.new("uint64_t[]", [5000, len(data) - 5000])
    room = 4 * lib.bfa_lz4_bound(4096)
    dst, scratch = ffi.new("uint8_t[]", room), ffi.new("uint8_t[]", 4096)
    sizes, hashes = ffi.new("uint64_t[]", 4), ffi.new("uint64_t[]", 4)
    codecs, used = ffi.new("uint32_t[]", 4), ffi.new("uint64_t *")

    def encode(ptr, ln, nparts, first_off, frm, to, dst_len=room, scr=scratch):
        return lib.bfa_chunks_encode(ptr, ln, nparts, first_off, len(data), 4096, frm, to, dst,
                                     dst_len, scr, 4096, COMPRESS, 1, sizes, hashes, codecs, used)

    assert encode(ptrs, lens, 2, 0, 0, 4) == lib.BFA_OK
    assert [codecs[i] for i in range(4)] == [F.CODEC_LZ4] * 4
    assert used[0] == sum(sizes[i] for i in range(4))
    packed = bytes(ffi.buffer(dst, used[0]))
    assert [hashes[i] for i in range(4)] == [
        lib.bfa_xxh64(c, len(c), 0) for c in _split(packed, [sizes[i] for i in range(4)])]
    assert encode(ptrs, lens, 1, 0, 0, 4) == lib.BFA_E_BOUNDS  # the second part is missing
    assert encode(ptrs, lens, 1, 0, 0, 1) == lib.BFA_OK  # chunk 0 lies in the first part
    assert encode(ptrs, lens, 1, 0, 1, 2) == lib.BFA_E_BOUNDS  # chunk 1 reaches past it
    assert encode(ptrs + 1, lens + 1, 1, 5000, 2, 4) == lib.BFA_OK
    assert encode(ptrs + 1, lens + 1, 1, 5000, 1, 4) == lib.BFA_E_BOUNDS  # starts too late
    short = ffi.new("uint64_t[]", [5000, len(data) - 5001])
    assert encode(ptrs, short, 2, 0, 0, 3) == lib.BFA_OK
    assert encode(ptrs, short, 2, 0, 0, 4) == lib.BFA_E_BOUNDS  # ends a byte short
    assert encode(ptrs, lens, 2, 0, 0, 4, dst_len=room - 1) == lib.BFA_E_ARG
    assert encode(ptrs, lens, 2, 0, 0, 4, scr=ffi.NULL) == lib.BFA_E_ARG
    assert encode(ptrs, lens, 2, 0, 0, 5) == lib.BFA_E_ARG  # past the last chunk
    out, end = ffi.new("uint8_t[]", 64), ffi.new("uint64_t *")
    assert lib.bfa_chunk_entries(out, 64, 100, sizes, hashes, codecs, 2, end) == lib.BFA_OK
    assert end[0] == 100 + sizes[0] + sizes[1]
    assert F.CHUNK_ENTRY.unpack_from(bytes(ffi.buffer(out)), 32) == (
        100 + sizes[0], sizes[1], hashes[1], F.CODEC_LZ4, 0)
    assert lib.bfa_chunk_entries(out, 64, 100, sizes, hashes, codecs, 3, end) == lib.BFA_E_BOUNDS
    for h in halves:
        ffi.release(h)


def _split(buf, sizes):
    out, at = [], 0
    for n in sizes:
        out.append(buf[at:at + n])
        at += n
    return out
