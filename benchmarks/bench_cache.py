"""Cache benchmark: bfa.memoize against joblib.Memory(mmap_mode="r") on the same function.

  hit     a memoized f(100, 7) returning a 400 MB float32 array, cache warm (page cache warm): bfa returns a
          read-only view of the mapped entry, joblib a np.memmap; also + the sum of one row, and a function
          returning {"emb": <the array>, "meta": {...}} followed by ["emb"].
  miss    the first call, minus the function's own time (~0: it returns a global): hashing the arguments and
          writing the result; bfa.dump fsyncs the file and its directory, joblib does not fsync (also shown:
          bfa with os.fsync patched out).
  flat    the hit time of a small result with 10 entries in the cache directory, then with 10,000 (bfa's
          written directly as valid archives, without fsync; joblib's by calling the function).
Timing: benchmarks/harness.py's method, the two caches sampled round-robin.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bfast_archive as bfa  # noqa: E402
from benchmarks import harness as H  # noqa: E402

MiB = H.MiB
SETTINGS = {  # name: (full, quick); nbytes: the memoized result; many: entries in the "flat" directory
    "nbytes": (400 * MiB, 40 * MiB), "many": (10_000, 1_000), "repeats": (50, 10), "slow_repeats": (50, 10),
    "miss_repeats": (10, 3), "flat_repeats": (200, 20), "scan_repeats": (10, 5),
}
LABELS = {  # metric: label, also the order of the rows
    "hit": "hit", "first_hit": "hit, entry not yet open in the process", "row": "hit + sum of one row",
    "dict": "hit of a dict, then ['emb']", "own": "the function alone (returns a global)",
    "miss": "miss (hash + write; bfa: + 2 fsyncs)", "few": "hit, 10 entries", "many": "hit, {many:,} entries",
    "few_first": "hit, 10 entries, entry not yet open", "many_first": "hit, {many:,} entries, entry not yet open",
    "scan_miss": "miss + rescan (max_bytes), {many:,} entries",
}
BIG: np.ndarray | None = None


def compute(n: int, seed: int) -> np.ndarray:
    """The memoized function: returns the global, precomputed array (its own cost ~0: a miss is overhead)."""
    return BIG


def compute_dict(n: int, seed: int) -> dict:
    return {"emb": BIG, "meta": {"n": n, "seed": seed, "model": "base"}}


def small(i: int) -> dict:
    return {"i": i, "name": f"entry-{i}", "v": [i, i + 1, i + 2]}


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
    res.group({"bfa": lambda _: bfa_f(100, 7), "joblib": lambda _: job_f(100, 7)}, misses, clear, metric="miss")
    res.add(H.measure(lambda: compute(100, 7), H.Config(cfg, repeats=5)), metric="own", peer="function")
    real_fsync = os.fsync  # the share of bfa.dump's two fsyncs: the same misses with os.fsync patched out
    os.fsync = lambda fd: None
    try:
        res.group({"bfa, fsync patched out": lambda _: bfa_f(100, 7)}, misses, clear, metric="miss")
    finally:
        os.fsync = real_fsync

    H.log("hits")
    bfa_f(100, 7), job_f(100, 7), bfa_d(100, 7), job_d(100, 7)  # their misses

    def first_hit():  # as in a process that has not opened the entry yet
        bfa_cache._mapped.clear()
        return bfa_f(100, 7)

    res.group({"bfa": lambda: bfa_f(100, 7), "joblib": lambda: job_f(100, 7)}, cfg, metric="hit")
    res.group({"bfa": first_hit}, cfg, metric="first_hit")
    res.group({"bfa": lambda: float(bfa_f(100, 7)[row].sum()), "joblib": lambda: float(job_f(100, 7)[row].sum())},
              cfg, metric="row")
    res.group({"bfa": lambda: bfa_d(100, 7)["emb"], "joblib": lambda: job_d(100, 7)["emb"]}, cfg, metric="dict")
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
    job_f = joblib.Memory(work / "joblib-flat", mmap_mode="r", verbose=0).cache(small)
    flat, probe, many = H.Config(cfg, repeats=cfg.flat_repeats), 3, cfg.many

    def first_hit():
        cache._mapped.clear()
        return bfa_f(probe)["name"]

    def hits(size: str) -> None:
        res.group({"bfa": lambda: bfa_f(probe)["name"], "joblib": lambda: job_f(probe)["name"]}, flat, metric=size)
        res.group({"bfa": first_hit}, flat, metric=f"{size}_first")

    _fill_bfa(cache, bfa_f, 0, 10)
    for i in range(10):
        job_f(i)
    assert len(cache) == 10
    hits("few")
    H.log(f"filling the directories to {many:,} entries")
    t0 = time.perf_counter()
    _fill_bfa(cache, bfa_f, 10, many)
    filled = time.perf_counter() - t0
    assert len(cache) == many
    t0 = time.perf_counter()
    for i in range(10, many):
        job_f(i)
    res.note(f"filling the directories: bfa {filled:.1f} s written directly; joblib {time.perf_counter() - t0:.1f} s "
             "by calling the function")
    hits("many")
    assert bfa_f(probe)["name"] == "entry-3" and cache.stats()["entries"] == many

    # a miss with max_bytes set and `many` entries: a publish rescans the directory
    bounded = bfa.Cache(work / "bfa-flat", max_bytes=1 << 40)
    bounded_f = bounded.memoize(small)
    fresh = iter(range(many + 1, 1 << 62))

    def miss_bounded():
        bounded._estimate = None  # force the rescan that each process does
        bounded_f(next(fresh))

    res.group({"bfa": miss_bounded}, H.Config(cfg, repeats=cfg.scan_repeats), metric="scan_miss")


def run(cfg: H.Config, res: H.Results) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bfa-bench-cache-"))
    try:
        bench_big(work, cfg, res)
        bench_flat(work, cfg, res)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = sorted(res.rows, key=lambda r: list(LABELS).index(r["metric"]))
    H.print_rows(f"== memoized f(100, 7) returning a {cfg.nbytes / MiB:.0f} MiB float32 array, warm page cache; "
                 f"then a small result (a dict of 3 values), 10 vs {cfg.many:,} entries in the directory", rows,
                 lambda r: LABELS[r["metric"]].format(many=cfg.many))

    def med(metric, peer="bfa"):
        return res.stat(metric=metric, peer=peer)

    own, many = med("own", "function"), f"{cfg.many:,}"
    ob, oj, on = (med("miss", peer) - own for peer in ("bfa", "joblib", "bfa, fsync patched out"))
    print("ratios of medians across rows (those within a metric: the table's ratio column)")
    for label, value, after in (
        ("hit, entry not yet open: joblib / bfa", med("hit", "joblib") / med("first_hit"), ""),
        ("miss overhead: bfa / joblib", ob / oj, f"   (bfa {H.fmt_seconds(ob)}, joblib {H.fmt_seconds(oj)}; "
                                                 f"{cfg.nbytes / MiB / ob:.0f} vs {cfg.nbytes / MiB / oj:.0f} MiB/s)"),
        ("miss overhead, no fsync: bfa / joblib", on / oj, ""),
        (f"hit, {many} / 10 entries, bfa", med("many") / med("few"), "   (target: flat, ~1x)"),
        (f"hit, {many} / 10 entries, bfa, not open", med("many_first") / med("few_first"), ""),
        (f"hit, {many} / 10 entries, joblib", med("many", "joblib") / med("few", "joblib"), ""),
    ):
        print(f"  {label:<42} {value:8.2f}x{after}")
    print()
    res.print_targets("cache hit", [res.target("hit: joblib / bfa", {"metric": "hit", "peer": "joblib"},
                                               {"metric": "hit", "peer": "bfa"}, 20, ">=")])
    return {}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run))
