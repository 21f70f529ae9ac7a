"""Every peer bfast_archive is compared with: how it writes, serialises, loads and reads one value.

Only os, sys and json are imported at module level: a cold child (harness.cold_run) imports this module
inside its spawn -> value time; a peer's own imports happen in its ``reader()`` factory.  A probe is the
value an open+read fetches: ("users", i, "name") -> obj["users"][i]["name"], ("emb", i) -> one array row.
Each peer runs only on the workload kinds it can hold (``Peer.kinds``; ``Peer.note`` says why).
"""

from __future__ import annotations

import json
import os
import sys

ALL_KINDS = frozenset({"records", "arrays", "mixed"})
USER_FIELDS = ("id", "name", "email", "score", "active", "tags")
ND_KEY = "__nd__"
_CODECS = {}


def lib(name: str):
    """A peer's library (a module), imported on first use; then a sys.modules lookup."""
    if name not in sys.modules:
        __import__(name)
    return sys.modules[name]


def walk(obj, probe):
    """Follow a probe through nested containers: obj[k0][k1]..."""
    for key in probe:
        obj = obj[key]
    return obj


def touch(value):
    """Materialise a read value: array rows (views into a mapping, or copies) become ``bytes``."""
    return value.tobytes() if hasattr(value, "tobytes") else value


def _files(path: str) -> list:
    return [os.path.join(path, f) for f in os.listdir(path)] if os.path.isdir(path) else [path]


def fsync_path(path: str) -> None:
    """fsync a file (or every file of a directory), then the directory holding it."""
    files = _files(path)
    for name in files + [os.path.dirname(files[0])]:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def path_size(path: str) -> int:
    return sum(os.path.getsize(f) for f in _files(path))


def remove(path: str) -> None:
    if os.path.isdir(path):
        lib("shutil").rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def parse_reader(loads):
    """read(path, probe) for a format parsed whole: read the file, parse it, walk to the value."""
    return lambda path, probe: touch(walk(loads(read_file(path)), probe))


def nd_enc_hook(obj):
    """enc_hook / default: an ndarray as a dict holding its raw bytes."""
    if type(obj).__name__ == "ndarray":
        return {ND_KEY: [obj.dtype.str, list(obj.shape)], "data": obj.reshape(-1).view("u1").data}
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


def nd_restore(obj):
    """Turn the top-level encoded-array dicts of a decoded workload back into ndarrays."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, dict) and ND_KEY in value:
                dtype, shape = value[ND_KEY]
                obj[key] = lib("numpy").frombuffer(value["data"], dtype=dtype).reshape(shape)
    return obj


def codec(name: str):
    """The encoder and decoder of msgspec, or bfast-py's BFast(), made on first use."""
    if name not in _CODECS:
        _CODECS[name] = lib("b_fast").BFast() if name == "bfast-py" else (
            lib("msgspec.msgpack").Encoder(enc_hook=nd_enc_hook), lib("msgspec.msgpack").Decoder())
    return _CODECS[name]


def msgspec_reader():
    decoder = lib("msgspec.msgpack").Decoder()
    return parse_reader(lambda data: nd_restore(decoder.decode(data)))


def bfastpy_reader():
    bfast = codec("bfast-py")  # its lazy view needs the whole buffer in memory (bytes), not a mapping
    return parse_reader(lambda data: bfast.decode_lazy(data, decompress=False))


def bfa_reader():
    bfa = lib("bfast_archive")

    def read(path, probe):
        with bfa.Archive.open(path) as arch:
            return touch(walk(arch, probe))  # touch before the mapping closes

    return read


def pickle_write(obj, path):
    with open(path, "wb") as f:
        lib("pickle").dump(obj, f, protocol=5)


def pickle_load(path):
    with open(path, "rb") as f:
        return lib("pickle").load(f)


def pyarrow_write(obj, path):
    pa, ipc = lib("pyarrow"), lib("pyarrow.ipc")
    if "users" in obj:
        columns = {f: pa.array([u[f] for u in obj["users"]]) for f in USER_FIELDS}
        info = {"kind": "records", "meta": obj["meta"]}
    else:
        columns, shapes = {}, {}
        for name, arr in obj.items():
            flat = pa.array(arr.reshape(-1))
            width = lib("math").prod(arr.shape[1:])
            columns[name] = flat if arr.ndim == 1 else pa.FixedSizeListArray.from_arrays(flat, width)
            shapes[name] = [arr.dtype.str, list(arr.shape)]
        info = {"kind": "arrays", "shapes": shapes}
    batch = pa.RecordBatch.from_pydict(columns, metadata={"bench": json.dumps(info)})
    with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


