#!/usr/bin/env python3
"""Write the seed corpus: one small golden archive per node type.

    python fuzz/make_corpus.py            # (re)writes fuzz/corpus/*.bfa
    python fuzz/make_corpus.py --check    # exit 1 if the committed corpus is stale

The values are defined in tests/support/hostile.py (``golden_values``): every slot
tag (None, bools, int, bigint, float, short and long str and bytes, list,
tuple, dict with str/int/bytes/bigint keys, set, frozenset, ndarray, date,
datetime, time, timedelta, uuid, decimal, complex, NumPy scalar, table,
model), arrays of many dtypes and layouts, tables with every column kind
and null masks, and LZ4-compressed archives (LZ4 and raw chunks, external
array and bytes payloads). Uncompressed ones are also written re-framed
without checksums (``*.plain.bfa``). The writer is deterministic, so the
files are reproducible byte for byte.
"""
from __future__ import annotations

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
# Run as a script: sys.path[0] is fuzz/, so the repository root goes first to
# import tests.support.hostile.
sys.path.insert(0, str(HERE.parent))

from tests.support import hostile  # noqa: E402

CORPUS = HERE / "corpus"


def main(argv: list[str]) -> int:
    archives = hostile.golden()
    if "--check" in argv:
        stale = [name for name, data in archives.items()
                 if not (CORPUS / f"{name}.bfa").is_file()
                 or (CORPUS / f"{name}.bfa").read_bytes() != data]
        if stale:
            print("stale corpus files:", ", ".join(stale))
            return 1
        print(f"corpus up to date: {len(archives)} files")
        return 0
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.glob("*.bfa"):
        old.unlink()
    total = 0
    for name, data in archives.items():
        (CORPUS / f"{name}.bfa").write_bytes(data)
        total += len(data)
    print(f"wrote {len(archives)} archives, {total} bytes, to {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
