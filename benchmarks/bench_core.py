"""Core benchmark: bfast_archive against pickle, msgspec, pyarrow IPC, safetensors, h5py and np.save.

Run (from the repository root):

    pip install -e . -r benchmarks/requirements.txt
    python benchmarks/bench_core.py                 # full run, a few minutes on 2 cores
    python benchmarks/bench_core.py --quick         # smaller data, fewer repeats, < 2 minutes
    python benchmarks/bench_core.py --out res.json  # also write raw samples + medians as JSON

Tables go to stdout, progress to stderr.  Every figure is measured in the run
that prints it; the target ratios at the end are computed from those medians.

Workloads (deterministic, seeded):
  records     {"meta": {...}, "users": [N dicts: id, name, email, score, active, tags]}
  arrays      8 NumPy arrays sharing one leading dimension (float32 embeddings, ...)
  mixed       a smaller "users" list and arrays in one dict
  arrays-big  the arrays workload at ~1 GiB, only for the cold-start / RSS runs

Peers, each only on the workloads it can hold:
  bfa          bfast_archive: dump/dumps/load, Archive.open + lazy indexing
  pickle       protocol 5, one file
  msgspec      msgpack; arrays as {"__nd__": [dtype, shape], "data": raw bytes}
  pyarrow      IPC file, one record batch; users as columns, arrays as
               (FixedSizeList) columns; read lazily via pa.memory_map
  safetensors  arrays only; safe_open(framework="np") + get_slice
  h5py         users as one dataset per field, arrays as datasets
  npy          arrays only; one .npy per array in a directory, np.load(mmap_mode="r")

Metrics per workload and peer:
  write / serialise to bytes / file size / full load (materialise everything);
  open + read one value, warm (in-process, page cache warm): "users"[i]["name"]
    on records and mixed, one row of "emb" on arrays; includes closing the file;
  cold: the same open + read in a fresh `python -c` child: time from spawn to the
    value (interpreter start + imports + open + read), its import and open+read
    parts, the child's wall time, and the peak RSS growth of the open+read
    (VmHWM reset via /proc/self/clear_refs, then VmHWM after - VmRSS before).
    "imports" is what the peer's reader imports up front, plus NumPy when the
    probed value is an array row; a library's own lazy imports land in open+read;
  lazy path: arch["users"][i]["name"] over scattered i vs the in-memory dict.

Method: time.perf_counter; gc stays enabled (default thresholds) for every
peer, with gc.collect() before each sample, outside the timing.  Fast
operations are timed in batches of >= 10 ms and reported per operation;
operations taking >= 0.2 s get fewer repeats.  The first call of every
operation is a discarded warm-up.  "Cold" means a fresh process: the OS page
cache still holds the data file (it was just written), it is not dropped; one
discarded warm-up child per peer leaves .pyc caches written, as in normal use
(PYTHONDONTWRITEBYTECODE is removed from the children's environment).
bfa.dump fsyncs the file and its directory (it writes atomically), so every
peer's "write file" is followed by the same fsyncs, inside the timing;
"serialise to bytes" is the in-memory comparison without any I/O.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from math import prod
from pathlib import Path

import h5py
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.ipc  # registers pa.ipc
import safetensors.numpy as st_np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _util as U  # noqa: E402

BFA_API = ("dump", "dumps", "load", "loads", "Archive")
try:  # the library may not be built yet: then run the peers only
    import bfast_archive as bfa

    _missing = [name for name in BFA_API if not hasattr(bfa, name)]
    if _missing:
        raise ImportError(f"bfast_archive lacks {', '.join(_missing)}")
    BFA_IMPORT_ERROR = None
except Exception as exc:
    bfa = None
    BFA_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"

KiB, MiB, GiB = 1024, 1024**2, 1024**3
SEED = 7


# ==========================================================================
# configuration
# ==========================================================================


@dataclass(frozen=True)
class Config:
    users: int = 100_000
    array_bytes: int = 400 * MiB
    mixed_users: int = 10_000
    mixed_array_bytes: int = 40 * MiB
    big_array_bytes: int = 1 * GiB
    fast_repeats: int = 7
    slow_repeats: int = 3
    cold_repeats: int = 5
    lazy_accesses: int = 100_000
    # cold-cache children per peer, each after dropping the OS page cache
    # (needs root; benchmarks/run.py turns it on where it works, the CLI never)
    nocache_repeats: int = 0


FULL = Config()
QUICK = Config(
    users=10_000,
    array_bytes=40 * MiB,
    mixed_users=2_000,
    mixed_array_bytes=8 * MiB,
    big_array_bytes=128 * MiB,
    fast_repeats=5,
    slow_repeats=2,
    cold_repeats=3,
    lazy_accesses=20_000,
)

SLOW_OP_SECONDS = 0.2  # an operation at least this slow gets slow_repeats
MIN_BATCH_SECONDS = 0.01  # fast operations are timed in batches at least this long


# ==========================================================================
# workloads
# ==========================================================================

FIRST_NAMES = (
    "ada alan barbara claude donald edsger frances grace ivan john ken leslie margaret niklaus radia tim".split()
)
LAST_NAMES = (
    "lovelace turing liskov shannon knuth dijkstra allen hopper sutherland backus thompson lamport hamilton wirth"
).split()
TAG_WORDS = "admin beta core dev eu gold ios linux mobile new ops paid pro qa staff trial us vip web wiki".split()

META = {
    "name": "run-7",
    "lr": 1e-3,
    "epochs": 30,
    "batch_size": 256,
    "seed": SEED,
    "optimizer": "adamw",
    "tags": ["baseline", "fp32"],
}

# name, dtype, shape of one row; all arrays share the leading dimension
ARRAY_COLUMNS = (
    ("emb", "float32", (256,)),
    ("proj", "float64", (16,)),
    ("patch", "float32", (4, 4)),
    ("counts", "uint8", (48,)),
    ("ids", "int64", ()),
    ("score", "float64", ()),
    ("label", "int32", ()),
    ("pos", "int16", (2,)),
)


@dataclass
class Workload:
    name: str
    kind: str  # "records" | "arrays" | "mixed": which peers can hold it
    description: str
    obj: dict
    probe: tuple  # the value an open+read fetches, see _util.walk
    cold_only: bool = False


def make_users(n: int, rng: random.Random) -> list[dict]:
    users = []
    for i in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        users.append(
            {
                "id": 1_000_000 + i,
                "name": f"{first.title()} {last.title()}",
                "email": f"{first}.{last}{i}@example.com",
                "score": rng.random() * 100.0,
                "active": rng.random() < 0.7,
                "tags": rng.sample(TAG_WORDS, 3),
            }
        )
    return users


def make_arrays(total_bytes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    row_bytes = sum(np.dtype(dt).itemsize * prod(shape) for _, dt, shape in ARRAY_COLUMNS)
    rows = total_bytes // row_bytes
    arrays = {}
    for name, dtype, shape in ARRAY_COLUMNS:
        full_shape, dt = (rows, *shape), np.dtype(dtype)
        if dt.kind == "f":
            arrays[name] = rng.standard_normal(full_shape, dtype=dt)
        else:
            info = np.iinfo(dt)
            arrays[name] = rng.integers(info.min, info.max, full_shape, dtype=dt, endpoint=True)
    return arrays


def nbytes(arrays: dict) -> int:
    return sum(a.nbytes for a in arrays.values() if isinstance(a, np.ndarray))


def build_workload(name: str, cfg: Config) -> Workload:
    rng, nprng = random.Random(SEED), np.random.default_rng(SEED)
    if name == "records":
        obj = {"meta": dict(META), "users": make_users(cfg.users, rng)}
        return Workload(name, "records", f"{cfg.users:,} user dicts + meta", obj, ("users", cfg.users // 2, "name"))
    if name in ("arrays", "arrays-big"):
        size = cfg.array_bytes if name == "arrays" else cfg.big_array_bytes
        obj = make_arrays(size, nprng)
        rows = len(obj["emb"])
        desc = f"{len(obj)} arrays, {U.fmt_bytes(nbytes(obj))}, {rows:,} rows"
        return Workload(name, "arrays", desc, obj, ("emb", rows // 2), cold_only=(name == "arrays-big"))
    if name == "mixed":
        obj = {
            "meta": dict(META),
            "users": make_users(cfg.mixed_users, rng),
            **make_arrays(cfg.mixed_array_bytes, nprng),
        }
        desc = f"{cfg.mixed_users:,} user dicts + {len(obj) - 2} arrays, {U.fmt_bytes(nbytes(obj))}"
        return Workload(name, "mixed", desc, obj, ("users", cfg.mixed_users // 2, "name"))
    raise ValueError(name)


WORKLOADS = ("records", "arrays", "mixed", "arrays-big")


# ==========================================================================
# peers: write / dumps / load adapters (reading one value lives in _util.READERS)
# ==========================================================================

USER_FIELDS = ("id", "name", "email", "score", "active", "tags")


def array_items(obj: dict) -> dict[str, np.ndarray]:
    return {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}


# --- bfast_archive ---------------------------------------------------------


def write_bfa(obj, path):
    bfa.dump(obj, path)


def dumps_bfa(obj):
    return bfa.dumps(obj)


def load_bfa(path):
    return bfa.load(path)


# --- pickle ------------------------------------------------------------------


def write_pickle(obj, path):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)


def dumps_pickle(obj):
    return pickle.dumps(obj, protocol=5)


def load_pickle(path):
    with open(path, "rb") as f:
        return pickle.load(f)


# --- msgspec -----------------------------------------------------------------

MSGSPEC_ENCODER = msgspec.msgpack.Encoder(enc_hook=U.msgspec_enc_hook)
MSGSPEC_DECODER = msgspec.msgpack.Decoder()


def write_msgspec(obj, path):
    with open(path, "wb") as f:
        f.write(MSGSPEC_ENCODER.encode(obj))


def dumps_msgspec(obj):
    return MSGSPEC_ENCODER.encode(obj)


def load_msgspec(path):
    with open(path, "rb") as f:
        return U.msgspec_restore_arrays(MSGSPEC_DECODER.decode(f.read()))


# --- pyarrow IPC ---------------------------------------------------------------


def arrow_batch(obj: dict) -> pa.RecordBatch:
    """records -> one column per user field; arrays -> one column per array
    (FixedSizeList of the flattened row when the array is N-D)."""
    if "users" in obj:
        users = obj["users"]
        columns = {f: pa.array([u[f] for u in users]) for f in USER_FIELDS}
        info = {"kind": "records", "meta": obj["meta"]}
    else:
        columns, shapes = {}, {}
        for name, arr in obj.items():
            flat = pa.array(arr.reshape(-1))
            columns[name] = flat if arr.ndim == 1 else pa.FixedSizeListArray.from_arrays(flat, prod(arr.shape[1:]))
            shapes[name] = [arr.dtype.str, list(arr.shape)]
        info = {"kind": "arrays", "shapes": shapes}
    return pa.RecordBatch.from_pydict(columns, metadata={"bench": json.dumps(info)})


def write_pyarrow(obj, path):
    batch = arrow_batch(obj)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


def load_pyarrow(path):
    with pa.OSFile(path, "rb") as source:
        table = pa.ipc.open_file(source).read_all()
    info = json.loads(table.schema.metadata[b"bench"])
    if info["kind"] == "records":
        return {"meta": info["meta"], "users": table.to_pylist()}
    arrays = {}
    for name, (_dtype, shape) in info["shapes"].items():
        column = table.column(name).combine_chunks()
        values = column.flatten() if pa.types.is_fixed_size_list(column.type) else column
        arrays[name] = values.to_numpy().reshape(shape)
    return arrays


# --- safetensors -----------------------------------------------------------------


def write_safetensors(obj, path):
    st_np.save_file(obj, path)


def dumps_safetensors(obj):
    return st_np.save(obj)


def load_safetensors(path):
    return st_np.load_file(path)


# --- h5py ------------------------------------------------------------------------


def write_h5py(obj, path):
    with h5py.File(path, "w") as f:
        if "meta" in obj:
            f.attrs["meta"] = json.dumps(obj["meta"])
        if "users" in obj:
            group = f.create_group("users")
            for name, column in user_columns(obj["users"]).items():
                group.create_dataset(name, data=column)
        for name, arr in array_items(obj).items():
            f.create_dataset(name, data=arr)


def user_columns(users: list[dict]) -> dict[str, np.ndarray]:
    text = h5py.string_dtype()
    return {
        "id": np.array([u["id"] for u in users], dtype=np.int64),
        "name": np.array([u["name"] for u in users], dtype=text),
        "email": np.array([u["email"] for u in users], dtype=text),
        "score": np.array([u["score"] for u in users], dtype=np.float64),
        "active": np.array([u["active"] for u in users], dtype=np.bool_),
        "tags": np.array([u["tags"] for u in users], dtype=text),
    }


def load_h5py(path):
    out = {}
    with h5py.File(path, "r") as f:
        if "meta" in f.attrs:
            out["meta"] = json.loads(f.attrs["meta"])
        if "users" in f:
            group = f["users"]
            columns = []
            for name in USER_FIELDS:
                ds = group[name]
                ds = ds.asstr() if h5py.check_string_dtype(ds.dtype) else ds
                columns.append(ds[()].tolist())
            out["users"] = [dict(zip(USER_FIELDS, row, strict=True)) for row in zip(*columns, strict=True)]
        for name, item in f.items():
            if isinstance(item, h5py.Dataset):
                out[name] = item[()]
    return out


# --- np.save, one .npy per array -----------------------------------------------


def write_npy(obj, path):
    os.makedirs(path, exist_ok=True)
    for name, arr in obj.items():
        np.save(os.path.join(path, name + ".npy"), arr)


def load_npy(path):
    return {f[: -len(".npy")]: np.load(os.path.join(path, f)) for f in sorted(os.listdir(path))}


# --- the peer table -------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    name: str  # also the key into _util.READERS
    kinds: frozenset  # workload kinds it can hold
    write: Callable
    load: Callable
    dumps: Callable | None = None
    fsyncs: bool = False  # its write already fsyncs the file and its directory

    def durable_write(self, obj, path) -> None:
        """Write, then fsync like bfa.dump does, so every peer's write is durable."""
        self.write(obj, path)
        if not self.fsyncs:
            fsync_path(path)


