"""Helpers for bench_core.py that the cold-start child process also imports.

Only the standard library is imported at module level, so a fresh
``python -c`` child can import this module without paying for NumPy or any
peer library before it starts timing that peer's own imports.

Contents:
  * ``READERS``: per peer, a factory that imports the peer's libraries and
    returns ``read(path, probe)`` -- open the file and read one value.  The
    same function is timed in-process (warm) and in a fresh process (cold).
  * /proc/self/status helpers (RSS, peak RSS and its reset).
  * the msgspec array encoding shared by the writer and the readers.
  * summary statistics and number formatting.
"""

import os

# --------------------------------------------------------------------------
# probes: the one value an open+read fetches
#   ("users", i, "name")  -> obj["users"][i]["name"]   (a nested record field)
#   ("emb", i)            -> obj["emb"][i]             (one row of an array)
# --------------------------------------------------------------------------


def walk(obj, probe):
    """Follow a probe through nested containers: obj[k0][k1]..."""
    for key in probe:
        obj = obj[key]
    return obj


def touch(value):
    """Materialise a read value so that its bytes were really read.

    Array rows (NumPy views into a mapping, or copies) become ``bytes``;
    scalars and strings are returned unchanged.
    """
    return value.tobytes() if hasattr(value, "tobytes") else value


def split_probe(probe):
    """Map a probe onto a columnar layout: (column name, row index)."""
    if probe[0] == "users":
        _, row, field = probe
        return field, row
    name, row = probe
    return name, row


# --------------------------------------------------------------------------
# msgspec: ndarrays are encoded as {"__nd__": [dtype, shape], "data": bin}
# --------------------------------------------------------------------------

ND_KEY = "__nd__"


def msgspec_enc_hook(obj):
    """msgspec enc_hook: encode an ndarray as a dict holding its raw bytes."""
    if type(obj).__name__ == "ndarray":
        flat = obj.reshape(-1)
        return {ND_KEY: [obj.dtype.str, list(obj.shape)], "data": flat.view("u1").data}
    raise NotImplementedError(f"msgspec: cannot encode {type(obj)!r}")


def msgspec_restore_arrays(obj):
    """Turn the top-level encoded-array dicts of a decoded workload back into ndarrays."""
    if not isinstance(obj, dict):
        return obj
    for key, value in obj.items():
        if isinstance(value, dict) and ND_KEY in value:
            import numpy as np

            dtype, shape = value[ND_KEY]
            obj[key] = np.frombuffer(value["data"], dtype=dtype).reshape(shape)
    return obj


# --------------------------------------------------------------------------
# readers: factory() imports the peer's libraries, read(path, probe) opens
# the file and returns touch(value)
# --------------------------------------------------------------------------


def _bfa_reader():
    import bfast_archive as bfa

    def read(path, probe):
        with bfa.Archive.open(path) as arch:
            return touch(walk(arch, probe))  # touch before the mapping closes

    return read


def _pickle_reader():
    import pickle

    def read(path, probe):
        with open(path, "rb") as f:
            return touch(walk(pickle.load(f), probe))

    return read


def _msgspec_reader():
    import msgspec

    decoder = msgspec.msgpack.Decoder()

    def read(path, probe):
        with open(path, "rb") as f:
            obj = msgspec_restore_arrays(decoder.decode(f.read()))
        return touch(walk(obj, probe))

    return read


def _pyarrow_reader():
    import pyarrow as pa
    import pyarrow.ipc  # registers pa.ipc

    def read(path, probe):
        column, row = split_probe(probe)
        with pa.memory_map(path) as source:
            batch = pa.ipc.open_file(source).get_batch(0)
            cell = batch.column(column)[row]
            if isinstance(cell, pa.FixedSizeListScalar):  # one row of an N-D array
                return touch(cell.values.to_numpy(zero_copy_only=True))
            return cell.as_py()

    return read


def _safetensors_reader():
    from safetensors import safe_open

    def read(path, probe):
        name, row = probe
        with safe_open(path, framework="np") as f:
            return touch(f.get_slice(name)[row])

    return read


def _h5py_reader():
    import h5py

    def read(path, probe):
        with h5py.File(path, "r") as f:
            if probe[0] == "users":
                _, row, field = probe
                return f["users"][field].asstr()[row]
            name, row = probe
            return touch(f[name][row])

    return read


def _npy_reader():
    import numpy as np

    def read(path, probe):
        name, row = probe
        return touch(np.load(os.path.join(path, name + ".npy"), mmap_mode="r")[row])

    return read


READERS = {
    "bfa": _bfa_reader,
    "pickle": _pickle_reader,
    "msgspec": _msgspec_reader,
    "pyarrow": _pyarrow_reader,
    "safetensors": _safetensors_reader,
    "h5py": _h5py_reader,
    "npy": _npy_reader,
}


