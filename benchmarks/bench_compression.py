"""Compression benchmark: issue 3's figures for chunked LZ4, thread scaling and checksums.

Run (from the repository root):

    pip install -e . -r benchmarks/requirements.txt
    python benchmarks/bench_compression.py                 # full run, about 3 minutes on 2 cores
    python benchmarks/bench_compression.py --quick         # small data, fewer repeats, < 30 s
    python benchmarks/bench_compression.py --out res.json  # also write raw samples + medians as JSON

Tables go to stdout, progress to stderr.  Every figure is measured in the run
that prints it, and the target verdicts at the end are computed from its
medians.  MB/s and GB/s are 10**6 and 10**9 bytes per second of *raw* (the
uncompressed archive's) bytes; MiB and GiB are sizes.

Data (deterministic, seeded):
  arrays   256 MiB of mixed array bytes in one dict: "emb" float32 (N, 128)
           embeddings at bfloat16 precision (the low 16 bits of each float are 0,
           as when a bf16 model's output is stored as float32), "ids" int64
           sorted ids below 10**9, "counts" int32 (N, 16) Poisson(3) small counts
  records  bench_core's records workload: {"meta": {...}, "users": 100,000 dicts}
  slice    one 400 MiB float32 (N, 256) array, bfloat16 precision as above
  verify   one 1 GiB uint32 array, uncompressed archive
  random   256 MiB of random bytes (incompressible), one uint8 array

Measurements, each a median of repeated runs (min and max kept):
  compress    bfa.dumps(obj, compression="lz4", threads=t) for t = 1 .. cores and
              2 x cores, against lz4.frame.compress of the same raw bytes (the
              uncompressed archive) in one call; also bfa.dumps(obj) uncompressed
              (the encoding work every dump does, for the records the larger part);
              records only: the LZ4 stage alone, i.e. bfa.dumps of the uncompressed
              archive's bytes as one uint8 array with compression="lz4", threads=t
  decompress  arrays: arch[key] for every array of a compressed archive file
              (decompresses into the array's final buffer), a fresh
              Archive.open(path, threads=t) for every repeat (untimed) so no cache
              helps; records: Archive.open(path, threads=t), which decompresses the
              structure section; against lz4.frame.decompress of the frame
  slice       arch.array("emb")[i:i+100] at random i on a compressed 400 MiB array
              (decodes the one or two 1 MiB chunks holding the rows) against
              arch["emb"] (the whole array, all cores, fresh archive each repeat)
  verify      Archive.verify() of an uncompressed 1 GiB archive, a fresh
              Archive.open for every repeat (the mapping's pages are faulted in by
              verify itself, from the warm page cache), t = 1 .. cores; also
              verify() again on an already faulted-in mapping; reference: np.copyto
              of 1 GiB into a pre-faulted buffer ("memcpy", one thread)
  incompressible  bfa.dump(obj, path, fsync=False) with and without
              compression="lz4" (all cores) on random bytes; also bfa.dumps

"cores" in the tables is the process's CPU time (all threads) over the wall
time, the median over the samples: how many cores a call really kept busy.
On an idle machine threads=2 of perfectly parallel work shows ~2.0; if the
rest of the machine is busy, the threads wait for cores and the wall-clock
speed-up is lower than the work's parallelism.

Method: time.perf_counter; gc stays enabled, gc.collect() before each sample;
one discarded warm-up call per operation; operations under 10 ms are timed in
batches of >= 10 ms.  The archive files live in a temporary directory (page
cache warm: they were just written).  The machine's other load during the run
is measured from /proc/stat and printed: on a shared machine thread scaling
is only as good as the cores left free.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import lz4.frame
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bfast_archive as bfa  # noqa: E402
from benchmarks import _util as U  # noqa: E402
from benchmarks.bench_core import META, make_users  # noqa: E402

KiB, MiB, GiB = 1024, 1024**2, 1024**3
MB, GB = 1e6, 1e9
SEED = 7
CORES = os.cpu_count() or 1
MIN_BATCH_SECONDS = 0.01


@dataclass(frozen=True)
class Config:
    array_bytes: int = 256 * MiB
    users: int = 100_000
    slice_bytes: int = 400 * MiB
    slice_rows: int = 100
    verify_bytes: int = 1 * GiB
    random_bytes: int = 256 * MiB
    repeats: int = 7
    threads: tuple = field(default_factory=lambda: tuple(sorted({*range(1, CORES + 1), 2 * CORES})))


FULL = Config()
QUICK = replace(
    FULL,
    array_bytes=32 * MiB,
    users=20_000,
    slice_bytes=48 * MiB,
    verify_bytes=128 * MiB,
    random_bytes=32 * MiB,
    repeats=3,
    threads=(1, CORES),
)


START = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ==========================================================================
# data
# ==========================================================================


def bf16_floats(shape, rng: np.random.Generator) -> np.ndarray:
    """Standard-normal float32 with the low 16 mantissa bits cleared (bfloat16 precision)."""
    a = rng.standard_normal(shape, dtype=np.float32)
    a.view(np.uint32)[...] &= 0xFFFF0000
    return a


def make_arrays(total_bytes: int, rng: np.random.Generator) -> dict:
    row_bytes = 128 * 4 + 8 + 16 * 4
    n = total_bytes // row_bytes
    return {
        "emb": bf16_floats((n, 128), rng),
        "ids": np.sort(rng.integers(0, 10**9, n, dtype=np.int64)),
        "counts": rng.poisson(3.0, (n, 16)).astype(np.int32),
    }


def make_records(users: int) -> dict:
    return {"meta": dict(META), "users": make_users(users, random.Random(SEED))}


# ==========================================================================
# timing
# ==========================================================================


class Samples(list):
    """Seconds per call, with ``cpu``: this process's CPU seconds (all threads) per call."""

    cpu: list


