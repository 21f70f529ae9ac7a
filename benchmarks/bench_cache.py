"""Cache benchmark: bfa.memoize against joblib.Memory(mmap_mode="r") on the same function.

Run (from the repository root):

    pip install -e . joblib
    python benchmarks/bench_cache.py            # about a minute on 2 cores
    python benchmarks/bench_cache.py --quick    # 40 MB result, 2,000 entries, a few seconds

What it measures, in one run, each figure a median over repeated calls (min and max shown too;
benchmarks/harness.py's method, the two caches sampled round-robin):

  hit     a memoized call f(100, 7) returning a 400 MB float32 array, the cache warm (file in the page cache):
          bfa returns a read-only view of the mapped entry, joblib a np.memmap. Also: the same plus the sum of
          one row, and a function returning {"emb": <the array>, "meta": {...}} followed by ["emb"].
  miss    the first call, minus the function's own time (it returns a global array, so its own time is ~0):
          hashing the arguments and writing the result. bfa.dump fsyncs the file and its directory (atomic
          publish); joblib does not fsync: the figure for bfa includes two fsyncs.
  flat    the hit time of a small memoized result with 10 entries in the cache directory, then with 10,000
          (entries written directly as valid archives, without fsync, to build the directory quickly); the
          same for joblib (its entries made by calling the function).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bfast_archive as bfa  # noqa: E402
from benchmarks import harness as H  # noqa: E402

try:
    import joblib
except ImportError:  # pragma: no cover
    sys.exit("bench_cache.py needs joblib: pip install joblib")

MiB = H.MiB
SETTINGS = {  # name: (full, quick); nbytes: the memoized result; many: entries in the "flat" directory
    "nbytes": (400 * MiB, 40 * MiB), "many": (10_000, 2_000), "repeats": (50, 30), "slow_repeats": (50, 30),
    "miss_repeats": (10, 6), "flat_repeats": (200, 50), "scan_repeats": (10, 10), "joblib_flat": (True, True),
    "dir": (None, None),
}
LABELS = {  # metric: label, also the order of the rows
    "hit": "hit", "first_hit": "hit, entry not yet open in the process", "row": "hit + sum of one row",
    "dict": "hit of a dict, then ['emb']", "own": "the function alone (returns a global)",
    "miss": "miss (hash + write; bfa: + 2 fsyncs)", "few": "hit, 10 entries", "many": "hit, {many:,} entries",
    "few_first": "hit, 10 entries, entry not yet open", "many_first": "hit, {many:,} entries, entry not yet open",
    "scan_miss": "miss + rescan (max_bytes), {many:,} entries",
}


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

def group(res: H.Results, metric: str, fns: dict, cfg: H.Config, **kwargs) -> None:
    for peer, samples in H.measure_group(fns, cfg, **kwargs).items():
        res.add(samples, metric=metric, peer=peer)


def bench_big(work: Path, cfg: H.Config, res: H.Results) -> None:
    global BIG
    H.log(f"building a {cfg.nbytes / MiB:.0f} MiB float32 array")
    BIG = np.random.default_rng(7).standard_normal(cfg.nbytes // 4, dtype=np.float32).reshape(-1, 256)
    row = BIG.shape[0] // 2
    bfa_cache = bfa.Cache(work / "bfa-big")
    job_mem = joblib.Memory(work / "joblib-big", mmap_mode="r", verbose=0)
    bfa_f, job_f = bfa_cache.memoize(compute), job_mem.cache(compute)
    bfa_d, job_d = bfa_cache.memoize(compute_dict), job_mem.cache(compute_dict)

    def clear():
        bfa_cache.clear()
        job_mem.clear(warn=False)

    H.log("misses")
    misses = H.Config(cfg, repeats=cfg.miss_repeats, slow_repeats=cfg.miss_repeats)
    group(res, "miss", {"bfa": lambda _: bfa_f(100, 7), "joblib": lambda _: job_f(100, 7)}, misses, setup=clear)
    res.add(H.measure(lambda: compute(100, 7), H.Config(cfg, repeats=5)), metric="own", peer="function")
    real_fsync = os.fsync  # the share of bfa.dump's two fsyncs: the same misses with os.fsync patched out
    os.fsync = lambda fd: None
    try:
        group(res, "miss", {"bfa, fsync patched out": lambda _: bfa_f(100, 7)}, misses, setup=clear)
    finally:
        os.fsync = real_fsync

    H.log("hits")
    bfa_f(100, 7), job_f(100, 7), bfa_d(100, 7), job_d(100, 7)  # their misses

    def first_hit():  # as in a process that has not opened the entry yet
        bfa_cache._mapped.clear()
        return bfa_f(100, 7)

    group(res, "hit", {"bfa": lambda: bfa_f(100, 7), "joblib": lambda: job_f(100, 7)}, cfg)
    group(res, "first_hit", {"bfa": first_hit}, cfg)
    group(res, "row", {"bfa": lambda: float(bfa_f(100, 7)[row].sum()),
                       "joblib": lambda: float(job_f(100, 7)[row].sum())}, cfg)
    group(res, "dict", {"bfa": lambda: bfa_d(100, 7)["emb"], "joblib": lambda: job_d(100, 7)["emb"]}, cfg)
    a, b = bfa_f(100, 7), job_f(100, 7)
    assert a.shape == b.shape == BIG.shape and np.array_equal(a[row], b[row])
    assert not a.flags.writeable and isinstance(b, np.memmap)
    assert np.array_equal(bfa_d(100, 7)["emb"][row], BIG[row])
    del a, b
    BIG = None
    clear()


def _fill_bfa(cache: bfa.Cache, wrapper, start: int, stop: int) -> None:
    """Write valid entries for small(i) straight to their files (no fsync)."""
    for i in range(start, stop):
        key = wrapper.key(i)
        with open(cache.path(key), "wb") as f:
            f.write(bfa.dumps({"key": key, "value": small(i)}))


def bench_flat(work: Path, cfg: H.Config, res: H.Results) -> None:
    cache = bfa.Cache(work / "bfa-flat")
    bfa_f = cache.memoize(small)
    job_mem = joblib.Memory(work / "joblib-flat", mmap_mode="r", verbose=0)
    job_f = job_mem.cache(small)
    flat, probe, many = H.Config(cfg, repeats=cfg.flat_repeats), 3, cfg.many

    def first_hit():
        cache._mapped.clear()
        return bfa_f(probe)["name"]

    def hits(size: str) -> None:
        fns = {"bfa": lambda: bfa_f(probe)["name"]}
        if cfg.joblib_flat:
            fns["joblib"] = lambda: job_f(probe)["name"]
        group(res, size, fns, flat)
        group(res, f"{size}_first", {"bfa": first_hit}, flat)

    _fill_bfa(cache, bfa_f, 0, 10)
    for i in range(10):
        job_f(i)
    assert len(cache) == 10
    hits("few")
    H.log(f"filling the directories to {many:,} entries")
    t0 = time.perf_counter()
    _fill_bfa(cache, bfa_f, 10, many)
    fill = f"bfa {time.perf_counter() - t0:.1f} s written directly"
    assert len(cache) == many
    if cfg.joblib_flat:
        t0 = time.perf_counter()
        for i in range(10, many):
            job_f(i)
        fill += f"; joblib {time.perf_counter() - t0:.1f} s by calling the function"
    res.note(f"filling the directories: {fill}")
    hits("many")
    assert bfa_f(probe)["name"] == "entry-3" and cache.stats()["entries"] == many

    # a miss with max_bytes set and `many` entries: a publish rescans the directory
    bounded = bfa.Cache(work / "bfa-flat", max_bytes=1 << 40)
    bounded_f = bounded.memoize(small)
    fresh = iter(range(many + 1, 1 << 62))

    def miss_bounded():
        bounded._estimate = None  # force the rescan that each process does
        bounded_f(next(fresh))

    group(res, "scan_miss", {"bfa": miss_bounded}, H.Config(cfg, repeats=cfg.scan_repeats))
    shutil.rmtree(work / "bfa-flat", ignore_errors=True)
    shutil.rmtree(work / "joblib-flat", ignore_errors=True)


def run(cfg: H.Config) -> dict:
    res = H.Results()
    work = Path(tempfile.mkdtemp(prefix="bfa-bench-cache-", dir=cfg.dir))
    try:
        bench_big(work, cfg, res)
        bench_flat(work, cfg, res)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = sorted(res.rows, key=lambda r: list(LABELS).index(r["metric"]))
    H.print_rows(f"== memoized f(100, 7) returning a {cfg.nbytes / MiB:.0f} MiB float32 array, warm page cache; "
                 f"then a small result (a dict of 3 values), 10 vs {cfg.many:,} entries in the directory", rows,
                 lambda r: LABELS[r["metric"]].format(many=cfg.many))
    for text in res.notes:
        print(f"  ({text})")

    def med(metric, peer="bfa"):
        return res.stat(metric=metric, peer=peer)

    own, many = med("own", "function"), f"{cfg.many:,}"
    ob, oj, on = med("miss") - own, med("miss", "joblib") - own, med("miss", "bfa, fsync patched out") - own
    print("\nratios (medians)")
    print(f"  hit: joblib / bfa                       {med('hit', 'joblib') / med('hit'):8.1f}x   (target: >= 20x)")
    print(f"  hit, entry not yet open: joblib / bfa   {med('hit', 'joblib') / med('first_hit'):8.1f}x")
    print(f"  hit + one row: joblib / bfa             {med('row', 'joblib') / med('row'):8.1f}x")
    print(f"  dict hit, then ['emb']: joblib / bfa    {med('dict', 'joblib') / med('dict'):8.1f}x")
    print(f"  miss overhead: bfa / joblib             {ob / oj:8.2f}x   (bfa {H.fmt_seconds(ob)}, joblib "
          f"{H.fmt_seconds(oj)}; {cfg.nbytes / MiB / ob:.0f} vs {cfg.nbytes / MiB / oj:.0f} MiB/s)")
    print(f"  miss overhead, no fsync: bfa / joblib   {on / oj:8.2f}x")
    print(f"  hit, {many} / 10 entries, bfa           {med('many') / med('few'):8.2f}x   (target: flat, ~1x)")
    print(f"  hit, {many} / 10 entries, bfa, not open {med('many_first') / med('few_first'):6.2f}x")
    if cfg.joblib_flat:
        print(f"  hit, {many} / 10 entries, joblib        {med('many', 'joblib') / med('few', 'joblib'):8.2f}x")
        print(f"  small hit: joblib / bfa ({many} entries)  {med('many', 'joblib') / med('many'):8.1f}x")
    print()
    evaluated = [H.check("hit: joblib / bfa", res.ratio({"metric": "hit", "peer": "joblib"},
                                                        {"metric": "hit", "peer": "bfa"}), 20, ">=")]
    H.print_targets("issue 6", evaluated)
    return {"results": res.rows, "targets": evaluated, "notes": res.notes}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run, options=[
        ("--dir", {"help": "where to put the caches (default: a temp dir)"}, lambda v: {"dir": v}),
        ("--no-joblib-flat", {"action": "store_true", "help": "skip filling joblib's cache with 10,000 entries"},
         lambda v: {"joblib_flat": not v})]))
