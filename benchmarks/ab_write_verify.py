"""python benchmarks/ab_write_verify.py -- issue 13's two figures, each side by side
(the two sides interleaved call by call), medians:

1. ``bfa.dump(fsync=False)`` of the core 'arrays' workload (400 MiB, bench_core.make_arrays)
   against ``np.save`` of each array to its own .npy (no fsync either); target <= 1.2x;
2. ``bfa.load`` of the records workload (100,000 user dicts + meta) with its checksums
   verified (the default) against ``verify=False``; target <= 1.05x.

Warm page cache, files in a temporary directory removed at the end.
"""
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bfast_archive as bfa  # noqa: E402
from benchmarks import bench_core as C  # noqa: E402


def timed(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(a, b, n: int) -> tuple[float, float]:
    a(), b()  # warm-up
    ta, tb = [], []
    for _ in range(n):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def write_arrays(d: str) -> None:
    arrays = C.make_arrays(400 * 2**20, np.random.default_rng(C.SEED))

    def npsave():
        for k, v in arrays.items():
            np.save(os.path.join(d, f"{k}.npy"), v)

    mb = sum(a.nbytes for a in arrays.values()) / 2**20
    ma, mn = side_by_side(lambda: bfa.dump(arrays, os.path.join(d, "a.bfa"), fsync=False), npsave, 15)
    print(f"arrays {mb:.0f} MiB: bfa.dump(fsync=False) median {ma * 1e3:.1f} ms, np.save "
          f"{mn * 1e3:.1f} ms, ratio {ma / mn:.3f} (15 each, interleaved; target <= 1.2)")


def load_verify(d: str) -> None:
    obj = {"meta": dict(C.META), "users": C.make_users(100_000, random.Random(C.SEED))}
    path = os.path.join(d, "records.bfa")
    bfa.dump(obj, path, fsync=False)
    mv, mn = side_by_side(lambda: bfa.load(path), lambda: bfa.load(path, verify=False), 31)
    print(f"records load: verify {mv * 1e3:.1f} ms, verify=False {mn * 1e3:.1f} ms, ratio "
          f"{mv / mn:.3f} (31 each, interleaved; target <= 1.05)")


if __name__ == "__main__":
    tmp = tempfile.mkdtemp(prefix="bfa-ab-")
    try:
        write_arrays(tmp)
        load_verify(tmp)
    finally:
        shutil.rmtree(tmp)