# --------------------------------------------------------------------------
# memory: /proc/self/status
# --------------------------------------------------------------------------


def proc_status():
    """{"VmRSS": bytes, "VmHWM": bytes} of this process (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# statistics and formatting
# --------------------------------------------------------------------------


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def summary(samples):
    return {"median": median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def fmt_seconds(t):
    if t < 1e-6:
        return f"{t * 1e9:.0f} ns"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def fmt_bytes(n):
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1000:
        return f"{sign}{n:.0f} B"
    if n < 1000 * 1024:
        return f"{sign}{n / 1024:.1f} KiB"
    if n < 1000 * 1024**2:
        return f"{sign}{n / 1024**2:.1f} MiB"
    return f"{sign}{n / 1024**3:.2f} GiB"


# ==========================================================================
# added for the suite (benchmarks/run.py, suite_core.py, bench_compression.py,
# bench_scaling.py): more peers' readers, the machine description, dropping
# the page cache, and how busy the rest of the machine was during a run
# ==========================================================================


def _orjson_reader():
    import orjson

    def read(path, probe):
        with open(path, "rb") as f:
            return touch(walk(orjson.loads(f.read()), probe))

    return read


def _msgpack_reader():
    import msgpack

    def read(path, probe):
        with open(path, "rb") as f:
            obj = msgspec_restore_arrays(msgpack.unpackb(f.read()))
        return touch(walk(obj, probe))

    return read


def _joblib_reader():
    import joblib

    def read(path, probe):
        # arrays come back as np.memmap views of the file; everything else is unpickled
        return touch(walk(joblib.load(path, mmap_mode="r"), probe))

    return read


def _bfastpy_reader():
    import b_fast

    codec = b_fast.BFast()

    def read(path, probe):
        # bfast-py's lazy view needs the whole buffer in memory (bytes), not a mapping
        with open(path, "rb") as f:
            return touch(walk(codec.decode_lazy(f.read(), decompress=False), probe))

    return read


READERS.update(
    {
        "orjson": _orjson_reader,
        "msgpack": _msgpack_reader,
        "joblib": _joblib_reader,
        "bfast-py": _bfastpy_reader,
    }
)


def machine_info(dists=("bfast-archive", "numpy", "lz4")) -> dict:
    """Cores, CPU model, RAM, OS, Python and the versions of ``dists`` (as bench_core's)."""
    import platform
    import sys
    from importlib import metadata

    def lines(path):
        try:
            with open(path) as f:
                return f.readlines()
        except OSError:
            return []

    cpu = next(
        (line.split(":", 1)[1].strip() for line in lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    mem_kib = next((int(line.split()[1]) for line in lines("/proc/meminfo") if line.startswith("MemTotal:")), 0)
    versions = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "ram_bytes": mem_kib * 1024,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "versions": versions,
    }


def drop_page_cache() -> bool:
    """sync, then ``echo 3 > /proc/sys/vm/drop_caches``; False where not permitted (not root)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


class CpuLoad:
    """How busy the rest of the machine was between start() and stop().

    /proc/stat gives the CPU time all processes used; this process and its
    waited-for children subtract their own (os.times), so ``others_cores`` is
    the average number of cores other processes kept busy, and ``steal_cores``
    the cores the hypervisor gave to other guests.  None where /proc/stat is
    missing (not Linux).
    """

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.result = None

    def _snapshot(self):
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        busy = (user + nice + system + irq + softirq) / self.hz
        return {"busy": busy, "steal": steal / self.hz, "own": own, "wall": t.elapsed}

    def start(self):
        self._start = self._snapshot()
        return self

    def stop(self) -> dict | None:
        end = self._snapshot()
        if self._start is None or end is None:
            return None
        wall = max(end["wall"] - self._start["wall"], 1e-9)
        busy = end["busy"] - self._start["busy"]
        own = end["own"] - self._start["own"]
        self.result = {
            "seconds": wall,
            "own_cores": own / wall,
            "others_cores": max(busy - own, 0.0) / wall,
            "steal_cores": (end["steal"] - self._start["steal"]) / wall,
            "cores": os.cpu_count(),
        }
        return self.result


def fmt_load(load: dict | None) -> str:
    if not load:
        return "not measured (no /proc/stat)"
    text = (
        f"other processes kept {load['others_cores']:.2f} of {load['cores']} cores busy on average "
        f"(this benchmark {load['own_cores']:.2f}) over {load['seconds']:.0f} s"
    )
    if load["steal_cores"] >= 0.01:
        text += f"; hypervisor steal {load['steal_cores']:.2f} cores"
    return text
