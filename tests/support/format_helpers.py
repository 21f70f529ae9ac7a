"""Byte-level helpers for tests that craft or check archives (not a test module).

Written from the format description, independently of bfast_archive's code:
the XXH64 hash (header and section checksums), the dict key hash, and a header
rewriter that keeps the header checksum valid so a test reaches the check it
aims at instead of stopping at "header checksum mismatch".
"""
from __future__ import annotations

import struct

M64 = (1 << 64) - 1
HEADER = struct.Struct("<8sHHIQQQQQQ")  # magic, major, minor, flags, file_size, root w0,
                                        # root payload, nodes_end, sections_off, reserved/xxh
F_COMPRESSED = 1
F_CHECKSUMS = 2

_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & M64
    return (_rotl(acc, 31) * _P1) & M64


def _merge(acc: int, val: int) -> int:
    acc ^= _round(0, val)
    return (acc * _P1 + _P4) & M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 (the reference algorithm, pure Python)."""
    data = bytes(data)
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & M64
        v2 = (seed + _P2) & M64
        v3 = seed
        v4 = (seed - _P1) & M64
        while i + 32 <= n:
            a, b, c, d = struct.unpack_from("<4Q", data, i)
            v1, v2, v3, v4 = _round(v1, a), _round(v2, b), _round(v3, c), _round(v4, d)
            i += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & M64
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = (seed + _P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        (k,) = struct.unpack_from("<Q", data, i)
        h ^= _round(0, k)
        h = (_rotl(h, 27) * _P1 + _P4) & M64
        i += 8
    if i + 4 <= n:
        (k,) = struct.unpack_from("<I", data, i)
        h ^= (k * _P1) & M64
        h = (_rotl(h, 23) * _P2 + _P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & M64
        h = (_rotl(h, 11) * _P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * _P2) & M64
    h ^= h >> 29
    h = (h * _P3) & M64
    h ^= h >> 32
    return h


def key_hash(kind: int, key: bytes) -> int:
    """The dict key hash: FNV-1a 64 over the kind byte and the key bytes, then
    the MurmurHash3 fmix64 finaliser."""
    h = 0xCBF29CE484222325
    for c in bytes([kind]) + key:
        h = ((h ^ c) * 0x100000001B3) & M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h


FIELDS = ("magic", "major", "minor", "flags", "file_size", "root_word", "root_payload",
          "nodes_end", "sections_off", "reserved")


def read_header(data: bytes) -> dict:
    return dict(zip(FIELDS, HEADER.unpack_from(data, 0)))


def header_checksum_ok(data: bytes) -> bool:
    return struct.unpack_from("<Q", data, 56)[0] == xxh64(data[:56])


def rewrite_header(data: bytes, *, fix_checksum: bool = True, **changes) -> bytes:
    """``data`` with header fields replaced; when the archive carries
    checksums (flags bit 1) the header checksum is recomputed unless
    ``fix_checksum`` is false or ``reserved`` is given explicitly."""
    fields = read_header(data)
    unknown = set(changes) - set(FIELDS)
    assert not unknown, unknown
    fields.update(changes)
    head = bytearray(HEADER.pack(*(fields[f] for f in FIELDS)))
    if fix_checksum and "reserved" not in changes and fields["flags"] & F_CHECKSUMS:
        head[56:64] = struct.pack("<Q", xxh64(bytes(head[:56])))
    return bytes(head) + bytes(data[64:])


def without_checksums(data: bytes) -> bytes:
    """An uncompressed archive re-framed as a plain archive without the
    checksum directory: flags 0, sections_off 0, reserved 0, file_size = nodes_end."""
    h = read_header(data)
    assert not h["flags"] & F_COMPRESSED
    plain = rewrite_header(data, flags=0, sections_off=0, reserved=0,
                           file_size=h["nodes_end"])
    return plain[:h["nodes_end"]]


def fix_checksums(data: bytes) -> bytes:
    """An uncompressed archive whose bytes a test changed, with its section
    checksums and header checksum recomputed: the damage then reaches the
    structural checks, which apply whatever the checksums say."""
    h = read_header(data)
    assert not h["flags"] & F_COMPRESSED
    if not h["flags"] & F_CHECKSUMS:
        return data
    out = bytearray(data)
    d = h["sections_off"]
    n_checks = struct.unpack_from("<Q", out, d)[0]
    for i in range(n_checks):
        at = d + 32 + 24 * i
        off, length = struct.unpack_from("<QQ", out, at)
        struct.pack_into("<Q", out, at + 16, xxh64(bytes(out[off:off + length])))
    return rewrite_header(bytes(out))


def plain_archive(tag: int, aux: int, payload: int, body: bytes = b"") -> bytes:
    """A hand-built archive without checksums (flags 0): ``body`` at offset
    64 (zero-padded to a multiple of 8) and the root slot (tag, aux, payload),
    e.g. a byte-string root ``plain_archive(21, len(text), 64, text)``."""
    body = body + bytes(-len(body) % 8)
    end = 64 + len(body)
    head = HEADER.pack(b"\x89BFA\r\n\x1a\n", 1, 0, 0, end, tag | aux << 8, payload, end, 0, 0)
    return head + body


def rebuild_dict_index(data: bytes, node_off: int) -> bytes:
    """Recompute the hash index of the dict node at ``node_off`` from its key
    slots (after a test changed key bytes), as the format defines it: cell
    ``H(key) & (nbuckets - 1)``, linear probing, entry number + 1."""
    out = bytearray(data)
    count, nbuckets, width, _ = struct.unpack_from("<QQII", out, node_off)
    entries = node_off + 24
    cells = [0] * nbuckets
    for i in range(count):
        kind, kb = key_kind_bytes(bytes(out), entries + 32 * i)
        b = key_hash(kind, kb) & (nbuckets - 1)
        while cells[b]:
            b = (b + 1) & (nbuckets - 1)
        cells[b] = i + 1
    fmt = "<%d%s" % (nbuckets, "I" if width == 4 else "Q")
    struct.pack_into(fmt, out, entries + 32 * count, *cells)
    return bytes(out)


def key_kind_bytes(data: bytes, pos: int) -> tuple[int, bytes]:
    """(kind, bytes) of the key slot at ``pos``, as the key hash takes them."""
    w0, payload = struct.unpack_from("<QQ", data, pos)
    tag, aux = w0 & 0xFF, w0 >> 8
    if tag == 3:                      # INT: the 8 payload bytes
        return 3, data[pos + 8:pos + 16]
    if tag in (8, 9):                 # SSTR / SBYTES: inline
        return (6 if tag == 8 else 7), data[pos + 8:pos + 8 + aux]
    assert tag in (5, 6, 7), tag      # BIGINT / STR / BYTES: a referent
    return tag, data[payload:payload + aux]
