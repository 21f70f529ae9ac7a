"""Scaling benchmark: open + read one row against file size, for every peer that holds arrays.

Run (from the repository root):

    pip install -e ".[bench]"
    python benchmarks/bench_scaling.py                 # 10 MiB, 100 MiB, 1 GiB, 4 GiB; ~6 minutes
    python benchmarks/bench_scaling.py --quick         # 1, 10 and 40 MiB, < 20 s
    python benchmarks/bench_scaling.py --sizes 10M,1G  # pick the sizes
    python benchmarks/bench_scaling.py --out res.json  # also write raw samples + medians as JSON

Data: bench_core's arrays workload (8 arrays sharing one leading dimension:
float32 embeddings of 256, float64, int64 ids, ...) at each size; the probe
is one row of "emb" in the middle.  For every size and peer the file is
written (no fsync: the write is not measured), then:

  warm   open + read the row in this process, page cache warm, with the same
         reader functions as bench_core (_util.READERS), closing included;
         bench_core.measure (median of repeats, warm-up discarded)
  cold   the same in a fresh `python -c` child (bench_core.cold_run): spawn ->
         value, imports counted, page cache still warm

Parse-everything peers (pickle, msgspec) read the whole file to reach one row,
so their cost grows with the file; mapping peers (bfa, pyarrow IPC mmap,
safetensors, np.load(mmap_mode="r"), joblib.load(mmap_mode="r"), h5py's
chunk reads) should stay flat.  One peer's file exists at a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _util as U  # noqa: E402
from benchmarks import bench_core as C  # noqa: E402
from benchmarks import suite_core  # noqa: E402

MiB, GiB = C.MiB, C.GiB
PEERS = ("bfa", "pickle", "msgspec", "pyarrow", "safetensors", "npy", "h5py", "joblib")
KIND = {  # how each peer reaches the row, for the chart's legend and the report
    "bfa": "mmap",
    "pickle": "parse all",
    "msgspec": "parse all",
    "pyarrow": "mmap",
    "safetensors": "mmap",
    "npy": "mmap",
    "h5py": "reads chunks",
    "joblib": "mmap arrays",
}


@dataclass(frozen=True)
class Config:
    sizes: tuple = (10 * MiB, 100 * MiB, 1 * GiB, 4 * GiB)
    fast_repeats: int = 7
    slow_repeats: int = 3
    cold_repeats: int = 3


FULL = Config()
QUICK = Config(sizes=(1 * MiB, 10 * MiB, 40 * MiB), fast_repeats=3, slow_repeats=2, cold_repeats=1)


def parse_size(text: str) -> int:
    text = text.strip().upper().rstrip("B").rstrip("I")
    factor = {"K": 1024, "M": MiB, "G": GiB}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * factor)


def writers() -> dict:
    out = {p.name: p.write for p in C.PEERS}
    out["joblib"] = suite_core.write_joblib
    return out


def bench_size(size: int, cfg: Config, tmp: str, rows: list, errors: list) -> None:
    C.log(f"scaling: building {U.fmt_bytes(size)} of arrays")
    obj = C.make_arrays(size, np.random.default_rng(C.SEED))
    probe = ("emb", len(obj["emb"]) // 2)
    expected = U.touch(U.walk(obj, probe))
    core_cfg = replace(C.FULL, fast_repeats=cfg.fast_repeats, slow_repeats=cfg.slow_repeats)
    write = writers()
    for peer in PEERS:
        path = os.path.join(tmp, f"scaling.{peer}")
        C.log(f"scaling: {U.fmt_bytes(size)} {peer}")
        try:
            write[peer](obj, path)
            file_size = C.path_size(path)
            read = U.READERS[peer]()
            if read(path, probe) != expected:
                raise AssertionError(f"{peer}: wrong row read")
            samples, inner = C.measure(lambda read=read, path=path: read(path, probe), core_cfg)
            base = {"size": size, "peer": peer, "kind": KIND[peer], "file_bytes": file_size, "unit": "s"}
            rows.append({**base, "metric": "warm_read", "samples": samples, **U.summary(samples), "inner": inner})
            gc.collect()
            cold = []
            C.cold_run(peer, path, probe, True, tmp)  # warm-up child
            for _ in range(cfg.cold_repeats):
                metrics, value = C.cold_run(peer, path, probe, True, tmp)
                if value != repr(expected):
                    raise AssertionError(f"{peer}: cold child read a wrong row")
                cold.append(metrics)
            for metric in ("cold_total", "cold_open_read", "cold_rss_peak"):
                samples = [m[metric] for m in cold]
                unit = "B" if metric == "cold_rss_peak" else "s"
                rows.append({**base, "metric": metric, "unit": unit, "samples": samples, **U.summary(samples)})
        except Exception:
            errors.append({"size": size, "peer": peer, "error": traceback.format_exc()})
            C.log(f"  !! {peer}: {traceback.format_exc().strip().splitlines()[-1]}")
        finally:
            C.remove(path)
            gc.collect()
    del obj
    gc.collect()


def print_table(rows: list, cfg: Config) -> None:
    print("== open + read one row of 'emb', warm (median; in this process, page cache warm)")
    header = (
        f"{'peer':<12} {'reads by':<13}" + "".join(f"{U.fmt_bytes(s):>12}" for s in cfg.sizes) + "  largest/smallest"
    )
    print(header)
    for metric, title in (("warm_read", None), ("cold_total", "== cold: spawn -> value in a fresh process (median)")):
        if title:
            print()
            print(title)
            print(header)
        for peer in PEERS:
            cells, values = [], []
            for size in cfg.sizes:
                r = next((r for r in rows if (r["peer"], r["size"], r["metric"]) == (peer, size, metric)), None)
                cells.append(f"{U.fmt_seconds(r['median']):>12}" if r else f"{'-':>12}")
                if r:
                    values.append(r["median"])
            growth = f"{values[-1] / values[0]:8.1f}x" if len(values) >= 2 else ""
            print(f"{peer:<12} {KIND[peer]:<13}" + "".join(cells) + f"  {growth}")
    print()


def run(quick: bool = False, sizes: tuple | None = None) -> dict:
    cfg, mode = (QUICK, "quick") if quick else (FULL, "full")
    if sizes:
        cfg = replace(cfg, sizes=tuple(sizes))
    machine = U.machine_info(("bfast-archive", "numpy", "msgspec", "pyarrow", "safetensors", "h5py", "joblib"))
    print(f"bfast_archive scaling benchmark ({mode} mode): sizes " + ", ".join(U.fmt_bytes(s) for s in cfg.sizes))
    print(f"machine : {machine['cpu_count']} cores, {machine['cpu_model']}, {U.fmt_bytes(machine['ram_bytes'])} RAM")
    print()
    load = U.CpuLoad().start()
    rows, errors = [], []
    with tempfile.TemporaryDirectory(prefix="bfa-bench-scaling-") as tmp:
        for size in cfg.sizes:
            bench_size(size, cfg, tmp, rows, errors)
    machine_load = load.stop()
    print_table(rows, cfg)
    for e in errors:
        print(f"-- error: {U.fmt_bytes(e['size'])} / {e['peer']}\n{e['error'].rstrip()}")
    print(f"load    : {U.fmt_load(machine_load)}")
    elapsed = time.perf_counter() - C.START
    print(f"total time {elapsed:.0f} s")
    return {
        "mode": mode,
        "config": asdict(cfg),
        "machine": machine,
        "machine_load": machine_load,
        "peers": list(PEERS),
        "kinds": KIND,
        "results": rows,
        "errors": errors,
        "elapsed_seconds": elapsed,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1, 10 and 40 MiB, fewer repeats")
    parser.add_argument("--sizes", help="comma-separated sizes, e.g. 10M,100M,1G,4G")
    parser.add_argument("--out", metavar="FILE.json", help="write raw samples and medians as JSON")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else None
    report = run(args.quick, sizes)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
        C.log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
