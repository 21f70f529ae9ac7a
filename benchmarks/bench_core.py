"""Core benchmark: bfast_archive against every peer (benchmarks/peers.py) on records, arrays and mixed data.

Workloads (seeded): records = {"meta", "users": N dicts}; arrays = 8 NumPy arrays sharing one leading
dimension; mixed = fewer users and arrays in one dict; arrays-big = arrays at ~1 GiB, cold runs only.  Per
workload and peer: write + fsync (every peer's file and directory are fsynced, as bfa.dump does), serialise
to bytes, file size, full load (checked equal), open + read one value warm (users[i]["name"], or one row of
"emb"; closing included), the same in fresh children (harness.cold_run: spawn -> value, imports, open+read,
peak RSS growth; with --nocache also after dropping the page cache), and the lazy users[i]["name"] loop
against the in-memory dict.  Timing: benchmarks/harness.py's method; targets from this run's medians.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness as H  # noqa: E402
from benchmarks import peers as P  # noqa: E402

MiB, GiB, SEED = H.MiB, H.GiB, H.SEED
SETTINGS = {  # name: (full, quick); nocache_repeats: cold children after dropping the page cache (--nocache N);
    # cold_warmups: discarded cold children per peer (none in the quick smoke run, whose figures are not published)
    "users": (100_000, 10_000), "array_bytes": (400 * MiB, 40 * MiB), "mixed_users": (10_000, 2_000),
    "mixed_array_bytes": (40 * MiB, 8 * MiB), "big_array_bytes": (1 * GiB, 32 * MiB), "repeats": (7, 3),
    "slow_repeats": (3, 2), "cold_repeats": (5, 1), "cold_warmups": (1, 0), "lazy_accesses": (100_000, 5_000),
    "nocache_repeats": (0, 0),
}


FIRST_NAMES = ("ada alan barbara claude donald edsger frances grace ivan john ken leslie margaret niklaus radia "
               "tim").split()
LAST_NAMES = ("lovelace turing liskov shannon knuth dijkstra allen hopper sutherland backus thompson lamport hamilton "
              "wirth").split()
TAG_WORDS = "admin beta core dev eu gold ios linux mobile new ops paid pro qa staff trial us vip web wiki".split()
META = {"name": "run-7", "lr": 1e-3, "epochs": 30, "batch_size": 256, "seed": SEED, "optimizer": "adamw",
        "tags": ["baseline", "fp32"]}
# name, dtype, shape of one row; all arrays share the leading dimension
ARRAY_COLUMNS = (("emb", "float32", (256,)), ("proj", "float64", (16,)), ("patch", "float32", (4, 4)),
                 ("counts", "uint8", (48,)), ("ids", "int64", ()), ("score", "float64", ()), ("label", "int32", ()),
                 ("pos", "int16", (2,)))


@dataclass
class Workload:
    name: str
    kind: str  # "records" | "arrays" | "mixed": which peers can hold it
    description: str
    obj: dict
    probe: tuple  # the value an open+read fetches, see peers.walk
    cold_only: bool = False


def make_users(n: int, rng: random.Random) -> list[dict]:
    users = []
    for i in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        users.append({"id": 1_000_000 + i, "name": f"{first.title()} {last.title()}",
                      "email": f"{first}.{last}{i}@example.com", "score": rng.random() * 100.0,
                      "active": rng.random() < 0.7, "tags": rng.sample(TAG_WORDS, 3)})
    return users


def make_arrays(total_bytes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    row_bytes = sum(np.dtype(dt).itemsize * prod(shape) for _, dt, shape in ARRAY_COLUMNS)
    rows = total_bytes // row_bytes
    return {name: rng.standard_normal((rows, *shape), dtype=dtype) if np.dtype(dtype).kind == "f" else
            rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (rows, *shape), dtype=dtype, endpoint=True)
            for name, dtype, shape in ARRAY_COLUMNS}


def nbytes(arrays: dict) -> int:
    return sum(a.nbytes for a in arrays.values() if isinstance(a, np.ndarray))


def build_workload(name: str, cfg: H.Config) -> Workload:
    rng, nprng = random.Random(SEED), np.random.default_rng(SEED)
    if name == "records":
        obj = {"meta": dict(META), "users": make_users(cfg.users, rng)}
        return Workload(name, "records", f"{cfg.users:,} user dicts + meta", obj, ("users", cfg.users // 2, "name"))
    if name in ("arrays", "arrays-big"):
        size = cfg.array_bytes if name == "arrays" else cfg.big_array_bytes
        obj = make_arrays(size, nprng)
        rows = len(obj["emb"])
        desc = f"{len(obj)} arrays, {H.fmt_bytes(nbytes(obj))}, {rows:,} rows"
        return Workload(name, "arrays", desc, obj, ("emb", rows // 2), cold_only=(name == "arrays-big"))
    if name == "mixed":
        obj = {"meta": dict(META), "users": make_users(cfg.mixed_users, rng),
               **make_arrays(cfg.mixed_array_bytes, nprng)}
        desc = f"{cfg.mixed_users:,} user dicts + {len(obj) - 2} arrays, {H.fmt_bytes(nbytes(obj))}"
        return Workload(name, "mixed", desc, obj, ("users", cfg.mixed_users // 2, "name"))
    raise ValueError(name)


WORKLOADS = ("records", "arrays", "mixed", "arrays-big")


def lazy_path_loop(root, indices) -> None:
    """The lazy-path access pattern, identical for the archive and the dict."""
    for i in indices:
        root["users"][i]["name"]


def find_mismatch(a, b, where="obj") -> str | None:
    """First difference between two workload objects (exact types for scalars)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{where}: {type(a).__name__} vs {type(b).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
            return f"{where}: arrays differ ({a.dtype}{a.shape} vs {b.dtype}{b.shape})"
        return None
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(a)} vs {sorted(b)}"
        return next((m for k in a if (m := find_mismatch(a[k], b[k], f"{where}[{k!r}]"))), None)
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{where}: length {len(a)} vs {len(b)}"
        pairs = enumerate(zip(a, b, strict=True))
        return next((m for i, (x, y) in pairs if (m := find_mismatch(x, y, f"{where}[{i}]"))), None)
    return None if a == b else f"{where}: {a!r} vs {b!r}"


