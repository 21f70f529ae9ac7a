"""Compression benchmark: chunked LZ4, thread scaling and checksums (MB/s, GB/s: 10**6, 10**9 raw bytes/s).

Seeded data: arrays (256 MiB: bf16-precision float32 embeddings, sorted int64 ids, Poisson counts), bench_core's
records, slice (one 400 MiB float32 array), verify (1 GiB uncompressed), random (256 MiB incompressible).  For
threads t = 1 .. cores and 2 x cores: bfa.dumps(compression="lz4", threads=t) and decompression (arch[key] per
array from a fresh Archive.open, or Archive.open for records) against lz4.frame in one call; the LZ4 stage alone
on the records' bytes; a 100-row slice against the whole array; verify() fresh and faulted in, against np.copyto;
dump/dumps with and without LZ4 on random bytes.  "cores" = CPU time / wall time (median): on a busy machine
threads wait for cores.  Timing: benchmarks/harness.py's method; files in a temporary directory, cache warm.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import lz4.frame
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bfast_archive as bfa  # noqa: E402
from benchmarks import harness as H  # noqa: E402
from benchmarks.bench_core import build_workload  # noqa: E402
from benchmarks.report import throughput  # noqa: E402

MiB, GiB, MB, GB, SEED, CORES = H.MiB, H.GiB, H.MB, H.GB, H.SEED, H.CORES
SETTINGS = {  # name: (full, quick)
    "array_bytes": (256 * MiB, 32 * MiB), "users": (100_000, 20_000), "slice_bytes": (400 * MiB, 48 * MiB),
    "slice_rows": (100, 100), "verify_bytes": (1 * GiB, 128 * MiB), "random_bytes": (256 * MiB, 32 * MiB),
    "repeats": (7, 3), "slow_repeats": (7, 3),
    "threads": (tuple(sorted({*range(1, CORES + 1), 2 * CORES})), (1, CORES)),
}


def bf16_floats(shape, rng: np.random.Generator) -> np.ndarray:
    """Standard-normal float32 with the low 16 mantissa bits cleared (bfloat16 precision)."""
    a = rng.standard_normal(shape, dtype=np.float32)
    a.view(np.uint32)[...] &= 0xFFFF0000
    return a


def make_arrays(total_bytes: int, rng: np.random.Generator) -> dict:
    n = total_bytes // (128 * 4 + 8 + 16 * 4)
    return {"emb": bf16_floats((n, 128), rng), "ids": np.sort(rng.integers(0, 10**9, n, dtype=np.int64)),
            "counts": rng.poisson(3.0, (n, 16)).astype(np.int32)}


def add(res: H.Results, dataset: str, metric: str, peer: str, threads: int, nbytes: int, samples, **extra) -> None:
    """A row with throughput (MB/s of raw bytes: the median's, and from the slowest/fastest sample) and the
    cores the call kept busy (CPU seconds over wall seconds, median of the samples)."""
    row = res.add(samples, dataset=dataset, metric=metric, peer=peer, threads=threads, bytes=nbytes, **extra)
    row["cpu_samples"] = samples.cpu
    row["cores_used"] = H.median([c / w for c, w in zip(samples.cpu, samples, strict=True) if w > 0])
    row["mbps"] = {"median": nbytes / row["median"] / MB, "min": nbytes / row["max"] / MB,
                   "max": nbytes / row["min"] / MB}


def opener(path: str, threads: int):
    return lambda: bfa.Archive.open(path, threads=threads)


def bench_compress(name: str, obj: dict, cfg: H.Config, tmp: str, res: H.Results) -> dict:
    """Compress and decompress throughput of one dataset; returns its facts."""
    plain = bfa.dumps(obj)
    raw = len(plain)
    H.log(f"{name}: compress ({H.fmt_bytes(raw)} raw)")
    packed = bfa.dumps(obj, compression="lz4")
    for t in cfg.threads:
        add(res, name, "compress", "bfa", t, raw, H.measure(lambda t=t: bfa.dumps(obj, compression="lz4", threads=t),
                                                            cfg))
    add(res, name, "encode", "bfa", 1, raw, H.measure(lambda: bfa.dumps(obj), cfg))
    if name == "records":  # the LZ4 stage alone: the same raw bytes, as one array payload
        as_bytes = {"raw": np.frombuffer(plain, np.uint8)}
        for t in cfg.threads:
            add(res, name, "compress_bytes", "bfa", t, raw,
                H.measure(lambda t=t: bfa.dumps(as_bytes, compression="lz4", threads=t), cfg))
        del as_bytes
    add(res, name, "compress", "lz4.frame", 1, raw, H.measure(lambda: lz4.frame.compress(plain), cfg))
    frame = lz4.frame.compress(plain)

    H.log(f"{name}: decompress")
    path = os.path.join(tmp, f"{name}.lz4.bfa")
    bfa.dump(obj, path, compression="lz4", fsync=False)
    keys = [k for k, v in obj.items() if isinstance(v, np.ndarray)]
    with bfa.Archive.open(path) as arch:  # the values come back identical
        for k in keys:
            H.expect(np.array_equal(arch[k], obj[k]), f"{name}: arch[{k!r}] differs from the original")
        middle = len(obj.get("users", ())) // 2
        H.expect(keys or arch["users"][middle]["name"] == obj["users"][middle]["name"], f"{name}: users differ")
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

            samples = H.measure(read_all, cfg, setup=opener(path, t), teardown=bfa.Archive.close)
            add(res, name, "decompress", "bfa", t, raw, samples,
                per_key={k: v[-len(samples):] for k, v in per_key.items()})  # the first ones were warm-ups
        else:  # records: open decompresses the structure section
            add(res, name, "decompress", "bfa", t, raw, H.measure(lambda t=t: opener(path, t)().close(), cfg),
                what="Archive.open (decompresses the nodes)")
    add(res, name, "decompress", "lz4.frame", 1, raw, H.measure(lambda: lz4.frame.decompress(frame), cfg))
    os.remove(path)
    return {"raw_bytes": raw, "bfa_bytes": len(packed), "lz4_frame_bytes": len(frame), "ratio": raw / len(packed),
            "lz4_frame_ratio": raw / len(frame), "array_ratios": {k: v.nbytes / len(bfa.dumps(
                {k: v}, compression="lz4")) for k, v in obj.items()} if keys else None}


def bench_slice(cfg: H.Config, tmp: str, res: H.Results) -> dict:
    rows = cfg.slice_bytes // (256 * 4)
    H.log(f"slice: building a {H.fmt_bytes(cfg.slice_bytes)} array")
    emb = bf16_floats((rows, 256), np.random.default_rng(SEED + 1))
    path = os.path.join(tmp, "slice.lz4.bfa")
    size = bfa.dump({"emb": emb}, path, compression="lz4", fsync=False)
    rng = random.Random(SEED)
    n = cfg.slice_rows
    starts = [rng.randrange(rows - n) for _ in range(1000)]
    with bfa.Archive.open(path) as arch:
        i = starts[0]
        H.expect(np.array_equal(arch.array("emb")[i : i + n], emb[i : i + n]), "slice differs from the original rows")
        position = iter(starts * 1000)
        H.log("slice: 100-row slices")
        more = H.Config(cfg, repeats=cfg.repeats * 3, slow_repeats=cfg.slow_repeats * 3)
        slice_samples = H.measure(lambda: arch.array("emb")[(j := next(position)) : j + n], more)
    H.log("slice: whole array")
    whole = H.measure(lambda arch: arch["emb"], cfg, setup=opener(path, CORES), teardown=bfa.Archive.close)
    add(res, "slice", "slice", "bfa", CORES, n * 256 * 4, slice_samples, rows=n)
    add(res, "slice", "whole", "bfa", CORES, emb.nbytes, whole)
    os.remove(path)
    return {"raw_bytes": emb.nbytes, "bfa_bytes": size, "ratio": emb.nbytes / size, "rows": rows}


def bench_verify(cfg: H.Config, tmp: str, res: H.Results) -> dict:
    H.log(f"verify: building a {H.fmt_bytes(cfg.verify_bytes)} archive")
    data = np.arange(cfg.verify_bytes // 4, dtype=np.uint32)
    data *= np.uint32(2654435761)  # cheap, deterministic, not constant
    path = os.path.join(tmp, "verify.bfa")
    size = bfa.dump({"data": data}, path, fsync=False)
    with bfa.Archive.open(path) as arch:
        checked = arch.verify()
    for t in cfg.threads:
        H.log(f"verify: threads={t}")
        add(res, "verify", "verify", "bfa", t, checked,
            H.measure(lambda arch: arch.verify(), cfg, setup=opener(path, t), teardown=bfa.Archive.close))
    with bfa.Archive.open(path, threads=CORES) as arch:
        arch.verify()  # faults the whole mapping in
        add(res, "verify", "verify_mapped", "bfa", CORES, checked, H.measure(arch.verify, cfg))
    dst = np.empty_like(data)
    np.copyto(dst, data)  # fault the destination in
    add(res, "verify", "memcpy", "numpy", 1, data.nbytes, H.measure(lambda: np.copyto(dst, data), cfg))
    dst = data = None  # noqa: F841
    os.remove(path)
    return {"file_bytes": size, "checked_bytes": checked}


def bench_incompressible(cfg: H.Config, tmp: str, res: H.Results) -> dict:
    H.log(f"incompressible: {H.fmt_bytes(cfg.random_bytes)} of random bytes")
    obj = {"blob": np.frombuffer(np.random.default_rng(SEED + 2).bytes(cfg.random_bytes), np.uint8)}
    path = os.path.join(tmp, "random.bfa")
    sizes = {}
    for label, comp in (("plain", None), ("lz4", "lz4")):
        add(res, "random", f"dump_{label}", "bfa", CORES, cfg.random_bytes,
            H.measure(lambda comp=comp: bfa.dump(obj, path, compression=comp, fsync=False), cfg))
        sizes[label] = os.path.getsize(path)
        add(res, "random", f"dumps_{label}", "bfa", CORES, cfg.random_bytes,
            H.measure(lambda comp=comp: bfa.dumps(obj, compression=comp), cfg))
    os.remove(path)
    return {"raw_bytes": cfg.random_bytes, "plain_file_bytes": sizes["plain"], "lz4_file_bytes": sizes["lz4"]}


# what, metric, lz4.frame's metric, limits: bfa's speed-up over 1 thread and over lz4.frame
STAGES = (("compress", "compress", "compress", 1.8, 2),
          ("compress, LZ4 stage only", "compress_bytes", "compress", 1.8, 2),
          ("decompress", "decompress", "decompress", 1.6, 3))


def targets(res: H.Results, facts: dict) -> list:
    keys = ("dataset", "metric", "peer", "threads")

    def faster(label, fast, slow, limit):
        """Throughput ratio of ``fast`` over ``slow`` (row keys: dataset, metric, peer, threads)."""
        return res.target(label, dict(zip(keys, slow)), dict(zip(keys, fast)), limit, ">=", workload=fast[0])

    out, n = [], f"{CORES} threads"
    for ds in ("arrays", "records"):
        for what, metric, ref, per_thread, over_lz4 in STAGES:
            if metric == "compress_bytes" and ds != "records":
                continue  # the records' LZ4 stage alone: without the serial Python encoding
            fast = (ds, metric, "bfa", CORES)
            out.append(faster(f"{what}: {n} / 1 thread", fast, (ds, metric, "bfa", 1), per_thread))
            out.append(faster(f"{what}: {n} / lz4.frame.{ref}", fast, (ds, ref, "lz4.frame", 1), over_lz4))
    out.append(faster("100-row slice vs whole array: whole / slice", ("slice", "slice", "bfa", CORES),
                      ("slice", "whole", "bfa", CORES), 100))
    v, m = res.get(dataset="verify", metric="verify", threads=CORES), res.get(dataset="verify", metric="memcpy")
    if v and m:
        out.append(H.check(f"verify() {H.fmt_bytes(facts['verify']['checked_bytes'])}, {n}: GB/s "
                           "(memory-bandwidth class = >= half of one-thread memcpy)", v["mbps"]["median"] * MB / GB,
                           m["mbps"]["median"] * MB / GB / 2, ">=", "GB/s", "verify"))
    out.append(res.target("dump(compression='lz4') / dump() on incompressible data", {"dataset": "random", "metric":
               "dump_lz4"}, {"dataset": "random", "metric": "dump_plain"}, 1.2, workload="random"))
    return out


def run(cfg: H.Config, res: H.Results) -> dict:
    cfg["threads"] = tuple(cfg.threads)
    facts = {"users": cfg.users}
    with tempfile.TemporaryDirectory(prefix="bfa-bench-lz4-") as tmp:
        for name, bench in (
            ("arrays", lambda: bench_compress("arrays", make_arrays(cfg.array_bytes, np.random.default_rng(SEED)),
                                              cfg, tmp, res)),
            ("records", lambda: bench_compress("records", build_workload("records", cfg).obj, cfg, tmp, res)),
            ("slice", lambda: bench_slice(cfg, tmp, res)), ("verify", lambda: bench_verify(cfg, tmp, res)),
            ("random", lambda: bench_incompressible(cfg, tmp, res)),
        ):
            facts[name] = bench()
            gc.collect()
    print(f"facts   : {facts}\n")  # the tables per dataset are the report's (benchmarks/report.py)
    print(throughput({"results": res.rows, "config": {"threads": cfg.threads}}) + "\n")
    res.print_targets(f"compression, {CORES} cores", targets(res, facts))
    if cfg.users < SETTINGS["users"][0]:
        res.note("quick mode: the records archive is below bfa's 8 MiB threshold for threads")
    return {"facts": facts}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run))
