#!/usr/bin/env python3
"""Fuzz the C core's entry points directly, through cffi, with atheris.

    python fuzz/fuzz_core.py fuzz/corpus -max_total_time=60          # see .ci/fuzz.sh

The contract of csrc/ (csrc/bfa.h): every function takes the whole buffer
(pointer + length) and trusts nothing read from it, nor any offset, size,
count or index it is given: it returns an error code, never reads outside
``[buf, buf + len)``, never writes outside the ``dst_len`` bytes it is given,
and returns. This harness calls bfa_parse_header, bfa_check_slot,
bfa_seq_get, bfa_seq_check, bfa_dict_find, bfa_dict_check, bfa_table_check,
bfa_offsets_check, bfa_slots_check, bfa_directory_check (with parsed and
with arbitrary header structs), bfa_payload_decode (LZ4 from the lz4
package, as the reader passes it), bfa_verify_entries, bfa_hash_key,
bfa_xxh64 and bfa_dict_nbuckets with offsets, sizes, counts and indices
drawn from the archive's own words, boundary values and random 64-bit
numbers (a PRNG seeded by a hash of the input, so every input replays).

The input buffer, and every output buffer, sits against a PROT_NONE guard
page (hostile.Fence): a read or write past the end (or, for half the inputs,
before the start) faults at once. Results that claim success are checked:
a returned slot position lies inside the buffer and passes bfa_check_slot,
every return code is one of the BFA_E_* codes.

Known C bugs are tolerated only through hostile.known_trouble (none at
present; BFA_FUZZ_STRICT=1 ignores it).
"""
from __future__ import annotations

import os
import pathlib
import random
import struct
import sys
import zlib

import atheris

# Run as a script (by hand or by .ci/fuzz.sh, from any directory): sys.path[0]
# is fuzz/, so the repository root goes first to import tests.support.hostile.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["tests.support.hostile"]):
    from tests.support import hostile
    from bfast_archive._bfa_core import ffi, lib
    from bfast_archive._lz4 import DECOMPRESS

STRICT = os.environ.get("BFA_FUZZ_STRICT") == "1"
M64 = (1 << 64) - 1
CODES = {0} | {getattr(lib, name) for name in dir(lib) if name.startswith("BFA_E_")}
FENCE = hostile.Fence(1 << 20)
OUT = hostile.Fence(4 << 20)
COUNTS = {"inputs": 0, "calls": 0, "ok": 0, "skipped": 0}
OK_BY_FUNCTION: dict[str, int] = {}  # successful calls per entry point


class CoreBug(AssertionError):
    """A C entry point broke its contract (the message says how)."""


