"""Scaling benchmark: open + read one row against file size, for every peer that holds arrays.

Data: bench_core's arrays workload at each size (default 10 MiB, 100 MiB, 1 GiB, 4 GiB; --sizes); the probe is
one row of "emb" in the middle.  For every size and peer the file is written (not measured), then: warm = open +
read the row in this process with the peer's reader (benchmarks/peers.py), closing included; cold = the same in a
fresh child (harness.cold_run: spawn -> value, imports counted).  Parse-everything peers (pickle, msgspec) grow
with the file, mapping peers should stay flat.  One peer's file exists at a time.  Timing: benchmarks/harness.py.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import bench_core as C  # noqa: E402
from benchmarks import harness as H  # noqa: E402
from benchmarks import peers as P  # noqa: E402

MiB, GiB = H.MiB, H.GiB
SETTINGS = {"sizes": ((10 * MiB, 100 * MiB, 1 * GiB, 4 * GiB), (1 * MiB, 4 * MiB, 16 * MiB)),  # (full, quick)
            "repeats": (7, 3), "slow_repeats": (3, 2), "cold_repeats": (3, 1)}
KIND = {"bfa": "mmap", "pickle": "parse all", "msgspec": "parse all", "pyarrow": "mmap", "safetensors": "mmap",
        "npy": "mmap", "h5py": "reads chunks", "joblib": "mmap arrays"}  # how each peer reaches the row


def parse_size(text: str) -> int:
    text = text.strip().upper().rstrip("B").rstrip("I")
    return int(float(text.rstrip("KMG")) * {"K": 1024, "M": MiB, "G": GiB}.get(text[-1:], 1))


def bench_size(size: int, peers: list, cfg: H.Config, tmp: str, res: H.Results) -> None:
    H.log(f"scaling: building {H.fmt_bytes(size)} of arrays")
    obj = C.make_arrays(size, np.random.default_rng(H.SEED))
    probe = ("emb", len(obj["emb"]) // 2)
    expected = P.touch(P.walk(obj, probe))
    for peer in peers:
        path = os.path.join(tmp, f"scaling.{peer.name}")
        H.log(f"scaling: {H.fmt_bytes(size)} {peer.name}")

        def one():
            peer.write(obj, path)
            keys = {"size": size, "peer": peer.name, "kind": KIND[peer.name], "file_bytes": P.path_size(path)}
            read = peer.reader()
            H.expect(read(path, probe) == expected, f"{peer.name}: wrong row read")
            res.add(H.measure(lambda: read(path, probe), cfg), **keys, metric="warm_read")
            gc.collect()
            H.cold_run(peer.name, path, probe, True, tmp)  # warm-up child
            cold = [H.cold_run(peer.name, path, probe, True, tmp) for _ in range(cfg.cold_repeats)]
            H.expect(all(value == repr(expected) for _, value in cold), f"{peer.name}: cold child read a wrong row")
            for metric in ("cold_total", "cold_open_read", "cold_rss_peak"):
                res.add([m[metric] for m, _ in cold], "B" if metric == "cold_rss_peak" else "s", **keys, metric=metric)

        res.step(one, size=size, peer=peer.name)
        P.remove(path)
        gc.collect()


def run(cfg: H.Config, res: H.Results) -> dict:
    cfg["sizes"] = tuple(cfg.sizes)
    print("sizes   : " + ", ".join(H.fmt_bytes(s) for s in cfg.sizes) + "\n")
    peers, skipped = P.available(KIND)
    with tempfile.TemporaryDirectory(prefix="bfa-bench-scaling-") as tmp:
        for size in cfg.sizes:
            bench_size(size, peers, cfg, tmp, res)
    for metric, title in (("warm_read", "open + read one row of 'emb', warm (in this process, page cache warm)"),
                          ("cold_total", "cold: spawn -> value in a fresh process")):
        H.print_rows(f"== {title}", [r for r in res.rows if r["metric"] == metric], lambda r: H.fmt_bytes(r["size"]),
                     group=lambda r: r["size"])
    return {"peers": [p.name for p in peers], "skipped_peers": skipped, "kinds": KIND}


if __name__ == "__main__":
    sizes = {"type": lambda text: tuple(map(parse_size, text.split(","))),
             "help": "comma-separated sizes, e.g. 10M,100M,1G,4G"}
    sys.exit(H.main(__doc__, SETTINGS, run, options=[("--sizes", sizes)]))
