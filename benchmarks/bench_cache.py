"""Cache benchmark: bfa.memoize against joblib.Memory(mmap_mode="r") on the same function.

Run (from the repository root):

    pip install -e . joblib
    python benchmarks/bench_cache.py            # about a minute on 2 cores
    python benchmarks/bench_cache.py --quick    # 40 MB result, 2,000 entries, a few seconds

What it measures, in one run, each figure a median over repeated calls (min and
max shown too):

  hit     a memoized call f(100, 7) returning a 400 MB float32 array, the cache
          warm (file in the page cache): bfa returns a read-only view of the mapped
          entry, joblib a np.memmap. Also: the same plus the sum of one row, and a
          function returning {"emb": <the array>, "meta": {...}} followed by ["emb"].
  miss    the first call, minus the function's own time (it returns a global array,
          so its own time is ~0): hashing the arguments and writing the result.
          bfa.dump fsyncs the file and its directory (atomic publish); joblib
          does not fsync: the figure for bfa includes two fsyncs.
  flat    the hit time of a small memoized result with 10 entries in the cache
          directory, then with 10,000 (entries written directly as valid archives,
          without fsync, to build the directory quickly); the same for joblib
          (its entries made by calling the function).
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bfast_archive as bfa  # noqa: E402

try:
    import joblib
except ImportError:  # pragma: no cover
    sys.exit("bench_cache.py needs joblib: pip install joblib")

MiB = 1 << 20


def stats(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def fmt(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:8.1f} µs"
    if t < 1:
        return f"{t * 1e3:8.2f} ms"
    return f"{t:8.3f} s "


def line(label: str, samples: list[float]) -> float:
    med, lo, hi = stats(samples)
    print(f"  {label:<44} median {fmt(med)}   min {fmt(lo)}   max {fmt(hi)}   (n={len(samples)})")
    return med


def timed(fn, repeats: int, min_batch: float = 0.01) -> list[float]:
    """Per-call times of ``fn()``: ``repeats`` samples after a discarded warm-up,
    each a batch of calls lasting >= ``min_batch`` seconds (one call if it is
    slower than that), divided by the batch size; gc.collect() between samples,
    outside the timing."""
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    batch = max(1, int(min_batch / max(once, 1e-7)))
    out = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter() - t0) / batch)
    return out


def progress(text: str) -> None:
    print(f"[bench_cache] {text}", file=sys.stderr, flush=True)


# -- the functions both caches memoize ----------------------------------------------------

BIG: np.ndarray | None = None


def compute(n: int, seed: int) -> np.ndarray:
    """The memoized function: returns the (global, precomputed) big array, so that
    its own cost is ~0 and a miss measures the cache's overhead."""
    return BIG


def compute_dict(n: int, seed: int) -> dict:
    """The same array inside a dict with a little metadata."""
    return {"emb": BIG, "meta": {"n": n, "seed": seed, "model": "base"}}


def small(i: int) -> dict:
    return {"i": i, "name": f"entry-{i}", "v": [i, i + 1, i + 2]}


# -- the runs ---------------------------------------------------------------------------------

