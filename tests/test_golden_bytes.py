"""Golden bytes: the exact archive of a tiny value, pinned and checked by hand
against csrc/bfa.h, bfast_archive/framing.py and docs/format/examples.md
(same node bytes as its first example), plus the dict hash index recomputed from
the spec (FNV-1a 64 over kind byte + key bytes, then MurmurHash3 fmix64;
linear probing, cells hold entry number + 1) and the XXH64 checksums
recomputed by an independent implementation (tests/support/format_helpers.py).
Compressed archives: the payload geometry of the canonical form pinned, and an
archive of the earlier canonical form (tests/data/) still read identically."""
from __future__ import annotations

import struct
from pathlib import Path

import fsspec
import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import format as F
from bfast_archive.framing import payload_chunk_size
from tests.support.format_helpers import key_hash, key_kind_bytes, read_header, xxh64

GOLDEN_VALUE = {"a": 1, "b": [True, None, "hi"]}

# The nodes of the golden archive: the same bytes whatever the framing. One
# line per 8-byte little-endian word. Slots are 16 bytes: word 1 is
# tag | aux << 8, word 2 the payload. Tags (csrc/bfa.h): NONE 0, TRUE 2, INT 3,
# SSTR 8 (a string of <= 8 bytes inside the slot), LIST 10, DICT 12.
NODES_HEX = [
    # ---- list node of "b" at 0x40 (values are written before keys and before
    #      the dict; the value 1 of "a" is inline in its slot, so it has no node)
    "03 00 00 00 00 00 00 00",  # 0x40 u64 count = 3
    "02 00 00 00 00 00 00 00",  # 0x48 item 0 slot: tag 2 TRUE, aux 0
    "00 00 00 00 00 00 00 00",  # 0x50 item 0 payload 0
    "00 00 00 00 00 00 00 00",  # 0x58 item 1 slot: tag 0 NONE, aux 0
    "00 00 00 00 00 00 00 00",  # 0x60 item 1 payload 0
    "08 02 00 00 00 00 00 00",  # 0x68 item 2 slot: tag 8 SSTR, aux 2 (bytes)
    "68 69 00 00 00 00 00 00",  # 0x70 item 2 payload: "hi", zero padded
    # ---- dict node at 0x78: header, 2 entries (key slot, value slot), index
    "02 00 00 00 00 00 00 00",  # 0x78 u64 count = 2
    "04 00 00 00 00 00 00 00",  # 0x80 u64 nbuckets = 4 (smallest power of 2 >= 2*2)
    "04 00 00 00 00 00 00 00",  # 0x88 u32 index width = 4, u32 reserved 0
    "08 01 00 00 00 00 00 00",  # 0x90 entry 0 key slot: SSTR, aux 1
    "61 00 00 00 00 00 00 00",  # 0x98   key payload "a"
    "03 00 00 00 00 00 00 00",  # 0xa0 entry 0 value slot: tag 3 INT, aux 0
    "01 00 00 00 00 00 00 00",  # 0xa8   value payload: i64 1
    "08 01 00 00 00 00 00 00",  # 0xb0 entry 1 key slot: SSTR, aux 1
    "62 00 00 00 00 00 00 00",  # 0xb8   key payload "b"
    "0a 03 00 00 00 00 00 00",  # 0xc0 entry 1 value slot: tag 10 LIST, aux 3 (items)
    "40 00 00 00 00 00 00 00",  # 0xc8   value payload: list node at 0x40
    "02 00 00 00 00 00 00 00",  # 0xd0 index cells 0, 1 (u32): 2 = entry #1 ("b"), 0 = empty
    "00 00 00 00 01 00 00 00",  # 0xd8 index cells 2, 3 (u32): 0 = empty, 1 = entry #0 ("a")
    # H(6, "a") = 0x5fcf6d6aac9ca2cb -> bucket 3; H(6, "b") = 0xc5c5095d0252a4f0 -> bucket 0
]

