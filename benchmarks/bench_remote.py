"""Remote benchmark: one value of an archive read by byte range over HTTP, against Zarr v3, HDF5, Parquet,
Arrow IPC and a hand-written .npy range reader; and Dask .sum() on a 2-worker LocalCluster against Zarr.

Server: tests/support/servers.py's RangeServer on 127.0.0.1, objects in memory, ``latency`` (20 ms) added to
every request.  It counts requests, body bytes and sequential round trips (requests in flight together: one
round).  Each sample opens the object anew (bfa.release_mappings() first); fsspec's HTTP file system with its
defaults (a HEAD, then 5 MiB blocks) for h5py, Parquet and Arrow IPC.  Probes:
  name  open + users[rows/2]["name"] of a table (id int64, name str of 12 chars, score float64)
  row   open + one 512 B row (128 float32) of a float32 array of emb_bytes
  rows  open + 100 rows (straddling a chunk boundary) of a sparse float32 array of lz4_bytes
  dask  bfa.dask.array(path, "emb").sum() vs dask.array.from_zarr(...).sum(), same first-axis chunks, local
        files and the same files over HTTP, distributed.LocalCluster(2 worker processes, 1 thread each)
bfa: one archive holding the table and both arrays, uncompressed ("bfa") and compression="lz4" ("bfa lz4"), read
with bfa.Archive.open(url, storage_options={}); also through s3fs from a moto S3 server ("bfa s3").  Peers: Zarr
arrays in 1 MiB chunks (bfa's chunk_size), its default codec (zstd), Blosc-LZ4 for "rows", default chunks for
the strings; Parquet one row group (pyarrow's defaults); Arrow IPC record batches of 65,536 rows, the reader
computing the batch of a row.  Timing: benchmarks/harness.py's method, peers sampled round-robin; the counts are
medians over the same samples.
"""

from __future__ import annotations

import io
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bfast_archive as bfa  # noqa: E402
from benchmarks import harness as H  # noqa: E402
from benchmarks.peers import lib  # noqa: E402
from tests.support.servers import RangeServer, S3Server  # noqa: E402

MiB, KiB, GiB = H.MiB, H.KiB, H.GiB
SETTINGS = {  # name: (full, quick)
    "rows": (100_000, 10_000), "emb_bytes": (512 * MiB, 4 * MiB), "lz4_bytes": (400 * MiB, 4 * MiB),
    "dask_bytes": (1 * GiB, 32 * MiB), "dask_chunk_rows": (None, 16_384), "latency": (0.02, 0.02),
    "repeats": (9, 3), "slow_repeats": (5, 3), "dask_repeats": (5, 3),
}
S3_BUCKET = "bench"
WIDTH, CHUNK, IPC_BATCH, SPAN = 128, 1 << 20, 65_536, 100  # floats per row, bfa chunk_size, IPC rows, rows read
SYLLABLES = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
TITLES = {"name": 'open + users[{row:,}]["name"] of a {rows:,}-row table',
          "row": "open + one 512 B row of a {emb} float32 array",
          "rows": "open + 100 rows of a {lz4} sparse float32 array (LZ4)"}
COUNTS = (("rounds", "n"), ("requests", "n"), ("bytes", "B"))