def bench_big(work: Path, nbytes: int, repeats: int) -> dict:
    global BIG
    progress(f"building a {nbytes / MiB:.0f} MiB float32 array")
    BIG = np.random.default_rng(7).standard_normal(nbytes // 4, dtype=np.float32)
    BIG = BIG.reshape(-1, 256)
    row = BIG.shape[0] // 2
    results = {}
    bfa_cache = bfa.Cache(work / "bfa-big")
    job_mem = joblib.Memory(work / "joblib-big", mmap_mode="r", verbose=0)
    bfa_f, job_f = bfa_cache.memoize(compute), job_mem.cache(compute)
    bfa_d, job_d = bfa_cache.memoize(compute_dict), job_mem.cache(compute_dict)

    progress("misses")
    miss_b, miss_j = [], []
    for _ in range(max(3, repeats // 5)):
        bfa_cache.clear()
        job_mem.clear(warn=False)
        gc.collect()
        t0 = time.perf_counter()
        r = bfa_f(100, 7)
        miss_b.append(time.perf_counter() - t0)
        del r
        gc.collect()
        t0 = time.perf_counter()
        r = job_f(100, 7)
        miss_j.append(time.perf_counter() - t0)
        del r
    own = timed(lambda: compute(100, 7), 5)
    # the share of bfa.dump's two fsyncs: the same misses with os.fsync patched out
    nosync = []
    real_fsync = os.fsync
    os.fsync = lambda fd: None
    try:
        for _ in range(len(miss_b)):
            bfa_cache.clear()
            gc.collect()
            t0 = time.perf_counter()
            r = bfa_f(100, 7)
            nosync.append(time.perf_counter() - t0)
            del r
    finally:
        os.fsync = real_fsync

    progress("hits")
    bfa_d(100, 7), job_d(100, 7)  # their misses
    hit_b = timed(lambda: bfa_f(100, 7), repeats)
    hit_j = timed(lambda: job_f(100, 7), repeats)

    def first_hit():  # as in a process that has not opened the entry yet
        bfa_cache._mapped.clear()
        return bfa_f(100, 7)
    first_b = timed(first_hit, repeats)
    row_b = timed(lambda: float(bfa_f(100, 7)[row].sum()), repeats)
    row_j = timed(lambda: float(job_f(100, 7)[row].sum()), repeats)
    dict_b = timed(lambda: bfa_d(100, 7)["emb"], repeats)
    dict_j = timed(lambda: job_d(100, 7)["emb"], repeats)
    a, b = bfa_f(100, 7), job_f(100, 7)
    assert a.shape == b.shape == BIG.shape and np.array_equal(a[row], b[row])
    assert not a.flags.writeable and isinstance(b, np.memmap)
    assert np.array_equal(bfa_d(100, 7)["emb"][row], BIG[row])
    del a, b

    print(f"\nmemoized f(100, 7) returning a {nbytes / MiB:.0f} MiB float32 array "
          f"(shape {BIG.shape}); warm page cache")
    results["hit_bfa"] = line("hit, bfa.memoize", hit_b)
    results["hit_joblib"] = line("hit, joblib.Memory(mmap_mode='r')", hit_j)
    results["first_bfa"] = line("hit, bfa, entry not yet open in the process", first_b)
    results["row_bfa"] = line("hit + sum of one row, bfa", row_b)
    results["row_joblib"] = line("hit + sum of one row, joblib", row_j)
    results["dict_bfa"] = line("hit of a dict, then ['emb'], bfa", dict_b)
    results["dict_joblib"] = line("the same, joblib", dict_j)
    results["own"] = line("the function alone (returns a global)", own)
    results["miss_bfa"] = line("miss (hash + write + 2 fsyncs), bfa", miss_b)
    results["miss_nosync"] = line("miss, bfa, fsync patched out (for its share)", nosync)
    results["miss_joblib"] = line("miss (hash + write), joblib", miss_j)
    BIG = None
    bfa_cache.clear()
    job_mem.clear(warn=False)
    return results


def _fill_bfa(cache: bfa.Cache, wrapper, start: int, stop: int) -> None:
    """Write valid entries for small(i) straight to their files (no fsync)."""
    for i in range(start, stop):
        key = wrapper.key(i)
        data = bfa.dumps({"key": key, "value": small(i)})
        with open(cache.path(key), "wb") as f:
            f.write(data)


def bench_flat(work: Path, many: int, repeats: int, joblib_too: bool) -> dict:
    results = {}
    cache = bfa.Cache(work / "bfa-flat")
    bfa_f = cache.memoize(small)
    job_mem = joblib.Memory(work / "joblib-flat", mmap_mode="r", verbose=0)
    job_f = job_mem.cache(small)
    probe = 3

    def hits_bfa():
        return timed(lambda: bfa_f(probe)["name"], repeats)

    def first_hits_bfa():
        def call():
            cache._mapped.clear()
            return bfa_f(probe)["name"]
        return timed(call, repeats)

    def hits_job():
        return timed(lambda: job_f(probe)["name"], repeats)

    _fill_bfa(cache, bfa_f, 0, 10)
    for i in range(10):
        job_f(i)
    assert len(cache) == 10
    few_b, few_first = hits_bfa(), first_hits_bfa()
    few_j = hits_job() if joblib_too else None

    progress(f"filling the directories to {many:,} entries")
    t0 = time.perf_counter()
    _fill_bfa(cache, bfa_f, 10, many)
    fill_b = time.perf_counter() - t0
    assert len(cache) == many
    fill_j = None
    if joblib_too:
        t0 = time.perf_counter()
        for i in range(10, many):
            job_f(i)
        fill_j = time.perf_counter() - t0
    many_b, many_first = hits_bfa(), first_hits_bfa()
    many_j = hits_job() if joblib_too else None
    assert bfa_f(probe)["name"] == "entry-3" and cache.stats()["entries"] == many

    # a miss with max_bytes set and `many` entries: a publish rescans the directory
    bounded = bfa.Cache(work / "bfa-flat", max_bytes=1 << 40)
    bounded_f = bounded.memoize(small)

    def miss_bounded():
        miss_bounded.i += 1
        bounded._estimate = None  # force the rescan that each process does
        bounded_f(many + miss_bounded.i)
    miss_bounded.i = 0
    scan = timed(miss_bounded, max(5, repeats // 20))

    print(f"\nhit on a small result (a dict of 3 values), 10 vs {many:,} entries in the "
          f"directory")
    results["few_bfa"] = line("bfa, 10 entries", few_b)
    results["many_bfa"] = line(f"bfa, {many:,} entries", many_b)
    results["few_first"] = line("bfa, 10 entries, entry not yet open", few_first)
    results["many_first"] = line(f"bfa, {many:,} entries, entry not yet open", many_first)
    if joblib_too:
        results["few_joblib"] = line("joblib, 10 entries", few_j)
        results["many_joblib"] = line(f"joblib, {many:,} entries", many_j)
        print(f"  (filling: bfa {fill_b:.1f} s written directly; joblib {fill_j:.1f} s "
              f"by calling the function)")
    results["scan_miss"] = line(f"bfa miss + rescan (max_bytes), {many:,} entries",
                                scan)
    shutil.rmtree(work / "bfa-flat", ignore_errors=True)
    shutil.rmtree(work / "joblib-flat", ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 MB result, 2,000 entries")
    parser.add_argument("--dir", help="where to put the caches (default: a temp dir)")
    parser.add_argument("--no-joblib-flat", action="store_true",
                        help="skip filling joblib's cache with 10,000 entries")
    args = parser.parse_args()
    nbytes = 40 * MiB if args.quick else 400 * MiB
    many = 2_000 if args.quick else 10_000
    repeats = 30 if args.quick else 50

    work = Path(tempfile.mkdtemp(prefix="bfa-bench-cache-", dir=args.dir))
    print(f"bench_cache: {os.cpu_count()} cores, {platform.machine()}, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, joblib {joblib.__version__}, bfast_archive "
          f"{bfa.__version__}; caches in {work}")
    try:
        big = bench_big(work, nbytes, repeats)
        flat = bench_flat(work, many, 200, joblib_too=not args.no_joblib_flat)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nratios (medians)")
    print(f"  hit: joblib / bfa                       {big['hit_joblib'] / big['hit_bfa']:8.1f}x"
          f"   (target: >= 20x)")
    print(f"  hit, entry not yet open: joblib / bfa   {big['hit_joblib'] / big['first_bfa']:8.1f}x")
    print(f"  hit + one row: joblib / bfa             {big['row_joblib'] / big['row_bfa']:8.1f}x")
    print(f"  dict hit, then ['emb']: joblib / bfa    {big['dict_joblib'] / big['dict_bfa']:8.1f}x")
    ob = big["miss_bfa"] - big["own"]
    oj = big["miss_joblib"] - big["own"]
    print(f"  miss overhead: bfa / joblib             {ob / oj:8.2f}x"
          f"   (bfa {fmt(ob).strip()}, joblib {fmt(oj).strip()}; "
          f"{nbytes / MiB / ob:.0f} vs {nbytes / MiB / oj:.0f} MiB/s)")
    on = big["miss_nosync"] - big["own"]
    print(f"  miss overhead, no fsync: bfa / joblib   {on / oj:8.2f}x")
    print(f"  hit, {many:,} / 10 entries, bfa           {flat['many_bfa'] / flat['few_bfa']:8.2f}x"
          f"   (target: flat, ~1x)")
    print(f"  hit, {many:,} / 10 entries, bfa, not open {flat['many_first'] / flat['few_first']:6.2f}x")
    if "many_joblib" in flat:
        print(f"  hit, {many:,} / 10 entries, joblib        "
              f"{flat['many_joblib'] / flat['few_joblib']:8.2f}x")
        print(f"  small hit: joblib / bfa ({many:,} entries)  "
              f"{flat['many_joblib'] / flat['many_bfa']:8.1f}x")


if __name__ == "__main__":
    main()