# What dumps() writes: header with flags bit 1 (checksums), the nodes, then the
# checksum directory (one XXH64 per <= 4 MiB block of the node area).
GOLDEN_HEX = "".join([
    # ---- header, 64 bytes
    "89 42 46 41 0d 0a 1a 0a",  # 0x00 magic "\x89BFA\r\n\x1a\n"
    "01 00 00 00 02 00 00 00",  # 0x08 u16 major = 1, u16 minor = 0, u32 flags = 2 (checksums)
    "18 01 00 00 00 00 00 00",  # 0x10 u64 file size = 280
    "0c 02 00 00 00 00 00 00",  # 0x18 root slot word 1: tag 12 DICT, aux 2 (entries)
    "78 00 00 00 00 00 00 00",  # 0x20 root slot payload: dict node at 0x78 = 120
    "e0 00 00 00 00 00 00 00",  # 0x28 u64 nodes_end = 224
    "e0 00 00 00 00 00 00 00",  # 0x30 u64 sections_off = 224: the directory follows the nodes
    "12 6b 2d ed af d2 fc b6",  # 0x38 u64 XXH64(bytes 0..55, seed 0) = 0xb6fcd2afed2d6b12
    *NODES_HEX,                 # 0x40 .. 0xdf, as above
    # ---- checksum directory at 0xe0
    "01 00 00 00 00 00 00 00",  # 0xe0 u64 checksum entries = 1
    "00 00 00 00 00 00 00 00",  # 0xe8 u64 payload entries = 0 (compressed archives only)
    "00 00 00 00 00 00 00 00",  # 0xf0 u64 chunk entries = 0 (compressed archives only)
    "00 00 00 00 00 00 00 00",  # 0xf8 u64 reserved 0
    "40 00 00 00 00 00 00 00",  # 0x100 entry 0: offset 64 (the node area)
    "a0 00 00 00 00 00 00 00",  # 0x108          length 160
    "a2 a4 c2 43 74 75 e6 e9",  # 0x110          XXH64(bytes 64..223) = 0xe9e6757443c2a4a2
]).replace(" ", "")
GOLDEN = bytes.fromhex(GOLDEN_HEX)

# The same nodes in a plain archive without checksums (flags 0, sections_off 0,
# reserved 0, file size = nodes_end): the original 1.0 framing, still readable.
PLAIN_HEX = "".join([
    "89 42 46 41 0d 0a 1a 0a",  # 0x00 magic
    "01 00 00 00 00 00 00 00",  # 0x08 major 1, minor 0, flags 0
    "e0 00 00 00 00 00 00 00",  # 0x10 file size = 224
    "0c 02 00 00 00 00 00 00",  # 0x18 root slot: DICT, 2 entries
    "78 00 00 00 00 00 00 00",  # 0x20 root payload: dict node at 0x78
    "e0 00 00 00 00 00 00 00",  # 0x28 nodes_end = 224
    "00 00 00 00 00 00 00 00",  # 0x30 sections_off = 0
    "00 00 00 00 00 00 00 00",  # 0x38 reserved zero
    *NODES_HEX,
]).replace(" ", "")
PLAIN = bytes.fromhex(PLAIN_HEX)


def test_golden_bytes_are_exact():
    assert len(GOLDEN) == 280
    data = bfa.dumps(GOLDEN_VALUE)
    assert data.hex(" ", 8) == GOLDEN.hex(" ", 8)  # readable diff on failure
    assert data == GOLDEN


def test_golden_bytes_load_back():
    assert bfa.loads(GOLDEN) == GOLDEN_VALUE
    root = bfa.Archive.from_buffer(GOLDEN).root
    assert list(root) == ["a", "b"] and root["a"] == 1 and root["b"].to_python() == [True, None, "hi"]


def test_golden_file_is_the_same_bytes(tmp_path):
    path = tmp_path / "golden.bfa"
    assert bfa.dump(GOLDEN_VALUE, path) == 280
    assert path.read_bytes() == GOLDEN