ALL_KINDS = frozenset({"records", "arrays", "mixed"})
PEERS = (
    Peer("bfa", ALL_KINDS, write_bfa, load_bfa, dumps_bfa, fsyncs=True),
    Peer("pickle", ALL_KINDS, write_pickle, load_pickle, dumps_pickle),
    Peer("msgspec", ALL_KINDS, write_msgspec, load_msgspec, dumps_msgspec),
    Peer("pyarrow", frozenset({"records", "arrays"}), write_pyarrow, load_pyarrow),
    Peer("safetensors", frozenset({"arrays"}), write_safetensors, load_safetensors, dumps_safetensors),
    Peer("h5py", ALL_KINDS, write_h5py, load_h5py),
    Peer("npy", frozenset({"arrays"}), write_npy, load_npy),
)
DICT_PEER = "dict"  # the in-memory object, baseline of the lazy-path loop


# ==========================================================================
# measurement
# ==========================================================================


def measure(fn: Callable[[], object], cfg: Config) -> tuple[list[float], int]:
    """Time fn(); returns (seconds per call for each sample, calls per sample).

    Two warm-up calls, then fast_repeats samples (batched so each lasts
    >= MIN_BATCH_SECONDS) or, for calls >= SLOW_OP_SECONDS, slow_repeats
    single calls.  The result of a call is dropped outside the timed region.
    """
    once = _time_once(fn)
    if once < SLOW_OP_SECONDS:
        once = _time_once(fn)
    if once >= SLOW_OP_SECONDS:
        repeats, inner = cfg.slow_repeats, 1
    else:
        repeats, inner = cfg.fast_repeats, max(1, min(100_000, int(MIN_BATCH_SECONDS / max(once, 1e-9))))
    samples = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(inner):
            out = fn()
        elapsed = time.perf_counter() - t0
        del out
        samples.append(elapsed / inner)
    return samples, inner