def cpu_seconds() -> float:
    return time.process_time()  # CLOCK_PROCESS_CPUTIME_ID: all threads, ns resolution (os.times ticks 10 ms)


def timed(fn, repeats: int, setup=None, teardown=None) -> Samples:
    """Seconds per call of fn(state): one discarded warm-up, then ``repeats``
    samples.  ``setup()`` (untimed) makes fn's argument before every sample
    and ``teardown(state)`` (untimed) disposes of it; fast calls without a
    setup are batched to >= MIN_BATCH_SECONDS and reported per call.  The
    process's CPU time is kept beside each sample: CPU / wall is how many
    cores the call kept busy."""
    samples, cpu = Samples(), []
    batch = 1
    for i in range(repeats + 1):
        state = setup() if setup else None
        gc.collect()
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        for _ in range(batch):
            out = fn(state)
        elapsed = time.perf_counter() - t0
        used = cpu_seconds() - c0
        del out
        if teardown:
            teardown(state)
        if i == 0:  # warm-up: also sizes the batch
            if setup is None and elapsed < MIN_BATCH_SECONDS:
                batch = max(1, min(100_000, int(MIN_BATCH_SECONDS / max(elapsed, 1e-9))))
            continue
        samples.append(elapsed / batch)
        cpu.append(used / batch)
    samples.cpu = cpu
    return samples