def test_golden_checksums_recomputed_independently():
    assert xxh64(GOLDEN[:56]) == struct.unpack_from("<Q", GOLDEN, 56)[0] == 0xB6FCD2AFED2D6B12
    assert xxh64(GOLDEN[64:224]) == struct.unpack_from("<Q", GOLDEN, 0x110)[0]
    assert GOLDEN[64:224] == PLAIN[64:224]


def test_plain_framing_of_the_same_nodes_loads():
    assert len(PLAIN) == 224
    assert bfa.loads(PLAIN) == GOLDEN_VALUE
    assert bfa.Archive.from_buffer(PLAIN)["b"][2] == "hi"


def test_xxh64_reference_vectors():
    """The pure-Python XXH64 used above, against published vectors."""
    assert xxh64(b"") == 0xEF46DB3751D8E999
    assert xxh64(b"a") == 0xD24EC4F1A98C6E5B
    assert xxh64(b"abc") == 0x44BC2CF5AD770999
    assert xxh64(b"Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1
    assert xxh64(bytes(range(256)) * 3) != xxh64(bytes(range(256)) * 3, seed=1)


@pytest.mark.parametrize("kind,key,expected", [
    (6, b"a", 0x5FCF6D6AAC9CA2CB),
    (6, b"b", 0xC5C5095D0252A4F0),
    (6, b"", 0x1C80936EA970CF4B),
    (6, "héllo".encode(), 0xE46105540BF85AA8),
    (3, struct.pack("<q", 1), 0x42BD7A7C66494AFD),
    (3, struct.pack("<q", -1), 0x226F86EB67ACF662),
    (5, (2 ** 64).to_bytes(9, "little", signed=True), 0x46A57F4F1F3D7E37),
    (7, b"\x00\xff", 0x78363F61CD5D339B),
])
def test_key_hash_vectors(kind, key, expected):
    """The test vectors of docs/format/nodes.md ("Key hash"), against the
    spec's algorithm."""
    assert key_hash(kind, key) == expected


@pytest.mark.parametrize("value", [
    GOLDEN_VALUE,
    {1: "int", "1": "str", b"1": "bytes", 2 ** 64: "big", -1: "neg", "": "empty",
     "a long key that is not inline": 0, b"long bytes key, not inline": 1},
    {f"k{i}": i for i in range(37)},   # 37 keys: 128 buckets, probing chains
    {i: i for i in range(0, 4000, 7)},
])
def test_dict_index_matches_the_spec(value):
    """Recompute every dict's hash index from the spec and compare it with the
    bytes the writer produced."""
    data = bfa.dumps(value)
    w0, off = struct.unpack_from("<QQ", data, 24)
    assert w0 & 0xFF == 12 and w0 >> 8 == len(value)
    count, nbuckets, width, reserved = struct.unpack_from("<QQII", data, off)
    assert count == len(value) and reserved == 0 and width == 4
    assert nbuckets == 1 << max(1, (2 * count - 1).bit_length())
    entries = off + 24
    cells = [0] * nbuckets
    for i in range(count):
        kind, kb = key_kind_bytes(data, entries + 32 * i)
        b = key_hash(kind, kb) & (nbuckets - 1)
        while cells[b]:
            b = (b + 1) & (nbuckets - 1)
        cells[b] = i + 1
    index_at = entries + 32 * count
    assert list(struct.unpack_from(f"<{nbuckets}I", data, index_at)) == cells
    assert index_at + 4 * nbuckets == read_header(data)["nodes_end"]  # the root node is last


# -- compressed archives ------------------------------------------------------

# Written by bfast_archive before the nodes got chunks of their own size: every
# payload, the nodes included, in chunks of chunk_size (64 KiB). Still valid.
OLD_LZ4 = Path(__file__).parent / "data" / "lz4_nodes_in_chunk_size_chunks.bfa"


def _old_form_value() -> dict:
    """The value the old-form file holds (made by ``dumps(_old_form_value(),
    compression="lz4", chunk_size=1 << 16)`` with the earlier writer)."""
    return {"users": [{"id": i, "name": f"user-{i:05d}", "score": i / 8} for i in range(3000)],
            "ids": np.arange(9_000, dtype=np.int64) // 64, "blob": bytes(range(256)) * 280}


def _payloads(data: bytes) -> list[tuple[int, int, int, int]]:
    """(size, chunk_size, first_chunk, n_chunks) of each payload entry."""
    at = struct.unpack_from("<Q", data, 48)[0]
    n = struct.unpack_from("<Q", data, at + 8)[0]
    return [F.PAYLOAD_ENTRY.unpack_from(data, at + 32 + 40 * i)[:4] for i in range(n)]


def _nodes_image(data: bytes) -> bytes:
    """Payload 0 decoded by the spec's rules, with python-lz4, after the header."""
    import lz4.block

    at = struct.unpack_from("<Q", data, 48)[0]
    size, cs, first, n = _payloads(data)[0]
    chunks_at = at + 32 + 40 * struct.unpack_from("<Q", data, at + 8)[0]
    out = bytearray(data[:64])
    for k in range(first, first + n):
        off, stored, _, codec, _ = F.CHUNK_ENTRY.unpack_from(data, chunks_at + 32 * k)
        raw = min(cs, size - (k - first) * cs)
        body = data[off:off + stored]
        out += body if codec == F.CODEC_RAW else lz4.block.decompress(body, uncompressed_size=raw)
    return bytes(out)


def _assert_old_form_value(got) -> None:
    want = _old_form_value()
    assert got["users"] == want["users"] and got["blob"] == want["blob"]
    assert got["ids"].dtype == want["ids"].dtype and np.array_equal(got["ids"], want["ids"])


def test_compressed_canonical_form_cuts_the_nodes_in_32_kib_chunks():
    data = bfa.dumps(_old_form_value(), compression="lz4", chunk_size=1 << 16)
    # nodes: 102568 bytes in 32 KiB chunks; the array and the bytes in chunk_size ones
    assert _payloads(data) == [(102568, 32768, 0, 4), (72000, 65536, 4, 2), (71680, 65536, 6, 2)]


@pytest.mark.parametrize("index,size,chunk_size,expected", [
    (0, 248, 1 << 20, 32 << 10),            # small nodes: 32 KiB
    (0, 32 << 20, 1 << 20, 32 << 10),       # 1024 chunks of 32 KiB
    (0, (32 << 20) + 1, 1 << 20, 64 << 10),  # one byte more: 64 KiB, 513 chunks
    (0, 1 << 30, 1 << 20, 1 << 20),         # never more than chunk_size
    (0, 248, 4096, 4096),                   # nor for small chunk sizes
    (1, 248, 1 << 20, 1 << 20),             # every other payload: chunk_size
])
def test_payload_chunk_size_follows_the_canonical_rule(index, size, chunk_size, expected):
    assert payload_chunk_size(index, size, chunk_size) == expected


def test_old_and_new_compressed_forms_hold_the_same_nodes():
    old = OLD_LZ4.read_bytes()
    new = bfa.dumps(_old_form_value(), compression="lz4", chunk_size=1 << 16)
    assert [p[1] for p in _payloads(old)] == [65536] * 3
    assert _nodes_image(old)[24:48] == _nodes_image(new)[24:48]  # root slot, nodes_end
    assert _nodes_image(old)[64:] == _nodes_image(new)[64:]


def test_compressed_archive_of_the_old_form_reads_identically():
    data = OLD_LZ4.read_bytes()
    _assert_old_form_value(bfa.loads(data))
    with bfa.Archive.from_buffer(data, verify=True) as arch:
        assert arch["users"][2_999]["name"] == "user-02999"
        assert arch.array("ids")[8_999] == 8_999 // 64


def test_compressed_archive_of_the_old_form_reads_identically_by_range():
    url = "memory://golden/lz4_nodes_in_chunk_size_chunks.bfa"
    with fsspec.open(url, "wb") as f:
        f.write(OLD_LZ4.read_bytes())
    with bfa.Archive.open(url) as arch:
        assert arch["users"][1_234]["score"] == 1_234 / 8
        _assert_old_form_value(arch.to_python())