def _time_once(fn) -> float:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    del out
    return elapsed


COLD_CHILD = """\
import time; t_start = time.perf_counter()
import json, sys
sys.path.insert(0, {root!r})
from benchmarks import _util as U
t_util = time.perf_counter()
read = U.READERS[{peer!r}]()
if {array_value!r}:
    import numpy  # every reader returns NumPy data here: import it up front, for all
t_imported = time.perf_counter()
hwm_reset = U.reset_peak_rss()
before = U.proc_status()
value = read({path!r}, {probe!r})
t_read = time.perf_counter()
after = U.proc_status()
print(json.dumps(dict(t_start=t_start, t_util=t_util, t_imported=t_imported, t_read=t_read,
                      rss_before=before["VmRSS"], rss_after=after["VmRSS"], hwm_after=after["VmHWM"],
                      hwm_reset=hwm_reset, value=repr(value))))
"""


# the children may cache bytecode (the warm-up child writes it), as a user's Python would
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cold_run(peer: str, path: str, probe: tuple, array_value: bool, cwd: str) -> tuple[dict, str]:
    """One fresh `python -c` child that imports the peer, opens path and reads probe.

    With array_value, NumPy is imported in the import phase, so that no reader
    pays for it (time and RSS) inside its open+read.  perf_counter is
    CLOCK_MONOTONIC on Linux, so the parent's spawn time and the child's
    timestamps share one clock.
    """
    code = COLD_CHILD.format(root=str(ROOT), peer=peer, path=path, probe=probe, array_value=array_value)
    t_spawn = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=cwd, env=CHILD_ENV
    )
    wall = time.perf_counter() - t_spawn
    if proc.returncode != 0:
        raise RuntimeError(f"cold child for {peer} exited {proc.returncode}:\n{proc.stderr}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    metrics = {
        "cold_total": r["t_read"] - t_spawn,
        "cold_import": r["t_imported"] - r["t_util"],
        "cold_open_read": r["t_read"] - r["t_imported"],
        "cold_wall": wall,
        "cold_rss_peak": r["hwm_after"] - r["rss_before"],
        "cold_rss_kept": r["rss_after"] - r["rss_before"],
    }
    if not r["hwm_reset"]:
        metrics["cold_rss_peak"] = max(metrics["cold_rss_kept"], 0)  # VmHWM not resettable: no true peak
    return metrics, r["value"]


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
        return next(
            (m for i, (x, y) in enumerate(zip(a, b, strict=True)) if (m := find_mismatch(x, y, f"{where}[{i}]"))), None
        )
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def fsync_path(path: str) -> None:
    """fsync a file (or every file of a directory), then the directory holding it."""
    files = [os.path.join(path, f) for f in os.listdir(path)] if os.path.isdir(path) else [path]
    for name in files + [os.path.dirname(files[0])]:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def path_size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