# the order of rows in the tables; cold_rss_kept: JSON only; nocache_*: with nocache_repeats > 0 only
METRICS = ("write", "dumps", "size", "load", "warm_read", "cold_total", "cold_import", "cold_open_read", "cold_wall",
           "cold_rss_peak", "cold_rss_kept", "lazy_path", "nocache_total", "nocache_import", "nocache_open_read")


def unit(metric: str) -> str:
    return "B" if metric == "size" or "rss" in metric else "s"


DICT_PEER = "dict"  # the in-memory object, baseline of the lazy-path loop


def bench_peer(wl: Workload, peer: P.Peer, cfg: H.Config, tmp: str, res: H.Results) -> None:
    """All metrics of one peer on one workload; the peer's file is removed afterwards."""
    path = os.path.join(tmp, f"{wl.name}.{peer.name}")
    expected = P.touch(P.walk(wl.obj, wl.probe))
    array_value = isinstance(P.walk(wl.obj, wl.probe), np.ndarray)

    def add(metric, samples):
        res.add(samples, unit(metric), workload=wl.name, metric=metric, peer=peer.name)

    def write():
        if wl.cold_only:  # setup only, not timed
            peer.durable_write(wl.obj, path)
        else:
            add("write", H.measure(lambda: peer.durable_write(wl.obj, path), cfg))
        add("size", [P.path_size(path)])

    def load():
        mismatch = find_mismatch(wl.obj, peer.load(path))
        H.expect(not mismatch, f"{peer.name}.load returned a different object: {mismatch}")
        add("load", H.measure(lambda: peer.load(path), cfg))

    def warm_read():
        read = peer.reader()
        value = read(path, wl.probe)
        H.expect(value == expected, f"read {wl.probe!r}: got {value!r:.80}, expected {expected!r:.80}")
        add("warm_read", H.measure(lambda: read(path, wl.probe), cfg))

    def children(n: int, drop_cache: bool) -> list:
        runs = []
        for _ in range(n):
            if drop_cache and not H.drop_page_cache():
                raise RuntimeError("could not drop the page cache (needs root)")
            metrics, value = H.cold_run(peer.name, path, wl.probe, array_value, tmp)
            H.expect(value == repr(expected), f"cold read {wl.probe!r}: got {value:.80}, expected {expected!r:.80}")
            runs.append(metrics)
        return runs

    def cold():
        for _ in range(cfg.cold_warmups):  # discarded: leaves .pyc files, loads shared libraries
            H.cold_run(peer.name, path, wl.probe, array_value, tmp)
        runs = children(cfg.cold_repeats, False)
        for metric in runs[0]:
            add(metric, [r[metric] for r in runs])
        if cfg.nocache_repeats:  # the file, the interpreter and the peer's libraries all come from disk
            runs = children(cfg.nocache_repeats, True)
            for metric in ("total", "import", "open_read"):
                add(f"nocache_{metric}", [r[f"cold_{metric}"] for r in runs])

    H.log(f"{wl.name}: {peer.name}")
    where = {"workload": wl.name, "peer": peer.name}
    try:
        if not res.step(write, **where, step="write"):
            return
        if not wl.cold_only:
            if peer.dumps is not None:
                res.step(lambda: add("dumps", H.measure(lambda: peer.dumps(wl.obj), cfg)), **where, step="dumps")
            res.step(load, **where, step="load")
            res.step(warm_read, **where, step="warm_read")
        res.step(cold, **where, step="cold")
    finally:
        P.remove(path)
        gc.collect()