@dataclass
class Results:
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, dataset: str, metric: str, peer: str, threads, nbytes: int, samples: list, **extra) -> dict:
        row = {
            "dataset": dataset,
            "metric": metric,
            "peer": peer,
            "threads": threads,
            "bytes": nbytes,
            "unit": "s",
            "samples": list(samples),
            **U.summary(samples),
            **extra,
        }
        cpu = getattr(samples, "cpu", None)
        if cpu:  # cores kept busy: CPU seconds over wall seconds, median of the samples
            row["cpu_samples"] = cpu
            row["cores_used"] = U.median([c / w for c, w in zip(cpu, samples, strict=True) if w > 0])
        # throughput from the times: the median's, and from the slowest/fastest sample
        row["mbps"] = {
            "median": nbytes / row["median"] / MB,
            "min": nbytes / row["max"] / MB,
            "max": nbytes / row["min"] / MB,
        }
        self.rows.append(row)
        return row

    def get(self, dataset: str, metric: str, peer: str = "bfa", threads=None) -> dict | None:
        for row in self.rows:
            if (row["dataset"], row["metric"], row["peer"]) == (dataset, metric, peer) and (
                threads is None or row["threads"] == threads
            ):
                return row
        return None


# ==========================================================================
# the measurements
# ==========================================================================