# ==========================================================================
# results
# ==========================================================================

# metric -> (label, unit); also the order of rows in the tables
METRICS = {
    "write": ("write file + fsync", "s"),
    "dumps": ("serialise to bytes", "s"),
    "size": ("file size", "B"),
    "load": ("full load", "s"),
    "warm_read": ("open+read one value, warm", "s"),
    "cold_total": ("cold: spawn -> value read", "s"),
    "cold_import": ("cold: imports", "s"),
    "cold_open_read": ("cold: open+read", "s"),
    "cold_wall": ("cold: child wall time", "s"),
    "cold_rss_peak": ("cold: peak RSS growth, open+read", "B"),
    "cold_rss_kept": ("cold: RSS growth kept after open+read", "B"),  # JSON only
    "lazy_path": ('users[i]["name"] loop, per access', "s"),
    # page cache dropped before each child (Config.nocache_repeats > 0 only)
    "nocache_total": ("cache dropped: spawn -> value read", "s"),
    "nocache_import": ("cache dropped: imports", "s"),
    "nocache_open_read": ("cache dropped: open+read", "s"),
}


@dataclass
class Results:
    rows: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def add(self, workload: str, metric: str, peer: str, samples: list, **extra) -> None:
        self.rows.append(
            {
                "workload": workload,
                "metric": metric,
                "peer": peer,
                "unit": METRICS[metric][1],
                "samples": samples,
                **U.summary(samples),
                **extra,
            }
        )

    def median(self, workload: str, metric: str, peer: str) -> float | None:
        for row in self.rows:
            if (row["workload"], row["metric"], row["peer"]) == (workload, metric, peer):
                return row["median"]
        return None

    def error(self, workload: str, step: str, peer: str, message: str) -> None:
        self.errors.append({"workload": workload, "step": step, "peer": peer, "error": message})
        log(f"  !! {workload}/{peer}/{step}: {message.strip().splitlines()[-1]}")


START = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ==========================================================================
# running one workload
# ==========================================================================


def bench_peer(wl: Workload, peer: Peer, cfg: Config, tmp: str, res: Results) -> None:
    """All metrics of one peer on one workload; the peer's file is removed afterwards."""
    path = os.path.join(tmp, f"{wl.name}.{peer.name}")
    expected = U.touch(U.walk(wl.obj, wl.probe))

    def step(name: str, fn: Callable[[], None]) -> bool:
        try:
            fn()
            return True
        except Exception:
            res.error(wl.name, name, peer.name, traceback.format_exc())
            return False

    def write():
        if wl.cold_only:  # setup only, not timed
            peer.durable_write(wl.obj, path)
        else:
            samples, inner = measure(lambda: peer.durable_write(wl.obj, path), cfg)
            res.add(wl.name, "write", peer.name, samples, inner=inner)
        res.add(wl.name, "size", peer.name, [path_size(path)])

    def dumps():
        samples, inner = measure(lambda: peer.dumps(wl.obj), cfg)
        res.add(wl.name, "dumps", peer.name, samples, inner=inner)

    def load():
        mismatch = find_mismatch(wl.obj, peer.load(path))
        if mismatch:
            raise AssertionError(f"{peer.name}.load returned a different object: {mismatch}")
        samples, inner = measure(lambda: peer.load(path), cfg)
        res.add(wl.name, "load", peer.name, samples, inner=inner)

    def warm_read():
        read = U.READERS[peer.name]()
        value = read(path, wl.probe)
        if value != expected:
            raise AssertionError(f"read {wl.probe!r}: got {value!r:.80}, expected {expected!r:.80}")
        samples, inner = measure(lambda: read(path, wl.probe), cfg)
        res.add(wl.name, "warm_read", peer.name, samples, inner=inner)

    def cold():
        array_value = isinstance(U.walk(wl.obj, wl.probe), np.ndarray)
        cold_run(peer.name, path, wl.probe, array_value, tmp)  # warm-up: .pyc files, shared libraries
        runs = []
        for _ in range(cfg.cold_repeats):
            metrics, value = cold_run(peer.name, path, wl.probe, array_value, tmp)
            if value != repr(expected):
                raise AssertionError(f"cold read {wl.probe!r}: got {value:.80}, expected {expected!r:.80}")
            runs.append(metrics)
        for metric in runs[0]:
            res.add(wl.name, metric, peer.name, [r[metric] for r in runs])
        if cfg.nocache_repeats:
            nocache()

    def nocache():
        """Cold children with the page cache dropped first: the file, the
        interpreter and the peer's libraries all come from disk."""
        array_value = isinstance(U.walk(wl.obj, wl.probe), np.ndarray)
        runs = []
        for _ in range(cfg.nocache_repeats):
            if not U.drop_page_cache():
                raise RuntimeError("could not drop the page cache (needs root)")
            metrics, value = cold_run(peer.name, path, wl.probe, array_value, tmp)
            if value != repr(expected):
                raise AssertionError(f"cold read {wl.probe!r}: got {value:.80}, expected {expected!r:.80}")
            runs.append(metrics)
        for metric in ("total", "import", "open_read"):
            res.add(wl.name, f"nocache_{metric}", peer.name, [r[f"cold_{metric}"] for r in runs])

    log(f"{wl.name}: {peer.name}")
    try:
        if not step("write", write):
            return
        if not wl.cold_only:
            if peer.dumps is not None:
                step("dumps", dumps)
            step("load", load)
            step("warm_read", warm_read)
        step("cold", cold)
    finally:
        remove(path)
        gc.collect()