def bench_lazy_path(wl: Workload, cfg: H.Config, tmp: str, res: H.Results) -> None:
    """arch["users"][i]["name"] over scattered i, against the same loop on the dict (sampled round-robin)."""
    rng, path = random.Random(SEED + 1), os.path.join(tmp, f"{wl.name}.lazy.bfa")
    indices = [rng.randrange(len(wl.obj["users"])) for _ in range(cfg.lazy_accesses)]

    def both():
        bfa = P.lib("bfast_archive")
        bfa.dump(wl.obj, path)
        with bfa.Archive.open(path) as arch:
            loops = {DICT_PEER: wl.obj, "bfa": arch}
            res.group({peer: lambda root=root: lazy_path_loop(root, indices) for peer, root in loops.items()}, cfg,
                      workload=wl.name, metric="lazy_path", per=len(indices))

    H.log(f"{wl.name}: lazy path loop")
    res.step(both, workload=wl.name, peer="bfa", step="lazy_path")
    P.remove(path)


# label, workload, metric, baseline peer (None: an absolute limit, in the metric's unit), op, limit
TARGETS = (
    ("open+read nested field, warm: bfa / pyarrow IPC mmap", "records", "warm_read", "pyarrow", "<=", 1 / 10),
    ("open+read one row, warm: bfa / pyarrow IPC mmap", "arrays", "warm_read", "pyarrow", "<=", 1 / 10),
    ("open+read one row, warm: bfa / safetensors slice", "arrays", "warm_read", "safetensors", "<=", 1 / 3),
    ("cold spawn->value: bfa / h5py", "records", "cold_total", "h5py", "<", 1),
    ("cold spawn->value: bfa / pyarrow", "records", "cold_total", "pyarrow", "<", 1),
    ("cold spawn->value: bfa / h5py", "arrays", "cold_total", "h5py", "<", 1),
    ("cold spawn->value: bfa / pyarrow", "arrays", "cold_total", "pyarrow", "<", 1),
    ("cold spawn->value: bfa / h5py", "mixed", "cold_total", "h5py", "<", 1),
    ("cold spawn->value: bfa / h5py", "arrays-big", "cold_total", "h5py", "<", 1),
    ("cold spawn->value: bfa / pyarrow", "arrays-big", "cold_total", "pyarrow", "<", 1),
    ("cold peak RSS growth of open+read, bfa", "arrays-big", "cold_rss_peak", None, "<", 4 * MiB),
    ('lazy users[i]["name"] loop: bfa / dict', "records", "lazy_path", DICT_PEER, "<=", 25),
    ('lazy users[i]["name"] loop: bfa / dict', "mixed", "lazy_path", DICT_PEER, "<=", 25),
    ("write+fsync: bfa.dump / np.save", "arrays", "write", "npy", "<=", 1.3),
    ("write+fsync: bfa.dump / safetensors save_file", "arrays", "write", "safetensors", "<=", 1.3),
    ("write+fsync: bfa.dump / pickle.dump", "records", "write", "pickle", "<=", 2),
    ("serialise: bfa.dumps / pickle.dumps", "records", "dumps", "pickle", "<=", 2),
    ("full load: bfa.load / pickle.load", "records", "load", "pickle", "<=", 1.5),
)


def targets(res: H.Results) -> list:
    return [res.target(label, {"workload": wl, "metric": metric, "peer": "bfa"},
                       base and {"workload": wl, "metric": metric, "peer": base}, limit, op,
                       "x" if base else unit(metric), workload=wl)
            for label, wl, metric, base, op, limit in TARGETS]


def run(cfg: H.Config, res: H.Results) -> dict:
    if cfg.nocache_repeats and not H.drop_page_cache():
        print("NOTE    : cannot drop the page cache here (needs root); --nocache ignored")
        cfg["nocache_repeats"] = 0
    peers, skipped = P.available()
    for name, problem in skipped.items():
        print(f"NOTE    : peer {name} skipped ({problem})")
    with tempfile.TemporaryDirectory(prefix="bfa-bench-") as tmp:
        for name in WORKLOADS:
            H.log(f"{name}: building")
            wl = build_workload(name, cfg)
            for peer in peers:
                if wl.kind in peer.kinds:
                    bench_peer(wl, peer, cfg, tmp, res)
            if "users" in wl.obj and not wl.cold_only:
                bench_lazy_path(wl, cfg, tmp, res)
            order = [p.name for p in peers] + [DICT_PEER]
            rows = sorted((r for r in res.rows if r["workload"] == name and r["metric"] != "cold_rss_kept"),
                          key=lambda r: (METRICS.index(r["metric"]), order.index(r["peer"])))
            H.print_rows(f"== {name}: {wl.description}; probe {wl.probe!r}", rows)
            del wl
            gc.collect()
    res.print_targets("core", targets(res))
    return {"peers": [p.name for p in peers], "workloads": list(WORKLOADS), "skipped_peers": skipped,
            "peer_notes": {p.name: p.note for p in peers if p.note}}


if __name__ == "__main__":
    nocache = {"type": int, "metavar": "N", "dest": "nocache_repeats",
               "help": "N cold children per peer after dropping the page cache"}
    sys.exit(H.main(__doc__, SETTINGS, run, options=[("--nocache", nocache)]))