def pyarrow_load(path):
    pa = lib("pyarrow")
    with pa.OSFile(path, "rb") as source:
        table = lib("pyarrow.ipc").open_file(source).read_all()
    info = json.loads(table.schema.metadata[b"bench"])
    if info["kind"] == "records":
        return {"meta": info["meta"], "users": table.to_pylist()}
    arrays = {}
    for name, (_dtype, shape) in info["shapes"].items():
        column = table.column(name).combine_chunks()
        values = column.flatten() if pa.types.is_fixed_size_list(column.type) else column
        arrays[name] = values.to_numpy().reshape(shape)
    return arrays


def pyarrow_reader():
    pa, ipc = lib("pyarrow"), lib("pyarrow.ipc")

    def read(path, probe):
        column, row = (probe[2], probe[1]) if probe[0] == "users" else probe
        with pa.memory_map(path) as source:
            cell = ipc.open_file(source).get_batch(0).column(column)[row]
            if isinstance(cell, pa.FixedSizeListScalar):  # one row of an N-D array
                return touch(cell.values.to_numpy(zero_copy_only=True))
            return cell.as_py()

    return read


def safetensors_reader():
    safe_open = lib("safetensors").safe_open

    def read(path, probe):
        with safe_open(path, framework="np") as f:
            return touch(f.get_slice(probe[0])[probe[1]])

    return read


def npy_write(obj, path):
    os.makedirs(path, exist_ok=True)
    for name, arr in obj.items():
        lib("numpy").save(os.path.join(path, name + ".npy"), arr)


def npy_load(path):
    return {f[: -len(".npy")]: lib("numpy").load(os.path.join(path, f)) for f in sorted(os.listdir(path))}


def h5py_write(obj, path):
    h5py, np = lib("h5py"), lib("numpy")
    text = h5py.string_dtype()
    dtypes = {"id": np.int64, "name": text, "email": text, "score": np.float64, "active": np.bool_, "tags": text}
    with h5py.File(path, "w") as f:
        if "meta" in obj:
            f.attrs["meta"] = json.dumps(obj["meta"])
        if "users" in obj:
            group = f.create_group("users")
            for name in USER_FIELDS:
                group.create_dataset(name, data=np.array([u[name] for u in obj["users"]], dtype=dtypes[name]))
        for name, arr in obj.items():
            if isinstance(arr, np.ndarray):
                f.create_dataset(name, data=arr)


def h5py_load(path):
    h5py, out = lib("h5py"), {}
    with h5py.File(path, "r") as f:
        if "meta" in f.attrs:
            out["meta"] = json.loads(f.attrs["meta"])
        if "users" in f:
            columns = [(ds.asstr() if h5py.check_string_dtype(ds.dtype) else ds)[()].tolist()
                       for ds in (f["users"][name] for name in USER_FIELDS)]
            out["users"] = [dict(zip(USER_FIELDS, row, strict=True)) for row in zip(*columns, strict=True)]
        out.update((name, item[()]) for name, item in f.items() if isinstance(item, h5py.Dataset))
    return out


def h5py_reader():
    h5py = lib("h5py")

    def read(path, probe):
        with h5py.File(path, "r") as f:
            if probe[0] == "users":
                return f["users"][probe[2]].asstr()[probe[1]]
            return touch(f[probe[0]][probe[1]])

    return read


class Peer:
    """write(obj, path); load(path) -> obj; reader() -> read(path, probe) -> touch(value), importing the peer's
    libraries; dumps(obj) -> bytes, or None; module: what must import for the peer to run; kinds: the workload
    kinds it can hold; fsyncs: its write already fsyncs the file and its directory."""

    def __init__(self, name, module, kinds, write, load, reader, dumps=None, fsyncs=False, note=""):
        self.name, self.module, self.kinds, self.write, self.load = name, module, kinds, write, load
        self.reader, self.dumps, self.fsyncs, self.note = reader, dumps, fsyncs, note

    def durable_write(self, obj, path) -> None:
        """Write, then fsync as bfa.dump does, so every peer's write is durable."""
        self.write(obj, path)
        if not self.fsyncs:
            fsync_path(path)