def bench_lazy_path(wl: Workload, cfg: Config, tmp: str, res: Results) -> None:
    """arch["users"][i]["name"] over scattered i, against the same loop on the dict."""
    users = len(wl.obj["users"])
    rng = random.Random(SEED + 1)
    indices = [rng.randrange(users) for _ in range(cfg.lazy_accesses)]

    def record(peer: str, root) -> None:
        samples, _ = measure(lambda: lazy_path_loop(root, indices), cfg)
        res.add(wl.name, "lazy_path", peer, [s / len(indices) for s in samples], accesses=len(indices))

    log(f"{wl.name}: lazy path loop")
    record(DICT_PEER, wl.obj)
    if bfa is None:
        return
    path = os.path.join(tmp, f"{wl.name}.lazy.bfa")
    try:
        bfa.dump(wl.obj, path)
        with bfa.Archive.open(path) as arch:
            record("bfa", arch)
    except Exception:
        res.error(wl.name, "lazy_path", "bfa", traceback.format_exc())
    finally:
        remove(path)


def bench_workload(wl: Workload, peers: list[Peer], cfg: Config, tmp: str, res: Results) -> None:
    for peer in peers:
        if wl.kind in peer.kinds:
            bench_peer(wl, peer, cfg, tmp, res)
    if "users" in wl.obj and not wl.cold_only:
        bench_lazy_path(wl, cfg, tmp, res)


# ==========================================================================
# targets: ratios the project must meet, computed from this run's medians
# ==========================================================================


@dataclass(frozen=True)
class Target:
    label: str
    workload: str
    metric: str
    baseline: str | None  # peer to divide by; None: limit is absolute (bytes)
    limit: float
    strict: bool = False  # value < limit rather than value <= limit
    peer: str = "bfa"


