"""Concurrent readers (docs/SECURITY.md, promises 2 and 5): threads sharing
one Archive, and processes reading a file that another process keeps
replacing.

tests/test_views.py already has 8 threads doing lookups and to_python on
an uncompressed archive, and tests/test_dump_atomic.py one reader thread
against a writer thread. Here:

- 8 threads at once (a barrier starts them together) on one archive,
  plain and LZ4-compressed: dict lookups, iteration, to_python, whole
  compressed arrays (decoded once into a cache shared by the threads),
  ArrayHandle slices (chunk-wise decode), table columns and rows, verify().
  Every result is compared with the values written.
- close() racing those readers: each read returns a correct value or
  raises ArchiveError("archive is closed"); nothing else, no crash (over a
  mapped file, and over a memoryview that only the archive holds).
- 4 reader processes loop over open / read / close while a writer process
  replaces the file with bfa.dump in a loop (new versions of different
  sizes, plain and compressed). Every read must see one whole version: the
  version number is stored in 7 places (a top-level int, the first, middle
  and last element of an array, the first and last row of a table, the last
  item of a tuple at the end of the root dict). One more reader keeps one
  Archive open for the whole run and must keep seeing its first version.
  No reader may die (SIGBUS would show as exit status -7). About 8 s.
- A caller that changes a from_buffer bytearray while it is being read
  (outside the promise: values and exceptions are then unspecified) still
  never crashes the process.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import bfast_archive as bfa
from tests.support.child import python_env

N_THREADS = 8


def _value() -> dict:
    rng = np.random.default_rng(3)
    return {
        "lookup": {f"k{i}": i for i in range(3000)},
        "users": [{"id": i, "name": f"user-{i}", "score": i / 4, "ok": i % 3 == 0,
                   "tags": ["t", str(i)]} for i in range(4000)],
        "emb": rng.random((3000, 64)).astype(np.float32),          # 768 KB: several chunks
        "ids": np.arange(200_000, dtype=np.int64),                  # compressible
        "blob": bytes(range(256)) * 400,                            # a 100 KB bytes value
        "nested": [{"level": i, "items": list(range(i % 7))} for i in range(500)],
    }


@pytest.fixture(scope="module")
def value():
    return _value()


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_eight_threads_read_one_archive_at_once(tmp_path, value, compression):
    path = tmp_path / "t.bfa"
    bfa.dump(value, path, compression=compression, chunk_size=1 << 16)
    barrier = threading.Barrier(N_THREADS)
    errors: list = []
    done = [0] * N_THREADS
    with bfa.Archive.open(path) as arch:
        def worker(t: int) -> None:
            rng = np.random.default_rng(t)
            try:
                barrier.wait(10)
                for step in range(40):
                    i = int(rng.integers(4000))
                    assert arch["users"][i]["name"] == f"user-{i}"
                    assert arch["lookup"][f"k{i % 3000}"] == i % 3000
                    a, b = sorted(rng.integers(0, 3000, 2))
                    assert np.array_equal(arch.array("emb")[a:b + 1], value["emb"][a:b + 1])
                    j = int(rng.integers(200_000))
                    assert arch.array("ids")[j] == j
                    if step % 8 == t % 8:
                        assert np.array_equal(arch["emb"], value["emb"])   # shared cache
                        assert np.array_equal(arch["ids"], value["ids"])
                        assert bytes(arch["blob"]) == value["blob"]
                        assert arch["nested"].to_python() == value["nested"]
                        ids = arch["users"].column("id")
                        assert np.array_equal(ids, np.arange(4000))
                        assert [r["id"] for r in arch["users"]][-1] == 3999
                        assert arch.verify() > 0
                    if step == 20 and t < 2:
                        full = arch.to_python()
                        assert full["users"] == value["users"]
                        assert list(full) == list(value)
                    done[t] += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(f"thread {t}: {exc!r}")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(N_THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
    assert errors == []
    assert done == [40] * N_THREADS


@pytest.mark.parametrize("source", ["file", "memoryview"])
@pytest.mark.parametrize("compression", [None, "lz4"])
def test_close_racing_readers_gives_values_or_archive_error(tmp_path, value, compression,
                                                            source):
    """close() racing reads leaked TypeError (a read checked arch._ptr, close()
    then set arch._raw to None, and the read unpacked None); reads now take
    the archive's buffer snapshot into a local once (_snapshot.py). The
    memoryview source starts 64 bytes into its bytearray, so the C pointer is
    an offset one (kept owning the buffer by _native.buffer_pointer), and
    close() drops the last reference to the bytes other than the readers'."""
    path = tmp_path / "c.bfa"
    bfa.dump(value, path, compression=compression, chunk_size=1 << 16)
    data = path.read_bytes()
    for trial in range(40):
        if source == "file":
            arch = bfa.Archive.open(path)
        else:
            arch = bfa.Archive.from_buffer(memoryview(bytearray(64) + data)[64:])
        barrier = threading.Barrier(N_THREADS + 1)
        bad: list = []
        counts = {"ok": 0, "closed": 0}

        def reader(t: int) -> None:
            barrier.wait(10)
            for i in range(300):
                try:
                    k = (t * 300 + i) % 4000
                    assert arch["users"][k]["id"] == k
                    if i % 50 == 0:
                        assert arch.array("emb")[k % 3000][0] == value["emb"][k % 3000][0]
                        assert arch["nested"][k % 500].to_python() == value["nested"][k % 500]
                    counts["ok"] += 1
                except bfa.ArchiveError as exc:
                    if "closed" not in str(exc):
                        bad.append(repr(exc))
                    counts["closed"] += 1
                except BaseException as exc:  # noqa: BLE001
                    bad.append(repr(exc))

        threads = [threading.Thread(target=reader, args=(t,)) for t in range(N_THREADS)]
        for th in threads:
            th.start()
        barrier.wait(10)
        time.sleep(0.002 * (trial % 6))
        arch.close()
        for th in threads:
            th.join(60)
        assert bad == [], bad[:5]