def bytes_peer(name, module, kinds, dumps, loads, reader, note=""):
    """A peer whose file is its serialised bytes; ``reader=None``: import ``module``, then parse the whole file."""

    def write(obj, path):
        with open(path, "wb") as f:
            f.write(dumps(obj))

    reader = reader or (lambda: lib(module) and parse_reader(loads))
    return Peer(name, module, kinds, write, lambda path: loads(read_file(path)), reader, dumps, note=note)


PEERS = (
    Peer("bfa", "bfast_archive", ALL_KINDS, lambda obj, path: lib("bfast_archive").dump(obj, path),
         lambda path: lib("bfast_archive").load(path), bfa_reader, lambda obj: lib("bfast_archive").dumps(obj),
         fsyncs=True),
    Peer("pickle", "pickle", ALL_KINDS, pickle_write, pickle_load,
         lambda: lib("pickle") and (lambda path, probe: touch(walk(pickle_load(path), probe))),
         lambda obj: lib("pickle").dumps(obj, protocol=5)),
    bytes_peer("msgspec", "msgspec", ALL_KINDS, lambda obj: codec("msgspec")[0].encode(obj),
               lambda data: nd_restore(codec("msgspec")[1].decode(data)), msgspec_reader),
    Peer("pyarrow", "pyarrow", frozenset({"records", "arrays"}), pyarrow_write, pyarrow_load, pyarrow_reader),
    Peer("safetensors", "safetensors", frozenset({"arrays"}), lambda obj, path: lib("safetensors.numpy").save_file(
        obj, path), lambda path: lib("safetensors.numpy").load_file(path), safetensors_reader,
         lambda obj: lib("safetensors.numpy").save(obj)),
    Peer("h5py", "h5py", ALL_KINDS, h5py_write, h5py_load, h5py_reader),
    Peer("npy", "numpy", frozenset({"arrays"}), npy_write, npy_load, lambda: lambda path, probe, np=lib("numpy"): touch(
        np.load(os.path.join(path, probe[0] + ".npy"), mmap_mode="r")[probe[1]])),
    bytes_peer("orjson", "orjson", frozenset({"records"}), lambda obj: lib("orjson").dumps(obj),
               lambda data: lib("orjson").loads(data), None, "records only: JSON holds no arrays or bytes"),
    bytes_peer("msgpack", "msgpack", frozenset({"records", "mixed"}),
               lambda obj: lib("msgpack").packb(obj, default=nd_enc_hook),
               lambda data: nd_restore(lib("msgpack").unpackb(data)), None,
               "records and mixed; arrays as {'__nd__': [dtype, shape], 'data': bin}"),
    Peer("joblib", "joblib", ALL_KINDS, lambda obj, path: lib("joblib").dump(obj, path),
         lambda path: lib("joblib").load(path),
         lambda: (lambda path, probe, joblib=lib("joblib"): touch(walk(joblib.load(path, mmap_mode="r"), probe))),
         note="open+read = joblib.load(mmap_mode='r'): arrays mapped, the rest unpickled"),
    bytes_peer("bfast-py", "b_fast", frozenset({"records"}), lambda obj: codec("bfast-py").encode_packed(obj, False),
               lambda data: codec("bfast-py").decode_packed(data, decompress=False), bfastpy_reader,
               "records only: bfast-py 1.10 encodes a NumPy array as its str() (lossy, truncated)"),
)
BY_NAME = {p.name: p for p in PEERS}


def available(names=None) -> tuple[list, dict]:
    """The peers (all, or ``names`` in that order) whose library imports here; and why the others do not."""
    out, skipped = [], {}
    for peer in PEERS if names is None else [BY_NAME[n] for n in names]:
        try:
            lib(peer.module)
            out.append(peer)
        except Exception as exc:  # a missing or broken peer is skipped and said so
            skipped[peer.name] = f"{type(exc).__name__}: {exc}"
    return out, skipped
