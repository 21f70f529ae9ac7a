#!/usr/bin/env python3
"""Fuzz the public Python API with atheris (libFuzzer).

    pip install atheris
    python fuzz/fuzz_archive.py fuzz/corpus -max_total_time=60     # see .ci/fuzz.sh
    python fuzz/fuzz_archive.py crash-<hash>                        # replay one input

Each input is an archive's bytes (the seed corpus, fuzz/corpus/, holds golden
archives of every node type). The harness hands it to ``loads`` and
``Archive.from_buffer`` and walks everything with tests/support/hostile.py's
``exercise``: root, item access with present and missing keys, iteration of
dicts, lists and tables, ``to_python``, ``verify``, array handles and their
slices, table columns, model views. Anything but a value, ArchiveError,
KeyError, IndexError or an API-misuse TypeError is a crash; so is a
disagreement between two public paths to the same value (hostile.WrongValue).

Three things come from a hash of the input, so a reported input replays
exactly: whether a mutated header/section/chunk checksum is recomputed first
(libFuzzer's mutations would otherwise mostly stop at "checksum mismatch"),
whether ``verify=True`` is passed, and the buffer's placement: bytes, or a
copy against a PROT_NONE guard page (hostile.Fence) so that a C read past
the end, or before the start, of the buffer faults at once.

Known library bugs that are reported and have strict-xfail tests are
tolerated (counted, printed at exit) so the fuzzer keeps looking for new
ones; inputs that would trigger a known hang or a multi-gigabyte allocation
are skipped. Set BFA_FUZZ_STRICT=1 to fail on those too.

Coverage: atheris instruments the Python modules (bfast_archive and the
harness). The C core is compiled by gcc without libFuzzer's coverage
instrumentation (that needs clang's -fsanitize=fuzzer-no-link), so C-level
paths are reached through the Python-level coverage and the golden corpus;
build with BFA_SANITIZE=1 and LD_PRELOAD libasan (see .ci/sanitize.sh) to run
the harness under AddressSanitizer.
"""
from __future__ import annotations

import atexit
import os
import pathlib
import sys
import zlib

import atheris

# Run as a script (by hand or by .ci/fuzz.sh, from any directory): sys.path[0]
# is fuzz/, so the repository root goes first to import tests.support.hostile.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["bfast_archive", "tests.support.hostile"]):
    from tests.support import hostile

    import bfast_archive  # noqa: F401
    import bfast_archive.arrays  # noqa: F401
    import bfast_archive.dtypes  # noqa: F401
    import bfast_archive.models  # noqa: F401
    import bfast_archive.payloads  # noqa: F401

STRICT = os.environ.get("BFA_FUZZ_STRICT") == "1"
hostile.TOLERATE_KNOWN = not STRICT
FENCE = hostile.Fence(1 << 20)
COUNTS = {"inputs": 0, "opened": 0, "loaded": 0, "skipped": 0}


def TestOneInput(data: bytes) -> None:
    COUNTS["inputs"] += 1
    if COUNTS["inputs"] & (COUNTS["inputs"] - 1) == 0 and COUNTS["inputs"] >= 1024:
        _report()  # libFuzzer ends the process without running atexit handlers
    h = zlib.crc32(data)
    if h & 1 and len(data) >= 64:
        data = hostile.refresh_checksums(data)
    if not STRICT and hostile.known_trouble(data):
        COUNTS["skipped"] += 1
        return
    placement = (h >> 2) % 3
    buf = data if placement == 0 else FENCE.place(data, at_end=placement == 1)
    stats = hostile.exercise(buf, verify=bool(h & 2), budget=300)
    COUNTS["opened"] += stats["opened"]
    COUNTS["loaded"] += stats["loaded"]


@atexit.register
def _report() -> None:
    print(f"fuzz_archive: {COUNTS}, known bugs tolerated: {hostile.KNOWN_HITS}",
          file=sys.stderr, flush=True)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