VERSIONED = textwrap.dedent("""
    import numpy as np
    def versioned(v):
        n = 50_000 + 25_000 * (v % 4)     # files of different sizes
        return {"version": v,
                "arr": np.full(n, v, dtype=np.int64),
                "rows": [{"v": v, "i": i, "name": f"{v}-{i}"} for i in range(300 + v % 5)],
                "pad": b"p" * (1000 * (v % 7)),
                "tail": ("end", v)}
    def read_version(arch):
        arr, rows = arch["arr"], arch["rows"]
        seen = [arch["version"], int(arr[0]), int(arr[len(arr) // 2]), int(arr[-1]),
                rows[0]["v"], int(rows[len(rows) - 1]["name"].split("-")[0]), arch["tail"][1]]
        if len(set(seen)) != 1:
            raise AssertionError(f"mixed versions {seen}")
        if len(arr) != 50_000 + 25_000 * (seen[0] % 4):
            raise AssertionError(f"version {seen[0]} with {len(arr)} elements")
        return seen[0]
""")

WRITER = VERSIONED + textwrap.dedent("""
    import os, sys, time
    import bfast_archive as bfa
    path, seconds = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + seconds
    v = 1
    while time.monotonic() < end:
        bfa.dump(versioned(v), path, compression="lz4" if v % 3 == 0 else None, fsync=v % 2 == 0)
        v += 1
    print(v - 1)
""")

