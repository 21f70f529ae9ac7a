"""Exhaustive single-byte mutation sweep over small golden archives of
every node type (tests/support/hostile.py, ``golden()``).

Every byte offset of every archive gets four values: 0x00, 0xFF, the byte
with its lowest bit flipped and with its highest bit flipped (a value equal
to the original byte is skipped). Each mutant is checked in one of two
worker processes (hostile.Isolated), against a PROT_NONE guard page placed
after it (odd offsets) or before it (even offsets), with a 20 s time limit,
so a crash, a hang or an out-of-bounds read by the C core is reported with
its mutant instead of ending the run. The checks, by archive kind:

- re-framed without checksums (``*.plain``): the full public-API walk of
  ``hostile.exercise`` (the promise of docs/SECURITY.md), every byte;
- checksummed, uncompressed: the checksums cover every byte of the file,
  so ``Archive.open(..., verify=True)`` must refuse every mutant; header and
  directory bytes also get the full walk (node bytes get it in ``*.plain``);
- compressed: the full walk for every byte of the file, and if a mutant
  still verifies and reads back, it must read back as the golden value (the
  directory itself carries no checksum);
- the nodes of compressed archives: every byte of the decoded nodes image,
  re-framed with valid chunk checksums (``hostile.reframe_compressed``), so
  the node checks of a compressed archive are reached too;
- c_raw (70 KB, incompressible): its header, directory and nodes image only.

Sweep size: 146,946 mutants (the test prints the count by kind with -s;
about 110 s on 2 cores). BFA_SWEEP_VALUES=all tries all 255 other byte values at
every offset instead (about 8.5 M mutants, hours).
"""
from __future__ import annotations

import collections
import os
import struct

import pytest

from tests.support import hostile

GOLDEN = hostile.golden()
ALL_VALUES = os.environ.get("BFA_SWEEP_VALUES") == "all"


def values_for(byte: int) -> list[int]:
    if ALL_VALUES:
        return [v for v in range(256) if v != byte]
    return sorted({0x00, 0xFF, byte ^ 0x01, byte ^ 0x80} - {byte})


def mutants(data: bytes, offsets) -> list:
    out = []
    for pos in offsets:
        for v in values_for(data[pos]):
            m = bytearray(data)
            m[pos] = v
            out.append((pos, v, bytes(m)))
    return out


def plan() -> list:
    """(group, golden name, mutant offsets into what, what, options)."""
    jobs = []
    for name, data in GOLDEN.items():
        flags = struct.unpack_from("<I", data, 12)[0]
        sections = struct.unpack_from("<Q", data, 48)[0]
        if name == "c_raw":
            offsets = list(range(64)) + list(range(sections, len(data)))
            jobs.append(("compressed", name, offsets, "file",
                         {"full": True, "oracle": "value"}))
        elif name.endswith(".plain"):
            jobs.append(("plain", name, range(len(data)), "file",
                         {"full": True, "oracle": None}))
        elif flags & 1:
            jobs.append(("compressed", name, range(len(data)), "file",
                         {"full": True, "oracle": "value"}))
        else:
            jobs.append(("checksummed", name, range(len(data)), "file",
                         {"full": False, "oracle": "changed"}))
            jobs.append(("checksummed header+directory", name,
                         list(range(64)) + list(range(sections, len(data))), "file",
                         {"full": True, "oracle": None}))
        if flags & 1 and name != "c_multi":
            image = hostile.nodes_image(data)
            jobs.append(("compressed nodes", name,
                         list(range(24, 40)) + list(range(64, len(image))), "image",
                         {"full": True, "oracle": None}))
    return jobs


@pytest.fixture(scope="module")
def pool():
    with hostile.Isolated(workers=2, timeout=20) as iso:
        yield iso


COUNTS: collections.Counter = collections.Counter()


@pytest.mark.parametrize("group,name,offsets,what,opts", plan(),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_single_byte_sweep(pool, group, name, offsets, what, opts):
    data = GOLDEN[name]
    base = hostile.nodes_image(data) if what == "image" else data
    jobs = []
    for pos, v, m in mutants(base, offsets):
        if what == "image":
            m = hostile.reframe_compressed(data, m)
        jobs.append(((pos, v), m, dict(opts, name=name, check="sweep_one", at_end=pos % 2 == 1)))
    results = pool.run(jobs)
    outcomes = collections.Counter(o for o, _ in results.values())
    COUNTS.update({f"{group}: {o}": n for o, n in outcomes.items()})
    COUNTS[group] += len(jobs)
    bad = {k: r for k, r in results.items() if r[0] in ("fail", "hang", "crash")}
    report = [f"byte {pos} := 0x{v:02x}: {outcome} {str(detail)[-1500:]}"
              for (pos, v), (outcome, detail) in sorted(bad.items())[:3]]
    assert not bad, f"{len(bad)} of {len(jobs)} mutants of {name} broke the promise:\n" + \
        "\n".join(report)


def test_zz_sweep_count():
    total = sum(n for k, n in COUNTS.items() if ":" not in k)
    print(f"\nsingle-byte sweep: {total} mutants; " +
          "; ".join(f"{k} {n}" for k, n in sorted(COUNTS.items())))
    if total == 0:
        pytest.skip("run with the sweep above")