def data(cfg: H.Config) -> dict:
    """The table's columns and the two arrays, seeded."""
    rng = np.random.default_rng(H.SEED)
    picks = rng.integers(0, len(SYLLABLES), (cfg.rows, 6))
    names = ["".join(SYLLABLES[k] for k in row) for row in picks]
    big = rng.standard_normal((cfg.lz4_bytes // (4 * WIDTH), WIDTH), dtype=np.float32)
    big[rng.integers(0, 4, big.shape, dtype=np.uint8) != 0] = 0  # 3/4 zeros: LZ4 has something to do
    return {"id": np.arange(cfg.rows, dtype=np.int64), "name": names, "score": rng.random(cfg.rows), "big": big,
            "emb": rng.standard_normal((cfg.emb_bytes // (4 * WIDTH), WIDTH), dtype=np.float32)}


def zarr_files(path: Path, values, **kw) -> dict:
    """A Zarr v3 array written to the directory ``path``: {name relative to its parent: bytes}."""
    zarr = lib("zarr")
    zarr.create_array(store=str(path), shape=np.shape(values), dtype=str if kw.pop("text", False) else values.dtype,
                      **kw)[...] = values
    return {str(f.relative_to(path.parent)): f.read_bytes() for f in path.rglob("*") if f.is_file()}


def objects(d: dict, work: Path) -> dict:
    """Every peer's objects: {name: bytes}."""
    pa, pq, h5py, zarr = lib("pyarrow"), lib("pyarrow.parquet"), lib("h5py"), lib("zarr")
    out = {}
    users = [{"id": int(i), "name": n, "score": float(s)} for i, n, s in zip(d["id"], d["name"], d["score"])]
    for name, kw in (("bfa", {}), ("bfa-lz4", {"compression": "lz4", "chunk_size": CHUNK})):
        bfa.dump({"users": users, "emb": d["emb"], "big": d["big"]}, work / name, fsync=False, **kw)
        out[name] = (work / name).read_bytes()
    chunks = (CHUNK // (4 * WIDTH), WIDTH)
    out.update(zarr_files(work / "name.zarr", np.array(d["name"], dtype=object), text=True))
    out.update(zarr_files(work / "emb.zarr", d["emb"], chunks=chunks))
    lz4 = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    out.update(zarr_files(work / "big.zarr", d["big"], chunks=chunks, compressors=lz4))
    table = pa.table({"id": d["id"], "name": d["name"], "score": d["score"]})
    emb = pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(d["emb"].reshape(-1)), WIDTH)})
    for name, t in (("table.arrow", table), ("emb.arrow", emb)):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, t.schema) as writer:
            writer.write_table(t, max_chunksize=IPC_BATCH)
        out[name] = sink.getvalue().to_pybytes()

    def hdf5(buf):
        with h5py.File(buf, "w") as f:
            f["users/id"], f["users/score"] = d["id"], d["score"]
            f.create_dataset("users/name", data=d["name"], dtype=h5py.string_dtype())

    for name, write in (("table.parquet", lambda buf: pq.write_table(table, buf)), ("table.h5", hdf5),
                        ("emb.npy", lambda buf: np.save(buf, d["emb"]))):
        buf = io.BytesIO()
        write(buf)
        out[name] = buf.getvalue()
    return out


def npy_row(fs, url: str, i: int) -> np.ndarray:
    """Row ``i`` of a remote .npy file in 2 ranged GETs: the first 4 KiB (the header), then the row."""
    head = io.BytesIO(fs.cat_file(url, start=0, end=4096))
    version = np.lib.format.read_magic(head)
    shape, _, dtype = getattr(np.lib.format, f"read_array_header_{version[0]}_0")(head)
    size = dtype.itemsize * int(np.prod(shape[1:]))
    at = head.tell() + i * size
    return np.frombuffer(fs.cat_file(url, start=at, end=at + size), dtype).reshape(shape[1:])


def readers(url, row: int, i: int, a: int, s3) -> dict:
    """{probe: {peer: read()}}; every read opens its object.  The bfa peers "... s3" read through s3fs from
    ``s3``, an S3Server holding the bfa objects."""
    fs = lib("fsspec").filesystem("http")
    zarr, pa, pq, h5py = lib("zarr"), lib("pyarrow"), lib("pyarrow.parquet"), lib("h5py")

    def archive(name, fn):
        if name.endswith(" s3"):
            where, options = f"s3://{S3_BUCKET}/{name[:-3]}", s3.storage_options()
        else:
            where, options = url(name), {}
        with bfa.Archive.open(where, storage_options=options) as arch:
            return fn(arch)

    def ipc(name, column, r):
        with fs.open(url(name), "rb") as f:
            return pa.ipc.open_file(f).get_batch(r // IPC_BATCH).column(column)[r % IPC_BATCH]

    def hdf5():
        with fs.open(url("table.h5"), "rb") as f, h5py.File(f, "r") as h:
            return h["users/name"].asstr()[row]

    def parquet():
        with fs.open(url("table.parquet"), "rb") as f:
            pf, start = pq.ParquetFile(f), 0
            for g in range(pf.metadata.num_row_groups):  # the row group holding the row
                if row < start + pf.metadata.row_group(g).num_rows:
                    return pf.read_row_group(g, columns=["name"]).column(0)[row - start].as_py()
                start += pf.metadata.row_group(g).num_rows

    def zarr_read(name, index):
        return zarr.open_array(url(name), mode="r")[index]

    bfas = {"bfa": "bfa", "bfa lz4": "bfa-lz4", "bfa s3": "bfa s3", "bfa lz4 s3": "bfa-lz4 s3"}  # peer: object
    return {
        "name": {**{p: lambda n=n: archive(n, lambda t: t["users"][row]["name"]) for p, n in bfas.items()},
                 "zarr": lambda: str(zarr_read("name.zarr", row)), "hdf5": hdf5, "parquet": parquet,
                 "arrow-ipc": lambda: ipc("table.arrow", "name", row).as_py()},
        "row": {**{p: lambda n=n: np.array(archive(n, lambda t: t.array("emb")[i])) for p, n in bfas.items()},
                "zarr": lambda: zarr_read("emb.zarr", i), "npy (2 ranges)": lambda: npy_row(fs, url("emb.npy"), i),
                "arrow-ipc": lambda: ipc("emb.arrow", "emb", i).values.to_numpy()},
        "rows": {**{p: lambda n=n: np.array(archive(n, lambda t: t.array("big")[a:a + SPAN]))
                    for p, n in bfas.items() if "lz4" in p},
                 "zarr blosc-lz4": lambda: zarr_read("big.zarr", slice(a, a + SPAN))},
    }


def same(got, want) -> bool:
    return np.array_equal(got, want) if isinstance(want, np.ndarray) else got == want


def counted(fn, log: list, server):
    """fn as a timed call that logs the server's counts of its requests."""
    def call(_):
        server.reset()
        value = fn()
        log.append((server.rounds(), server.requests(), server.bytes_served()))
        return value
    return call


def bench_probes(srv: RangeServer, s3, d: dict, cfg: H.Config, res: H.Results) -> None:
    row, i, a = cfg.rows // 2, len(d["emb"]) // 2, len(d["big"]) // 2 - SPAN // 2
    want = {"name": d["name"][row], "row": d["emb"][i], "rows": d["big"][a:a + SPAN]}
    for probe, fns in readers(srv.url, row, i, a, s3).items():
        H.log(f"remote: {probe}")
        logs, timed = {peer: [] for peer in fns}, {}
        for peer, fn in fns.items():
            call = counted(fn, logs[peer], s3 if peer.endswith(" s3") else srv)

            def check(call=call, peer=peer):
                got = call(None)
                H.expect(same(got, want[probe]), f"{probe} / {peer}: read {got!r}, not the archived value")

            if res.step(check, probe=probe, peer=peer):  # a read that fails is an error of the run, not timed
                timed[peer] = call
        res.group(timed, cfg, lambda: bfa.release_mappings(), probe=probe, metric="wall")
        for peer in timed:
            n = res.get(probe=probe, metric="wall", peer=peer)["n"]
            for k, (metric, unit) in enumerate(COUNTS):
                res.add([c[k] for c in logs[peer][-n:]], unit, probe=probe, metric=metric, peer=peer)


def bench_dask(work: Path, cfg: H.Config, res: H.Results) -> None:
    distributed, da, zarr = lib("distributed"), lib("dask.array"), lib("zarr")
    import bfast_archive.dask as bfa_dask

    H.log(f"dask: writing a {H.fmt_bytes(cfg.dask_bytes)} float32 array")
    arr = np.random.default_rng(H.SEED).random((cfg.dask_bytes // (4 * WIDTH), WIDTH), dtype=np.float32)
    path, zpath = str(work / "dask.bfa"), str(work / "dask.zarr")
    bfa.dump({"emb": arr}, path, fsync=False)
    rows = bfa_dask.array(path, "emb", chunks=cfg.dask_chunk_rows).chunks[0][0]
    zarr.create_array(store=zpath, shape=arr.shape, dtype=arr.dtype, chunks=(rows, WIDTH), compressors=None)[...] = arr
    want = float(arr.sum(dtype=np.float64))
    del arr
    srv = RangeServer(latency=cfg.latency).start()  # the same files over HTTP, read by the workers
    srv.put("dask.bfa", Path(path).read_bytes())
    for f in Path(zpath).rglob("*"):
        if f.is_file():
            srv.put(str(f.relative_to(work)), f.read_bytes())
    fns = {"bfa": lambda: float(bfa_dask.array(path, "emb", chunks=cfg.dask_chunk_rows).sum().compute()),
           "zarr": lambda: float(da.from_zarr(zpath).sum().compute()),
           "bfa http": lambda: float(bfa_dask.array(srv.url("dask.bfa"), "emb",
                                                    chunks=cfg.dask_chunk_rows).sum().compute()),
           "zarr http": lambda: float(da.from_zarr(srv.url("dask.zarr")).sum().compute())}
    try:
        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                      dashboard_address=None) as cluster, distributed.Client(cluster):
            for peer, fn in fns.items():  # each peer's sum checked against NumPy's, then timed side by side
                got = fn()
                H.expect(np.isclose(got, want, rtol=1e-4), f"dask / {peer}: sum {got}, NumPy's (float64) {want}")
            res.group(fns, H.Config(cfg, repeats=cfg.dask_repeats, slow_repeats=cfg.dask_repeats), probe="dask",
                      metric="wall", chunk_rows=rows)
    finally:
        srv.stop()
    res.note(f"dask: {H.fmt_bytes(cfg.dask_bytes)} in chunks of {rows:,} rows x {WIDTH} float32 "
             f"({H.fmt_bytes(rows * WIDTH * 4)}), Zarr uncompressed; local files, and the same "
             f"files over HTTP ({cfg.latency * 1e3:.0f} ms per request) read by the workers")


def print_probe(res: H.Results, probe: str, title: str) -> None:
    peers = [r["peer"] for r in res.rows if r.get("probe") == probe and r["metric"] == "wall"]
    print(f"== {title}")
    print(f"{'peer':<16} {'wall':>10} {'min':>10} {'max':>10} {'round trips':>12} {'requests':>9} {'bytes served':>13}")
    for peer in sorted(peers, key=lambda p: not p.startswith("bfa")):
        wall = res.get(probe=probe, metric="wall", peer=peer)
        rounds, requests, sent = (res.stat(probe=probe, metric=m, peer=peer) for m, _ in COUNTS)
        print(f"{peer:<16} {H.fmt_seconds(wall['median']):>10} {H.fmt_seconds(wall['min']):>10} "
              f"{H.fmt_seconds(wall['max']):>10} {rounds:>12g} {requests:>9g} {H.fmt_bytes(sent):>13}")
    print()


def targets(res: H.Results, directory: int, workload: str) -> list:
    """The issue's targets on bfa's medians."""
    out = []
    for peer in ("bfa", "bfa lz4"):
        for label, probe, metric, limit in (
                ('open + users[i]["name"]: round trips', "name", "rounds", 3),
                ('open + users[i]["name"]: bytes served', "name", "bytes", 256 * KiB),
                ("open + one array row: round trips", "row", "rounds", 2),
                ("open + one array row: bytes <= 1 chunk + 64 KiB", "row", "bytes", CHUNK + 64 * KiB),
                ("100 rows of the LZ4 array: bytes <= 2 chunks + directory", "rows", "bytes",
                 2 * CHUNK + directory)):
            if probe == "rows" and peer == "bfa":
                continue
            out.append(res.target(f"{peer}: {label}", {"probe": probe, "metric": metric, "peer": peer}, None, limit,
                                  unit=dict(COUNTS)[metric], workload=workload))
    return out


def run(cfg: H.Config, res: H.Results) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bfa-bench-remote-"))
    srv, s3 = RangeServer(latency=cfg.latency).start(), S3Server(latency=cfg.latency).start()
    try:
        H.log(f"remote: building the data ({cfg.rows:,} rows, {H.fmt_bytes(cfg.emb_bytes)} + "
              f"{H.fmt_bytes(cfg.lz4_bytes)} arrays) and every peer's objects")
        d = data(cfg)
        objs = objects(d, work)
        lz4 = objs["bfa-lz4"]
        directory = len(lz4) - struct.unpack_from("<Q", lz4, 48)[0]  # header: sections_off at byte 48
        for name, blob in objs.items():
            srv.put(name, blob)
        client = s3.client()  # (its requests are not counted)
        client.create_bucket(Bucket=S3_BUCKET)
        for name in ("bfa", "bfa-lz4"):
            client.put_object(Bucket=S3_BUCKET, Key=name, Body=objs[name])
        res.note("object sizes: " + ", ".join(f"{k} {H.fmt_bytes(len(v))}" for k, v in objs.items()
                                              if "/c/" not in k and not k.endswith("zarr.json")))
        del objs, lz4
        shutil.rmtree(work)
        work.mkdir()
        bench_probes(srv, s3, d, cfg, res)
        del d
    finally:
        srv.stop()
        s3.stop()
    try:
        res.step(lambda: bench_dask(work, cfg, res), probe="dask")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = {"row": cfg.rows // 2, "rows": cfg.rows, "emb": H.fmt_bytes(cfg.emb_bytes),
             "lz4": H.fmt_bytes(cfg.lz4_bytes)}
    for probe, title in TITLES.items():
        print_probe(res, probe, title.format(**sizes) + f"; {cfg.latency * 1e3:.0f} ms per request, medians")
    if dask_rows := [r for r in res.rows if r.get("probe") == "dask"]:
        H.print_rows(f"== Dask .sum() of a {H.fmt_bytes(cfg.dask_bytes)} float32 array, LocalCluster(2 worker "
                     "processes, 1 thread each), local files and over HTTP", dask_rows, lambda r: "graph + compute",
                     group=lambda r: r["probe"])
    workload = "quick" if cfg.rows < SETTINGS["rows"][0] else "1 GiB"
    res.print_targets(f"remote reads, {cfg.latency * 1e3:.0f} ms per request; directory {H.fmt_bytes(directory)}",
                      targets(res, directory, workload))
    return {"directory_bytes": directory}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run))