READER = VERSIONED + textwrap.dedent("""
    import json, os, sys, time
    import bfast_archive as bfa
    path, seconds, hold = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "hold"
    end = time.monotonic() + seconds
    out = {"reads": 0, "versions": [], "errors": []}
    seen = set()
    held = bfa.Archive.open(path) if hold else None
    first = read_version(held) if hold else None
    while time.monotonic() < end:
        try:
            if hold:
                v = read_version(held)
                if v != first:
                    raise AssertionError(f"an open archive changed from {first} to {v}")
                np_sum = int(held["arr"].sum())
                if np_sum != v * len(held["arr"]):
                    raise AssertionError("array contents changed under an open archive")
            else:
                with bfa.Archive.open(path) as arch:
                    v = read_version(arch)
                if out["reads"] % 25 == 0:
                    loaded = bfa.load(path)
                    if len({loaded["version"], int(loaded["arr"][-1]), loaded["tail"][1]}) != 1:
                        raise AssertionError("load() mixed versions")
            seen.add(v)
            out["reads"] += 1
        except Exception as exc:
            out["errors"].append(repr(exc))
            if len(out["errors"]) > 20:
                break
    out["versions"] = sorted(seen)
    print(json.dumps(out))
""")


def test_reader_processes_see_whole_versions_while_a_writer_replaces_the_file(tmp_path):
    ns: dict = {}
    exec(VERSIONED, ns)
    path = tmp_path / "live.bfa"
    bfa.dump(ns["versioned"](0), path)
    seconds = 6.0
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(path), str(seconds),
                                 "hold" if r == 4 else "loop"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for r in range(5)]
    w_out, w_err = writer.communicate(timeout=120)
    results = []
    for r in readers:
        out, err = r.communicate(timeout=120)
        assert r.returncode == 0, f"reader died with status {r.returncode}: {err[-2000:]}"
        results.append(json.loads(out))
    assert writer.returncode == 0, w_err[-2000:]
    written = int(w_out)
    print(f"\nreplace-while-reading: {written} versions written; reads per reader "
          f"{[r['reads'] for r in results]}; versions seen {[len(r['versions']) for r in results]}")
    for r in results:
        assert r["errors"] == [], r["errors"][:5]
    assert written >= 10
    for r in results[:4]:
        assert r["reads"] >= 20 and len(r["versions"]) >= 3
    assert len(results[4]["versions"]) == 1 and results[4]["reads"] >= 20  # its first version
    assert sorted(os.listdir(tmp_path)) == ["live.bfa"]


_MUTATING_CALLER = textwrap.dedent("""
    import random, sys, threading, time
    from tests.support import hostile
    import bfast_archive as bfa
    golden = hostile.golden()
    counts = {"reads": 0, "flips": 0, "errors": 0}

    def flipper(buf, stop):
        rng = random.Random(2)
        while not stop.is_set():
            buf[rng.randrange(64, len(buf))] = rng.randrange(256)   # the header stays valid
            counts["flips"] += 1
            time.sleep(0.0001)

    for name in ("table", "containers", "arrays", "wide_dict", "c_payloads", "c_multi",
                 "model_list"):
        original = golden[name]
        buf = bytearray(original)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            buf[:] = original                 # a whole archive, then changed while read
            stop = threading.Event()
            t = threading.Thread(target=flipper, args=(buf, stop))
            t.start()
            try:                              # anything may come out; the process must survive
                hostile.exercise(buf, budget=150)
            except Exception:
                counts["errors"] += 1
            stop.set()
            t.join()
            counts["reads"] += 1
    print(counts)
""")


def test_caller_mutating_the_buffer_while_reading_never_crashes():
    """Not promised: correct values, or which exception, when the caller
    changes a from_buffer bytearray while the archive reads it. Promised:
    no crash, no hang, no read outside the buffer (the C core re-checks
    every access against the buffer length, which cannot change while it
    is exported)."""
    out = subprocess.run([sys.executable, "-c", _MUTATING_CALLER], capture_output=True,
                         text=True, timeout=120, env=python_env())
    assert out.returncode == 0, f"status {out.returncode}: {out.stderr[-2000:]}"
    counts = ast.literal_eval(out.stdout.strip())
    assert counts["reads"] > 100 and counts["flips"] > 1000
