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


def side_by_side(what: str, a, b, n: int, target: float) -> None:
    samples = H.measure_group({"a": a, "b": b}, H.Config(repeats=n, slow_repeats=n))
    ma, mb = H.median(samples["a"]), H.median(samples["b"])
    print(f"{what}: {ma * 1e3:.1f} ms against {mb * 1e3:.1f} ms, ratio {ma / mb:.3f} ({n} each, interleaved; "
          f"target <= {target})")


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="bfa-ab-") as d:
        arrays = C.make_arrays((40 if quick else 400) * H.MiB, np.random.default_rng(C.SEED))
        side_by_side(f"arrays {sum(a.nbytes for a in arrays.values()) / H.MiB:.0f} MiB: bfa.dump(fsync=False), "
                     "np.save", lambda: bfa.dump(arrays, os.path.join(d, "a.bfa"), fsync=False),
                     lambda: [np.save(os.path.join(d, f"{k}.npy"), v) for k, v in arrays.items()], 3 if quick else 15,
                     1.2)
        del arrays
        path = os.path.join(d, "records.bfa")
        bfa.dump({"meta": dict(C.META), "users": C.make_users(10_000 if quick else 100_000, random.Random(C.SEED))},
                 path, fsync=False)
        side_by_side("records: bfa.load, verify (default) / verify=False", lambda: bfa.load(path),
                     lambda: bfa.load(path, verify=False), 3 if quick else 31, 1.05)