TARGETS = (
    Target("open+read nested field, warm: bfa / pyarrow IPC mmap", "records", "warm_read", "pyarrow", 1 / 10),
    Target("open+read one row, warm: bfa / pyarrow IPC mmap", "arrays", "warm_read", "pyarrow", 1 / 10),
    Target("open+read one row, warm: bfa / safetensors slice", "arrays", "warm_read", "safetensors", 1 / 3),
    Target("cold spawn->value: bfa / h5py", "records", "cold_total", "h5py", 1, strict=True),
    Target("cold spawn->value: bfa / pyarrow", "records", "cold_total", "pyarrow", 1, strict=True),
    Target("cold spawn->value: bfa / h5py", "arrays", "cold_total", "h5py", 1, strict=True),
    Target("cold spawn->value: bfa / pyarrow", "arrays", "cold_total", "pyarrow", 1, strict=True),
    Target("cold spawn->value: bfa / h5py", "mixed", "cold_total", "h5py", 1, strict=True),
    Target("cold spawn->value: bfa / h5py", "arrays-big", "cold_total", "h5py", 1, strict=True),
    Target("cold spawn->value: bfa / pyarrow", "arrays-big", "cold_total", "pyarrow", 1, strict=True),
    Target("cold peak RSS growth of open+read, bfa", "arrays-big", "cold_rss_peak", None, 4 * MiB, strict=True),
    Target('lazy users[i]["name"] loop: bfa / dict', "records", "lazy_path", DICT_PEER, 25),
    Target('lazy users[i]["name"] loop: bfa / dict', "mixed", "lazy_path", DICT_PEER, 25),
    Target("write+fsync: bfa.dump / np.save", "arrays", "write", "npy", 1.3),
    Target("write+fsync: bfa.dump / safetensors save_file", "arrays", "write", "safetensors", 1.3),
    Target("write+fsync: bfa.dump / pickle.dump", "records", "write", "pickle", 2),
    Target("serialise: bfa.dumps / pickle.dumps", "records", "dumps", "pickle", 2),
    Target("full load: bfa.load / pickle.load", "records", "load", "pickle", 1.5),
)


def evaluate(target: Target, res: Results) -> dict:
    value = res.median(target.workload, target.metric, target.peer)
    if value is not None and target.baseline is not None:
        base = res.median(target.workload, target.metric, target.baseline)
        value = value / base if base else None
    if value is None:
        verdict = "n/a"
    else:
        ok = value < target.limit if target.strict else value <= target.limit
        verdict = "PASS" if ok else "FAIL"
    return {**asdict(target), "value": value, "verdict": verdict}


# ==========================================================================
# report
# ==========================================================================


def machine_info() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    mem_kib = next((int(line.split()[1]) for line in _read_lines("/proc/meminfo") if line.startswith("MemTotal:")), 0)
    versions = {}
    for dist in ("bfast-archive", "numpy", "msgspec", "pyarrow", "safetensors", "h5py", "psutil"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    versions["libhdf5"] = h5py.version.hdf5_version
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "ram_bytes": mem_kib * KiB,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "versions": versions,
    }


def _read_lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.readlines()
    except OSError:
        return []


