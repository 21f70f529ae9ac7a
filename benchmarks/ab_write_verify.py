"""python benchmarks/ab_write_verify.py [--quick] -- two write/verify figures, each side by side, medians:

1. ``bfa.dump(fsync=False)`` of the core 'arrays' workload (400 MiB, bench_core.make_arrays) against ``np.save``
   of each array to its own .npy (no fsync either); target <= 1.2x;
2. ``bfa.load`` of the records workload (100,000 user dicts + meta) with its checksums verified (the default)
   against ``verify=False``; target <= 1.05x.

Timing: benchmarks/harness.py's method, the two sides sampled round-robin; warm page cache, files in a
temporary directory removed at the end.  --quick: 40 MiB, 10,000 users, 3 samples (a smoke run).
"""

import os
import random
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bfast_archive as bfa  # noqa: E402
from benchmarks import bench_core as C  # noqa: E402
from benchmarks import harness as H  # noqa: E402


def side_by_side(a, b, n: int) -> tuple[float, float]:
    samples = H.measure_group({"a": a, "b": b}, H.Config(repeats=n, slow_repeats=n))
    return H.median(samples["a"]), H.median(samples["b"])


def write_arrays(d: str, quick: bool) -> None:
    arrays = C.make_arrays((40 if quick else 400) * H.MiB, np.random.default_rng(C.SEED))

    def npsave():
        for k, v in arrays.items():
            np.save(os.path.join(d, f"{k}.npy"), v)

    n, mib = 3 if quick else 15, sum(a.nbytes for a in arrays.values()) / H.MiB
    ma, mn = side_by_side(lambda: bfa.dump(arrays, os.path.join(d, "a.bfa"), fsync=False), npsave, n)
    print(f"arrays {mib:.0f} MiB: bfa.dump(fsync=False) median {ma * 1e3:.1f} ms, np.save {mn * 1e3:.1f} ms, "
          f"ratio {ma / mn:.3f} ({n} each, interleaved; target <= 1.2)")


def load_verify(d: str, quick: bool) -> None:
    obj = {"meta": dict(C.META), "users": C.make_users(10_000 if quick else 100_000, random.Random(C.SEED))}
    path, n = os.path.join(d, "records.bfa"), 3 if quick else 31
    bfa.dump(obj, path, fsync=False)
    mv, mn = side_by_side(lambda: bfa.load(path), lambda: bfa.load(path, verify=False), n)
    print(f"records load: verify {mv * 1e3:.1f} ms, verify=False {mn * 1e3:.1f} ms, ratio {mv / mn:.3f} "
          f"({n} each, interleaved; target <= 1.05)")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bfa-ab-") as tmp:
        write_arrays(tmp, "--quick" in sys.argv[1:])
        load_verify(tmp, "--quick" in sys.argv[1:])