class Draw:
    """Arguments: the archive's own words, boundary values, random numbers."""

    def __init__(self, rng: random.Random, data: bytes) -> None:
        self.rng = rng
        n = len(data)
        self.n = n
        words = list(memoryview(data)[:n - n % 8].cast("Q")) if n >= 8 else []
        self.words = words[:4096]
        # node offsets named by slot-like word pairs: tag -> [offsets]
        self.nodes: dict[int, list] = {}
        for i in range(len(self.words) - 1):
            w, p = self.words[i], self.words[i + 1]
            if w & 0xFF in (10, 11, 12, 13, 14, 15, 17, 32) and p % 8 == 0 and 64 <= p < n:
                self.nodes.setdefault(w & 0xFF, []).append(p)
        self.edges = sorted({0, 1, 2, 7, 8, 15, 16, 23, 24, 32, 56, 63, 64, 65, 72, 128,
                             max(0, n - 64), max(0, n - 24), max(0, n - 16), max(0, n - 8),
                             max(0, n - 1), n, n + 1, n + 8, 1 << 26, (1 << 26) + 1, 1 << 31,
                             1 << 32, (1 << 56) - 1, (1 << 62), (1 << 63) - 1, 1 << 63,
                             M64 - 7, M64})

    def u64(self) -> int:
        r = self.rng.random()
        if r < 0.3 and self.words:
            return self.rng.choice(self.words)
        if r < 0.55:
            return self.rng.choice(self.edges)
        if r < 0.8:
            return self.rng.randrange(0, self.n + 64) & ~7 if self.rng.random() < 0.8 \
                else self.rng.randrange(0, self.n + 64)
        if r < 0.9:
            return self.rng.randrange(0, 64)
        return self.rng.getrandbits(64)

    def offset(self, *tags: int) -> int:
        """Mostly a node offset some slot names (of one of ``tags``), else a
        plausible one: 8-aligned, inside the buffer."""
        known = [p for t in tags for p in self.nodes.get(t, ())]
        if known and self.rng.random() < 0.6:
            return self.rng.choice(known)
        if self.n >= 8 and self.rng.random() < 0.7:
            return self.rng.randrange(0, self.n) & ~7
        return self.u64()

    def count_at(self, off: int) -> int:
        """Mostly the count the node at ``off`` declares, so checks get past
        the header and into the node."""
        if off % 8 == 0 and off // 8 < len(self.words) and self.rng.random() < 0.6:
            return self.words[off // 8]
        return self.u64()

    def key(self) -> tuple[int, bytes]:
        """Mostly an inline key that occurs in the archive: (kind, bytes)."""
        rng = self.rng
        if self.words and rng.random() < 0.6:
            for _ in range(8):
                i = rng.randrange(len(self.words) - 1) if len(self.words) > 1 else 0
                w = self.words[i]
                if w & 0xFF in (8, 9) and (w >> 8) <= 8 and i + 1 < len(self.words):
                    raw = struct.pack("<Q", self.words[i + 1])[:w >> 8]
                    return (6 if w & 0xFF == 8 else 7), raw
                if w & 0xFF == 3 and w >> 8 == 0 and i + 1 < len(self.words):
                    return 3, struct.pack("<Q", self.words[i + 1])
        return rng.choice([3, 5, 6, 7, 0, 12, self.u32()]), rng.randbytes(rng.randrange(0, 24))

    def i64(self) -> int:
        v = self.u64()
        return v - (1 << 64) if v >= 1 << 63 else v

    def u32(self) -> int:
        return self.rng.choice([0, 1, 3, 5, 6, 7, 8, 12, 24, 32, 40, 0xFFFFFFFF,
                                self.rng.getrandbits(32)])


def rc_ok(rc: int, what: str) -> int:
    COUNTS["calls"] += 1
    if rc >= 0:
        COUNTS["ok"] += 1
        OK_BY_FUNCTION[what] = OK_BY_FUNCTION.get(what, 0) + 1
    elif rc not in CODES:
        raise CoreBug(f"{what} returned {rc}, not a BFA_E_* code")
    return rc


def slot_ok(ptr, n: int, pos: int, limit: int, what: str) -> None:
    """A position a lookup returned: a whole, valid slot inside the buffer."""
    if pos + 16 > n or pos < 0:
        raise CoreBug(f"{what} returned slot position {pos} outside a {n}-byte buffer")
    rc = lib.bfa_check_slot(ptr, n, pos, min(limit, n))
    if rc < 0:
        raise CoreBug(f"{what} returned slot {pos}, which bfa_check_slot rejects ({rc})")


def one_call(ptr, n: int, d: Draw, header) -> None:
    rng = d.rng
    pick = rng.randrange(13)
    if pick == 0:
        pos, limit = (d.offset() + rng.choice([0, 8, 16, 24])) & M64, d.u64()
        rc_ok(lib.bfa_check_slot(ptr, n, pos, limit), "bfa_check_slot")
    elif pick == 1:
        off = d.offset(10, 11, 13, 14)
        index = rng.randrange(-4, 8) if rng.random() < 0.6 else d.i64()
        pos = rc_ok(lib.bfa_seq_get(ptr, n, off, index), "bfa_seq_get")
        if pos >= 0:
            slot_ok(ptr, n, pos, off, "bfa_seq_get")
    elif pick == 2:
        off = d.offset(10, 11, 13, 14, 17)
        rc_ok(lib.bfa_seq_check(ptr, n, off, d.count_at(off)), "bfa_seq_check")
    elif pick == 3:
        off = d.offset(12)
        kind, key = d.key()
        int_key = struct.unpack("<q", key)[0] if kind == 3 and len(key) == 8 else d.i64()
        pos = rc_ok(lib.bfa_dict_find(ptr, n, off, kind, key, len(key), int_key),
                    "bfa_dict_find")
        if pos >= 0:
            slot_ok(ptr, n, pos, off, "bfa_dict_find")
    elif pick == 4:
        off = d.offset(12)
        rc_ok(lib.bfa_dict_check(ptr, n, off, d.count_at(off)), "bfa_dict_check")
    elif pick == 5:
        off = d.offset(32)
        rc_ok(lib.bfa_table_check(ptr, n, off, d.count_at(off)), "bfa_table_check")
    elif pick == 6:
        rc_ok(lib.bfa_offsets_check(ptr, n, d.offset(), d.u64(), d.u64()), "bfa_offsets_check")
    elif pick == 7:
        rc_ok(lib.bfa_slots_check(ptr, n, d.offset(), rng.choice([d.u64(), rng.randrange(64)]),
                                  d.u64()), "bfa_slots_check")
    elif pick == 8:
        bad = ffi.new("uint64_t *")
        rc_ok(lib.bfa_verify_entries(ptr, n, d.offset(), rng.choice([24, 32, 0, 23, d.u64()]),
                                     d.u64() if rng.random() < 0.3 else rng.randrange(8),
                                     d.u64() if rng.random() < 0.3 else rng.randrange(8), bad),
              "bfa_verify_entries")
    elif pick == 9:
        key = rng.randbytes(rng.randrange(0, 40))
        lib.bfa_hash_key(d.u32(), key, len(key))
        lib.bfa_xxh64(ptr, rng.randrange(0, n + 1), d.u64())
    elif pick == 10:
        count = d.u64()
        nb = lib.bfa_dict_nbuckets(count)
        if count and count <= 1 << 62 and (nb & (nb - 1) or nb < 2 * count):
            raise CoreBug(f"bfa_dict_nbuckets({count}) = {nb}")
    else:
        directory(ptr, n, d, header)


def directory(ptr, n: int, d: Draw, parsed) -> None:
    """bfa_directory_check with the parsed header or arbitrary header
    fields; on success, bfa_payload_decode of arbitrary chunk ranges into a
    fenced output buffer."""
    rng = d.rng
    h = ffi.new("bfa_header *")
    if parsed is not None and rng.random() < 0.6:
        h[0] = parsed[0]
    else:
        h.version_major, h.version_minor = 1, 0
        h.flags = rng.choice([3, 2, 1, 0, d.u32()])
        h.file_size = rng.choice([n, d.u64()])
        h.nodes_end, h.sections_off = d.u64(), d.offset()
    out = ffi.new("bfa_directory *")
    rc = rc_ok(lib.bfa_directory_check(ptr, n, h, out), "bfa_directory_check")
    if rc < 0:
        return
    for name in ("checks_off", "payloads_off", "chunks_off"):
        if getattr(out, name) > h.file_size or h.file_size > n:
            raise CoreBug(f"bfa_directory_check accepted a directory with {name} "
                          f"{getattr(out, name)} past file_size {h.file_size}")
    if out.chunks_off + 32 * out.n_chunks != h.file_size:
        raise CoreBug("bfa_directory_check: the chunk table does not end at file_size")
    for _ in range(3):
        if out.n_payloads == 0:
            return
        p = rng.randrange(out.n_payloads) if rng.random() < 0.9 else d.u64()
        size, cs, first, count, _ = struct.unpack_from(
            "<5Q", ffi.buffer(ptr + out.payloads_off + 40 * min(p, out.n_payloads - 1), 40))
        k0 = rng.randrange(count + 2) if rng.random() < 0.9 else d.u64()
        k1 = rng.randrange(k0, count + 2) if k0 <= count + 1 and rng.random() < 0.9 else d.u64()
        start, end = k0 * cs, min(k1 * cs, size)
        want = end - start if k0 < k1 and end >= start else 0
        dst_len = want if rng.random() < 0.8 else rng.choice([0, max(0, want - 1), want + 1,
                                                                d.u64() % (OUT.capacity + 1)])
        if dst_len > OUT.capacity:
            continue
        dst = OUT.place(b"\xa5" * dst_len if dst_len else b"", at_end=True)
        bad = ffi.new("uint64_t *")
        with ffi.from_buffer("uint8_t[]", dst, require_writable=True) as q:
            rc_ok(lib.bfa_payload_decode(ptr, n, out, p, k0, k1, q, dst_len, DECOMPRESS,
                                         rng.random() < 0.7, bad), "bfa_payload_decode")


def TestOneInput(data: bytes) -> None:
    COUNTS["inputs"] += 1
    if COUNTS["inputs"] & (COUNTS["inputs"] - 1) == 0 and COUNTS["inputs"] >= 1024:
        print(f"fuzz_core: {COUNTS} successful calls: {OK_BY_FUNCTION}", file=sys.stderr,
              flush=True)
    h = zlib.crc32(data)
    rng = random.Random(h)
    if h & 1 and len(data) >= 64:
        data = hostile.refresh_checksums(data)
    if h & 4 and len(data) >= 64 and data[12] & 1:
        # a compressed archive: half the time, call the node functions on its
        # decoded nodes image, as the reader does
        data = hostile.nodes_image(data) or data
    if not STRICT and hostile.known_trouble(data):
        COUNTS["skipped"] += 1
        return
    n = len(data)
    if n == 0:
        data, n = b"\0", 0  # a valid pointer to no bytes
    buf = FENCE.place(data, at_end=bool(h & 2))
    with ffi.from_buffer("uint8_t[]", buf) as ptr:
        header = ffi.new("bfa_header *")
        lengths = [n] + [rng.randrange(0, n + 1) for _ in range(2)]
        parsed = None
        for length in lengths:
            rc = rc_ok(lib.bfa_parse_header(ptr, length, header), "bfa_parse_header")
            if rc == 0 and parsed is None:
                parsed = ffi.new("bfa_header *", header[0])
                if header.file_size > length:
                    raise CoreBug("bfa_parse_header accepted file_size beyond the buffer")
        d = Draw(rng, bytes(data[:n]))
        for _ in range(48):
            one_call(ptr, n, d, parsed)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
