"""Frames benchmark: a 10M-row data frame against Arrow IPC (Feather v2, memory-mapped) and Parquet.

Seeded data: one pandas DataFrame (int64, float64, bool, ~12-char str, 20-value category, datetime64[ns, UTC]).
Each peer writes it (no fsync) and reads it back, every read including its open (page cache warm): one column to
NumPy, one str column as Arrow (also after bfa.release_mappings(): the first open, UTF-8 checked), to_pandas(),
one row as Python values; and the file size.  Reads are checked against the data first.  Timing:
benchmarks/harness.py's method, the peers of one operation sampled round-robin; targets: bfa over Arrow IPC on
the medians ("(mins)": from the minimums, no verdict).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bfast_archive as bfa  # noqa: E402
from benchmarks import harness as H  # noqa: E402

SETTINGS = {"rows": (10_000_000, 200_000), "repeats": (9, 5), "slow_repeats": (5, 3)}  # name: (full, quick)
SUFFIXES = {"bfa": "bfa", "arrow-ipc": "feather", "parquet": "parquet"}  # the peers and their files' suffixes
PEERS = tuple(SUFFIXES)
TARGETS = (  # label, metric, limit of bfa / Arrow IPC (<=), primary
    ("open + one str column as Arrow: bfa / Arrow IPC", "column_arrow", 1.0, True),
    ("  same, first open of the file (UTF-8 checked)", "column_arrow_first", 1.0, False),
    ("open + to_pandas(): bfa / Arrow IPC", "to_pandas", 1.2, True), ("write: bfa / Arrow IPC", "write", 1.5, True))


def workload(rows: int, seed: int = 0) -> pd.DataFrame:
    """The frame: int64 id, float64 score, bool flag, ~12-char str name, 20 categories, UTC datetimes."""
    rng = np.random.default_rng(seed)
    names = pd.array([f"user-{i:07d}"[:12] for i in range(rows)], dtype="string")
    cats = pd.Categorical.from_codes(rng.integers(0, 20, rows), categories=[f"cat{i:02d}" for i in range(20)])
    start = np.datetime64("2020-01-01T00:00:00", "ns").astype(np.int64)
    when = pd.to_datetime(start + rng.integers(0, 10**17, rows), utc=True)
    return pd.DataFrame({"id": np.arange(rows, dtype=np.int64), "score": rng.random(rows),
                         "flag": rng.random(rows) < 0.5, "name": names, "category": cats, "when": when})


def operations(df: pd.DataFrame, paths: dict, row: int) -> dict:
    """{operation: {peer: callable}}: each peer's write and reads (every read opens the file)."""

    def bfa_root(fn):
        with bfa.Archive.open(paths["bfa"]) as arch:
            return fn(arch.root)

    def ipc() -> pa.Table:
        return pa.ipc.open_file(pa.memory_map(paths["arrow-ipc"])).read_all()

    def parquet(columns=None) -> pa.Table:
        return pq.read_table(paths["parquet"], columns=columns)

    column_arrow = {"bfa": lambda: bfa_root(lambda t: t.column("name", arrow=True)),
                    "arrow-ipc": lambda: ipc().column("name"),
                    "parquet": lambda: parquet(["name"]).column(0)}
    return {
        "write": {"bfa": lambda: bfa.dump(df, paths["bfa"], fsync=False),
                  "arrow-ipc": lambda: feather.write_feather(df, paths["arrow-ipc"], compression="uncompressed",
                                                             chunksize=max(len(df), 1)),
                  "parquet": lambda: pq.write_table(pa.Table.from_pandas(df), paths["parquet"])},
        "column_numpy": {"bfa": lambda: bfa_root(lambda t: t.column("score")),
                         "arrow-ipc": lambda: ipc().column("score").to_numpy(),
                         "parquet": lambda: parquet(["score"]).column(0).to_numpy()},
        "column_arrow": column_arrow,
        "column_arrow_first": column_arrow,  # timed with bfa.release_mappings() as the setup
        "to_pandas": {"bfa": lambda: bfa_root(lambda t: t.to_pandas()), "arrow-ipc": lambda: ipc().to_pandas(),
                      "parquet": lambda: parquet().to_pandas()},
        "row": {"bfa": lambda: bfa_root(lambda t: t[row].to_python()),
                "arrow-ipc": lambda: ipc().slice(row, 1).to_pylist()[0],
                "parquet": lambda: parquet().slice(row, 1).to_pylist()[0]},
    }


def check_values(df: pd.DataFrame, ops: dict, row: int) -> None:
    """Every peer's reads give back the data (raises AssertionError naming the peer and the read)."""
    names = pa.chunked_array([pa.array(df["name"], type=pa.large_string())])
    for peer in PEERS:
        pd.testing.assert_frame_equal(ops["to_pandas"][peer](), df, check_exact=True, obj=f"{peer} to_pandas()")
        H.expect(np.array_equal(ops["column_numpy"][peer](), df["score"].to_numpy()), f"{peer}: column 'score' differs")
        got = ops["column_arrow"][peer]()
        got = pa.chunked_array([got]) if isinstance(got, pa.Array) else got
        H.expect(got.cast(pa.large_string()).equals(names), f"{peer}: column 'name' as Arrow differs")
        values = ops["row"][peer]()
        H.expect((values["id"], values["name"], values["score"]) == (row, df["name"][row], df["score"][row]),
                 f"{peer}: row {row} differs: {values}")


def rows_label(n: int) -> str:
    return f"{n / 1e6:g}M rows" if n >= 1_000_000 else f"{n / 1e3:g}k rows"


def run(cfg: H.Config, res: H.Results) -> dict:
    H.log(f"frames: building a DataFrame of {cfg.rows:,} rows")
    df, row = workload(cfg.rows), cfg.rows // 2
    with tempfile.TemporaryDirectory(prefix="bfa-bench-frames-") as tmp:
        paths = {p: os.path.join(tmp, f"frame.{suffix}") for p, suffix in SUFFIXES.items()}
        ops = operations(df, paths, row)
        for peer in PEERS:
            ops["write"][peer]()
        H.log("frames: checking every peer's reads")
        check_values(df, ops, row)
        for metric, fns in ops.items():
            H.log(f"frames: {metric}")
            if metric == "column_arrow_first":  # the setup drops the mappings: every sample opens the file anew
                res.group({p: (lambda _, f=f: f()) for p, f in fns.items()}, cfg, bfa.release_mappings, metric=metric)
            else:
                res.group(fns, cfg, metric=metric)
        for peer in PEERS:
            res.add([os.path.getsize(paths[peer])], "B", metric="size", peer=peer)
    H.print_rows(f"== frames: {cfg.rows:,} rows x (int64 id, float64 score, bool flag, str name, category of 20, "
                 "datetime64[ns, UTC]); warm page cache", res.rows)
    evaluated = [res.target(label, {"metric": metric, "peer": "bfa"}, {"metric": metric, "peer": "arrow-ipc"}, limit,
                            workload=rows_label(cfg.rows), primary=primary, mins=True)
                 for label, metric, limit, primary in TARGETS]
    res.print_targets(f"data-frame targets, {rows_label(cfg.rows)}", evaluated)
    return {}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run))