def bench_compress(name: str, obj: dict, cfg: Config, tmp: str, res: Results) -> dict:
    """Compress and decompress throughput of one dataset; returns its facts."""
    plain = bfa.dumps(obj)
    raw = len(plain)
    log(f"{name}: compress ({U.fmt_bytes(raw)} raw)")
    packed = bfa.dumps(obj, compression="lz4")
    for t in cfg.threads:
        res.add(
            name,
            "compress",
            "bfa",
            t,
            raw,
            timed(lambda _, t=t: bfa.dumps(obj, compression="lz4", threads=t), cfg.repeats),
        )
    res.add(name, "encode", "bfa", 1, raw, timed(lambda _: bfa.dumps(obj), cfg.repeats))
    if name == "records":  # the LZ4 stage alone: the same raw bytes, as one array payload
        as_bytes = {"raw": np.frombuffer(plain, np.uint8)}
        for t in cfg.threads:
            res.add(
                name,
                "compress_bytes",
                "bfa",
                t,
                raw,
                timed(lambda _, t=t: bfa.dumps(as_bytes, compression="lz4", threads=t), cfg.repeats),
            )
        del as_bytes
    res.add(name, "compress", "lz4.frame", 1, raw, timed(lambda _: lz4.frame.compress(plain), cfg.repeats))
    frame = lz4.frame.compress(plain)

    log(f"{name}: decompress")
    path = os.path.join(tmp, f"{name}.lz4.bfa")
    bfa.dump(obj, path, compression="lz4", fsync=False)
    keys = [k for k, v in obj.items() if isinstance(v, np.ndarray)]
    with bfa.Archive.open(path) as arch:  # the values come back identical
        for k in keys:
            if not np.array_equal(arch[k], obj[k]):
                raise AssertionError(f"{name}: arch[{k!r}] differs from the original")
        if not keys and arch["users"][len(obj["users"]) // 2]["name"] != obj["users"][len(obj["users"]) // 2]["name"]:
            raise AssertionError(f"{name}: users differ")
    plain = None  # noqa: F841  (drop the reference before the decompress runs)
    gc.collect()

    for t in cfg.threads:
        if keys:  # whole arrays into their final buffers
            per_key = {k: [] for k in keys}

            def read_all(arch, per_key=per_key):
                for k in keys:
                    t0 = time.perf_counter()
                    arch[k]
                    per_key[k].append(time.perf_counter() - t0)

            samples = timed(read_all, cfg.repeats, setup=lambda t=t: bfa.Archive.open(path, threads=t), teardown=_close)
            res.add(
                name, "decompress", "bfa", t, raw, samples, per_key={k: v[1:] for k, v in per_key.items()}
            )  # [0] was the warm-up
        else:  # records: open decompresses the structure section
            samples = timed(lambda _, t=t: _open_close(path, t), cfg.repeats)
            res.add(name, "decompress", "bfa", t, raw, samples, what="Archive.open (decompresses the nodes)")
    res.add(name, "decompress", "lz4.frame", 1, raw, timed(lambda _: lz4.frame.decompress(frame), cfg.repeats))
    os.remove(path)
    return {
        "raw_bytes": raw,
        "bfa_bytes": len(packed),
        "lz4_frame_bytes": len(frame),
        "ratio": raw / len(packed),
        "lz4_frame_ratio": raw / len(frame),
        "array_ratios": _array_ratios(obj) if keys else None,
    }


def _array_ratios(obj: dict) -> dict:
    return {k: v.nbytes / len(bfa.dumps({k: v}, compression="lz4")) for k, v in obj.items()}


def _close(arch) -> None:
    arch.close()


def _open_close(path: str, threads: int) -> None:
    bfa.Archive.open(path, threads=threads).close()


def bench_slice(cfg: Config, tmp: str, res: Results) -> dict:
    rows = cfg.slice_bytes // (256 * 4)
    log(f"slice: building a {U.fmt_bytes(cfg.slice_bytes)} array")
    emb = bf16_floats((rows, 256), np.random.default_rng(SEED + 1))
    path = os.path.join(tmp, "slice.lz4.bfa")
    size = bfa.dump({"emb": emb}, path, compression="lz4", fsync=False)
    rng = random.Random(SEED)
    n = cfg.slice_rows
    starts = [rng.randrange(rows - n) for _ in range(1000)]
    with bfa.Archive.open(path) as arch:
        i = starts[0]
        if not np.array_equal(arch.array("emb")[i : i + n], emb[i : i + n]):
            raise AssertionError("slice differs from the original rows")
        position = iter(starts * 1000)
        log("slice: 100-row slices")
        slice_samples = timed(lambda _: arch.array("emb")[(j := next(position)) : j + n], cfg.repeats * 3)
    log("slice: whole array")
    whole = timed(
        lambda arch: arch["emb"], cfg.repeats, setup=lambda: bfa.Archive.open(path, threads=CORES), teardown=_close
    )
    res.add("slice", "slice", "bfa", CORES, n * 256 * 4, slice_samples, rows=n)
    res.add("slice", "whole", "bfa", CORES, emb.nbytes, whole)
    os.remove(path)
    return {"raw_bytes": emb.nbytes, "bfa_bytes": size, "ratio": emb.nbytes / size, "rows": rows}


def bench_verify(cfg: Config, tmp: str, res: Results) -> dict:
    n = cfg.verify_bytes // 4
    log(f"verify: building a {U.fmt_bytes(cfg.verify_bytes)} archive")
    data = np.arange(n, dtype=np.uint32)
    data *= np.uint32(2654435761)  # cheap, deterministic, not constant
    path = os.path.join(tmp, "verify.bfa")
    size = bfa.dump({"data": data}, path, fsync=False)
    with bfa.Archive.open(path) as arch:
        checked = arch.verify()
    for t in cfg.threads:
        log(f"verify: threads={t}")
        samples = timed(
            lambda arch: arch.verify(),
            cfg.repeats,
            setup=lambda t=t: bfa.Archive.open(path, threads=t),
            teardown=_close,
        )
        res.add("verify", "verify", "bfa", t, checked, samples)
    with bfa.Archive.open(path, threads=CORES) as arch:
        arch.verify()  # faults the whole mapping in
        res.add("verify", "verify_mapped", "bfa", CORES, checked, timed(lambda _: arch.verify(), cfg.repeats))
    dst = np.empty_like(data)
    np.copyto(dst, data)  # fault the destination in
    res.add("verify", "memcpy", "numpy", 1, data.nbytes, timed(lambda _: np.copyto(dst, data), cfg.repeats))
    dst = data = None  # noqa: F841
    os.remove(path)
    return {"file_bytes": size, "checked_bytes": checked}


def bench_incompressible(cfg: Config, tmp: str, res: Results) -> dict:
    log(f"incompressible: {U.fmt_bytes(cfg.random_bytes)} of random bytes")
    blob = np.frombuffer(np.random.default_rng(SEED + 2).bytes(cfg.random_bytes), np.uint8)
    obj = {"blob": blob}
    path = os.path.join(tmp, "random.bfa")
    sizes = {}
    for label, comp in (("plain", None), ("lz4", "lz4")):
        res.add(
            "random",
            f"dump_{label}",
            "bfa",
            CORES,
            blob.nbytes,
            timed(lambda _, comp=comp: bfa.dump(obj, path, compression=comp, fsync=False), cfg.repeats),
        )
        sizes[label] = os.path.getsize(path)
        res.add(
            "random",
            f"dumps_{label}",
            "bfa",
            CORES,
            blob.nbytes,
            timed(lambda _, comp=comp: bfa.dumps(obj, compression=comp), cfg.repeats),
        )
    os.remove(path)
    return {"raw_bytes": blob.nbytes, "plain_file_bytes": sizes["plain"], "lz4_file_bytes": sizes["lz4"]}


# ==========================================================================
# targets (issue 3), computed from this run's medians
# ==========================================================================


def targets(res: Results, facts: dict) -> list[dict]:
    out = []

    def ratio(label, num, den, limit, higher=True, dataset=None):
        a, b = res.get(*num), res.get(*den)
        if a is None or b is None:
            value = None
        elif higher:  # throughput ratio: a's MB/s over b's
            value = b["median"] / a["median"]
        else:  # time ratio
            value = a["median"] / b["median"]
        add(
            label,
            dataset or num[0],
            value,
            limit,
            higher,
            f"{value:.2f}x" if value else "-",
            f"{'>=' if higher else '<='} {limit:g}x",
        )

    def add(label, dataset, value, limit, higher, value_text, limit_text):
        if value is None:
            verdict = "n/a"
        else:
            verdict = "PASS" if (value >= limit if higher else value <= limit) else "FAIL"
        out.append(
            {
                "label": label,
                "workload": dataset,
                "value": value,
                "limit": limit,
                "higher_is_better": higher,
                "value_text": value_text,
                "limit_text": limit_text,
                "verdict": verdict,
            }
        )

    for ds in ("arrays", "records"):
        ratio(f"compress: {CORES} threads / 1 thread", (ds, "compress", "bfa", CORES), (ds, "compress", "bfa", 1), 1.8)
        ratio(
            f"compress: {CORES} threads / lz4.frame.compress",
            (ds, "compress", "bfa", CORES),
            (ds, "compress", "lz4.frame", 1),
            2,
        )
        if ds == "records":  # without the serial Python encoding: the LZ4 stage on the same bytes
            ratio(
                f"compress, LZ4 stage only: {CORES} threads / 1 thread",
                (ds, "compress_bytes", "bfa", CORES),
                (ds, "compress_bytes", "bfa", 1),
                1.8,
            )
            ratio(
                f"compress, LZ4 stage only: {CORES} threads / lz4.frame.compress",
                (ds, "compress_bytes", "bfa", CORES),
                (ds, "compress", "lz4.frame", 1),
                2,
            )
        ratio(
            f"decompress: {CORES} threads / 1 thread",
            (ds, "decompress", "bfa", CORES),
            (ds, "decompress", "bfa", 1),
            1.6,
        )
        ratio(
            f"decompress: {CORES} threads / lz4.frame.decompress",
            (ds, "decompress", "bfa", CORES),
            (ds, "decompress", "lz4.frame", 1),
            3,
        )
    ratio(
        "100-row slice vs whole array: whole / slice",
        ("slice", "slice", "bfa", CORES),
        ("slice", "whole", "bfa", CORES),
        100,
    )
    v, m = res.get("verify", "verify", "bfa", CORES), res.get("verify", "memcpy", "numpy", 1)
    if v and m:
        gbps, ref = v["mbps"]["median"] * MB / GB, m["mbps"]["median"] * MB / GB
        add(
            f"verify() {U.fmt_bytes(facts['verify']['checked_bytes'])}, {CORES} threads: GB/s "
            "(memory-bandwidth class = >= half of one-thread memcpy)",
            "verify",
            gbps,
            ref / 2,
            True,
            f"{gbps:.1f} GB/s",
            f">= {ref / 2:.1f} GB/s",
        )
    ratio(
        "dump(compression='lz4') / dump() on incompressible data",
        ("random", "dump_lz4", "bfa", CORES),
        ("random", "dump_plain", "bfa", CORES),
        1.2,
        higher=False,
    )
    return out


# ==========================================================================
# report
# ==========================================================================

LABELS = {
    "compress": "compress",
    "encode": "encode only: dumps() uncompressed",
    "compress_bytes": "LZ4 stage: the raw bytes as one array",
    "decompress": "decompress",
    "slice": "arch.array('emb')[i:i+100]",
    "whole": "arch['emb'], whole array",
    "verify": "verify(), fresh open",
    "verify_mapped": "verify(), mapping faulted in",
    "memcpy": "np.copyto 1 GiB (memcpy reference)",
    "dump_plain": "dump(fsync=False), uncompressed",
    "dump_lz4": "dump(fsync=False), lz4",
    "dumps_plain": "dumps(), uncompressed",
    "dumps_lz4": "dumps(), lz4",
}


def describe(ds: str, facts: dict) -> str:
    f = facts.get(ds, {})
    if ds == "arrays":
        per = ", ".join(f"{k} {r:.2f}x" for k, r in (f.get("array_ratios") or {}).items())
        return (
            f"== arrays: emb float32 (N, 128) at bf16 precision, ids int64 sorted, counts int32 Poisson(3); "
            f"{U.fmt_bytes(f['raw_bytes'])} raw; LZ4 ratio bfa {f['ratio']:.2f}x ({per}), "
            f"lz4.frame {f['lz4_frame_ratio']:.2f}x"
        )
    if ds == "records":
        return (
            f"== records: {facts['users']:,} user dicts; {U.fmt_bytes(f['raw_bytes'])} raw (uncompressed archive); "
            f"LZ4 ratio bfa {f['ratio']:.2f}x, lz4.frame {f['lz4_frame_ratio']:.2f}x"
        )
    if ds == "slice":
        return (
            f"== slice: float32 ({f['rows']:,}, 256) at bf16 precision, {U.fmt_bytes(f['raw_bytes'])}, "
            f"LZ4 ratio {f['ratio']:.2f}x, 1 MiB chunks"
        )
    if ds == "verify":
        return f"== verify: uncompressed archive, {U.fmt_bytes(f['file_bytes'])}"
    return (
        f"== random: {U.fmt_bytes(f['raw_bytes'])} incompressible bytes; file sizes "
        f"{U.fmt_bytes(f['plain_file_bytes'])} uncompressed, {U.fmt_bytes(f['lz4_file_bytes'])} lz4"
    )


def print_tables(res: Results, facts: dict) -> None:
    for ds in ("arrays", "records", "slice", "verify", "random"):
        rows = [r for r in res.rows if r["dataset"] == ds]
        if not rows:
            continue
        print(describe(ds, facts))
        print(
            f"{'operation':<38} {'peer':<10} {'threads':>7} {'median':>10} {'MB/s':>9} {'min':>9} {'max':>9} "
            f"{'n':>3} {'cores':>6}"
        )
        previous = None
        for r in rows:
            label = LABELS[r["metric"]] if (r["metric"], r["peer"]) != previous else ""
            previous = (r["metric"], r["peer"])
            mbps = r["mbps"]
            print(
                f"{label:<38} {r['peer']:<10} {r['threads']:>7} {U.fmt_seconds(r['median']):>10} "
                f"{mbps['median']:>9.0f} {mbps['min']:>9.0f} {mbps['max']:>9.0f} {r['n']:>3} "
                f"{r.get('cores_used', 0):>6.2f}"
            )
        print()


def print_scaling(res: Results, cfg: Config) -> None:
    print("== throughput per thread count (MB/s of raw bytes; x = over threads=1)")
    for ds in ("arrays", "records"):
        for metric in ("compress", "compress_bytes", "decompress"):
            base = res.get(ds, metric, "bfa", 1)
            if base is None:
                continue
            parts = []
            for t in cfg.threads:
                r = res.get(ds, metric, "bfa", t)
                if r:
                    parts.append(f"{t}: {r['mbps']['median']:.0f} ({base['median'] / r['median']:.2f}x)")
            print(f"{ds + ' ' + metric:<26} " + ", ".join(parts))
    r = res.get("verify", "verify", "bfa", 1)
    if r:
        parts = [
            f"{t}: {res.get('verify', 'verify', 'bfa', t)['mbps']['median'] * MB / GB:.2f} GB/s" for t in cfg.threads
        ]
        print(f"{'verify':<26} " + ", ".join(parts))
    print()


def print_targets(evaluated: list[dict]) -> None:
    print(f"== targets (issue 3; medians of this run, {CORES} cores)")
    print(f"{'check':<66} {'data':<8} {'value':>10} {'target':>13}  verdict")
    for t in evaluated:
        print(f"{t['label']:<66} {t['workload']:<8} {t['value_text']:>10} {t['limit_text']:>13}  {t['verdict']}")
    print()


def run(quick: bool = False) -> dict:
    cfg, mode = (QUICK, "quick") if quick else (FULL, "full")
    machine = U.machine_info(("bfast-archive", "numpy", "lz4"))
    print(f"bfast_archive compression benchmark ({mode} mode)")
    print(
        f"machine : {machine['cpu_count']} cores, {machine['cpu_model']}, {U.fmt_bytes(machine['ram_bytes'])} RAM, "
        f"{machine['platform']}"
    )
    print(
        f"python  : {machine['python_impl']} {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    )
    print(
        f"method  : {cfg.repeats} repeats, warm-up discarded, gc.collect() before each; threads {list(cfg.threads)}; "
        "MB/s = 10**6 raw bytes/s"
    )
    print()
    sys.stdout.flush()
    load = U.CpuLoad().start()
    res = Results()
    facts = {"users": cfg.users}
    with tempfile.TemporaryDirectory(prefix="bfa-bench-lz4-") as tmp:
        arrays = make_arrays(cfg.array_bytes, np.random.default_rng(SEED))
        facts["arrays"] = bench_compress("arrays", arrays, cfg, tmp, res)
        del arrays
        gc.collect()
        records = make_records(cfg.users)
        facts["records"] = bench_compress("records", records, cfg, tmp, res)
        del records
        gc.collect()
        facts["slice"] = bench_slice(cfg, tmp, res)
        gc.collect()
        facts["verify"] = bench_verify(cfg, tmp, res)
        gc.collect()
        facts["random"] = bench_incompressible(cfg, tmp, res)
    machine_load = load.stop()

    print_tables(res, facts)
    print_scaling(res, cfg)
    evaluated = targets(res, facts)
    print_targets(evaluated)
    if mode == "quick":
        print(
            "NOTE    : quick mode: the records archive is below bfa's 8 MiB threshold for threads, and the "
            "sizes are small; the verdicts are not the issue's figures"
        )
    print(f"load    : {U.fmt_load(machine_load)}")
    elapsed = time.perf_counter() - START
    print(f"total time {elapsed:.0f} s")
    return {
        "mode": mode,
        "config": asdict(cfg),
        "machine": machine,
        "machine_load": machine_load,
        "facts": facts,
        "results": res.rows,
        "targets": evaluated,
        "notes": res.notes,
        "elapsed_seconds": elapsed,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data and fewer repeats (< 30 s)")
    parser.add_argument("--out", metavar="FILE.json", help="write machine, config, raw samples, medians and targets")
    args = parser.parse_args(argv)
    report = run(args.quick)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