def print_header(machine: dict, cfg: Config, mode: str) -> None:
    print(f"bfast_archive core benchmark ({mode} mode)")
    ram = U.fmt_bytes(machine["ram_bytes"])
    print(f"machine : {machine['cpu_count']} cores, {machine['cpu_model']}, {ram} RAM, {machine['platform']}")
    print(f"python  : {machine['python_impl']} {machine['python']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
    if BFA_IMPORT_ERROR:
        print(f"NOTE    : bfast_archive not importable ({BFA_IMPORT_ERROR}); bfa rows skipped")
    print(
        f"method  : gc enabled (thresholds {gc.get_threshold()}), gc.collect() before each sample; "
        f"{cfg.fast_repeats} repeats (>= {MIN_BATCH_SECONDS * 1e3:.0f} ms batches) for fast ops, "
        f"{cfg.slow_repeats} for ops >= {SLOW_OP_SECONDS} s, {cfg.cold_repeats} cold children; "
        "warm-up discarded; writes fsync (as bfa.dump does); cold = fresh process, page cache not dropped"
    )
    print()


def fmt_value(value: float, unit: str) -> str:
    return U.fmt_bytes(value) if unit == "B" else U.fmt_seconds(value)


def print_workload_table(wl: Workload, res: Results, peers=PEERS) -> None:
    rows = [r for r in res.rows if r["workload"] == wl.name]
    order = [p.name for p in peers] + [DICT_PEER]
    rows.sort(key=lambda r: (list(METRICS).index(r["metric"]), order.index(r["peer"])))
    print(f"== {wl.name}: {wl.description}; probe {wl.probe!r}")
    print(f"{'metric':<36} {'peer':<12} {'median':>11} {'min':>11} {'max':>11} {'n':>3}")
    previous = None
    for r in rows:
        if r["metric"] == "cold_rss_kept":
            continue  # kept in the JSON; the table shows the peak
        label = METRICS[r["metric"]][0] if r["metric"] != previous else ""
        previous = r["metric"]
        median = fmt_value(r["median"], r["unit"])
        low, high = ("", "") if r["n"] == 1 else (fmt_value(r["min"], r["unit"]), fmt_value(r["max"], r["unit"]))
        print(f"{label:<36} {r['peer']:<12} {median:>11} {low:>11} {high:>11} {r['n']:>3}")
    print()


def print_targets(evaluated: list[dict]) -> None:
    print("== targets (medians of this run)")
    print(f"{'check':<50} {'workload':<11} {'value':>10} {'target':>10}  verdict")
    for t in evaluated:
        op = "<" if t["strict"] else "<="
        if t["baseline"] is None:
            value = "-" if t["value"] is None else U.fmt_bytes(t["value"])
            limit = f"{op} {U.fmt_bytes(t['limit'])}"
        else:
            value = "-" if t["value"] is None else f"{t['value']:.3g}x"
            limit = f"{op} {t['limit']:.3g}x"
        print(f"{t['label']:<50} {t['workload']:<11} {value:>10} {limit:>10}  {t['verdict']}")
    print()


def print_errors(res: Results) -> None:
    if not res.errors:
        return
    print(f"== errors ({len(res.errors)})")
    for e in res.errors:
        print(f"-- {e['workload']} / {e['peer']} / {e['step']}")
        print(e["error"].rstrip())
    print()


# ==========================================================================
# main
# ==========================================================================


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads and fewer repeats (< 2 minutes)")
    parser.add_argument(
        "--out", metavar="FILE.json", help="write machine, config, raw samples, medians and targets as JSON"
    )
    return parser.parse_args(argv)


def run(cfg: Config, mode: str, peers=PEERS, workloads=WORKLOADS, build=None, targets=TARGETS) -> dict:
    """Run the workloads, print the tables, return the report (what --out writes).

    benchmarks/suite_core.py calls this with more peers and workloads
    (``build(name, cfg)`` returns a Workload, else None for build_workload).
    """
    peers = [p for p in peers if p.name != "bfa" or bfa is not None]
    machine = machine_info()
    print_header(machine, cfg, mode)
    res = Results()

    with tempfile.TemporaryDirectory(prefix="bfa-bench-") as tmp:
        for name in workloads:
            log(f"{name}: building")
            wl = (build and build(name, cfg)) or build_workload(name, cfg)
            bench_workload(wl, peers, cfg, tmp, res)
            print_workload_table(wl, res, peers)
            sys.stdout.flush()
            del wl
            gc.collect()

    evaluated = [evaluate(t, res) for t in targets]
    print_targets(evaluated)
    print_errors(res)
    elapsed = time.perf_counter() - START
    print(f"total time {elapsed:.0f} s")
    return {
        "mode": mode,
        "config": asdict(cfg),
        "machine": machine,
        "bfa_import_error": BFA_IMPORT_ERROR,
        "method": {
            "gc": "enabled, default thresholds, gc.collect() before each sample",
            "gc_threshold": gc.get_threshold(),
            "slow_op_seconds": SLOW_OP_SECONDS,
            "min_batch_seconds": MIN_BATCH_SECONDS,
            "cold": "fresh `python -c` child; page cache not dropped; one discarded warm-up child",
            "nocache": "fresh child after sync + echo 3 > /proc/sys/vm/drop_caches (Config.nocache_repeats)",
            "write": "every peer's write is followed by fsync of the file(s) and directory, as bfa.dump does",
        },
        "peers": [p.name for p in peers],
        "workloads": list(workloads),
        "results": res.rows,
        "targets": evaluated,
        "errors": res.errors,
        "elapsed_seconds": elapsed,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg, mode = (QUICK, "quick") if args.quick else (FULL, "full")
    report = run(cfg, mode)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
