"""Data frames: bfast_archive against Arrow IPC (Feather v2, uncompressed,
memory-mapped) and Parquet (pyarrow), on the workload of issue 17.

    python benchmarks/bench_frames.py                 # 10,000,000 rows
    python benchmarks/bench_frames.py --rows 1000000 --repeat 5

Rows: int64 id, float64 score, bool flag, str name (~12 chars), category
(20 values), datetime64[ns, UTC]. Written from one pandas DataFrame. Each
figure is the median of --repeat runs with the files in the page cache
(warm: the first run of each is discarded). Archives of one file share their
mapping and its caches (a str column's UTF-8 is checked once per mapping):
the "first open" row drops the mapping before each run. The Feather file is written as
one record batch (no chunks to concatenate when a column becomes NumPy) and
read through ``pyarrow.memory_map``. Both writers write a new file of the
same name each time (bfast_archive: a temporary file renamed over it, no
fsync). Timings on a shared machine are indicative only. Self-contained: needs bfast_archive, numpy, pandas, pyarrow.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

import bfast_archive as bfa


def workload(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = pd.array([f"user-{i:07d}"[:12] for i in range(rows)], dtype="string")
    cats = pd.Categorical.from_codes(rng.integers(0, 20, rows),
                                     categories=[f"cat{i:02d}" for i in range(20)])
    start = np.datetime64("2020-01-01T00:00:00", "ns").astype(np.int64)
    when = pd.to_datetime(start + rng.integers(0, 10 ** 17, rows), utc=True)
    return pd.DataFrame({"id": np.arange(rows, dtype=np.int64), "score": rng.random(rows),
                         "flag": rng.random(rows) < 0.5, "name": names, "category": cats,
                         "when": when})


def timed(fn, repeat: int) -> float:
    fn()  # warm-up: imports, page cache
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    args = parser.parse_args()
    df = workload(args.rows)
    row = args.rows // 2
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        paths = {k: os.path.join(tmp, f"frame.{k}") for k in ("bfa", "feather", "parquet")}

        def write_bfa():
            bfa.dump(df, paths["bfa"], fsync=False)

        def write_feather():  # one record batch: Arrow IPC's best case for the reads
            feather.write_feather(df, paths["feather"], compression="uncompressed",
                                  chunksize=max(args.rows, 1))

        def write_parquet():
            pq.write_table(pa.Table.from_pandas(df), paths["parquet"])

        def ipc():
            return pa.ipc.open_file(pa.memory_map(paths["feather"])).read_all()

        def bfa_root(fn):
            with bfa.Archive.open(paths["bfa"]) as arch:
                return fn(arch.root)

        cases = {
            "write": (write_bfa, write_feather, write_parquet),
            "open + one column to NumPy (score)": (
                lambda: bfa_root(lambda t: t.column("score")),
                lambda: ipc().column("score").to_numpy(),
                lambda: pq.read_table(paths["parquet"], columns=["score"]).column(0).to_numpy()),
            "open + one str column as Arrow (name)": (
                lambda: bfa_root(lambda t: t.column("name", arrow=True)),
                lambda: ipc().column("name"),
                lambda: pq.read_table(paths["parquet"], columns=["name"]).column(0)),
            "... first open of the file (UTF-8 checked)": (
                lambda: (bfa.release_mappings(),
                         bfa_root(lambda t: t.column("name", arrow=True))),
                lambda: ipc().column("name"),
                lambda: pq.read_table(paths["parquet"], columns=["name"]).column(0)),
            "open + to_pandas()": (
                lambda: bfa_root(lambda t: t.to_pandas()),
                lambda: ipc().to_pandas(),
                lambda: pq.read_table(paths["parquet"]).to_pandas()),
            "open + one row": (
                lambda: bfa_root(lambda t: t[row].to_python()),
                lambda: ipc().slice(row, 1).to_pylist(),
                lambda: pq.read_table(paths["parquet"]).slice(row, 1).to_pylist()),
        }
        print(f"{args.rows:,} rows, median of {args.repeat} (warm cache; shared machine: "
              f"indicative figures)")
        print(f"{'case':40s} {'bfast_archive':>14s} {'Arrow IPC':>12s} {'Parquet':>12s} "
              f"{'bfa/IPC':>8s} {'bfa/Parquet':>12s}")
        for name, (b, f, p) in cases.items():
            tb, tf, tp = (timed(fn, args.repeat) for fn in (b, f, p))
            print(f"{name:40s} {tb * 1e3:12.3f}ms {tf * 1e3:10.3f}ms {tp * 1e3:10.3f}ms "
                  f"{tb / tf:8.2f} {tb / tp:12.2f}")
        sizes = {k: os.path.getsize(p) for k, p in paths.items()}
        print(f"{'file size (MB)':40s} {sizes['bfa'] / 1e6:12.1f}MB {sizes['feather'] / 1e6:10.1f}MB "
              f"{sizes['parquet'] / 1e6:10.1f}MB {sizes['bfa'] / sizes['feather']:8.2f} "
              f"{sizes['bfa'] / sizes['parquet']:12.2f}")


if __name__ == "__main__":
    main()
