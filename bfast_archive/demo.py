"""The README's demo: archive a few hundred MB of records and arrays, then
measure, live, what it costs to open the file and read one field, against
``pickle.load`` of the same data. Each read runs in a fresh process so its
time and memory are its own."""
from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from typing import Any, TextIO

_READ_BFA = """
import json, os, sys, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) * 1024
t0 = time.perf_counter(); import bfast_archive as bfa, numpy; t1 = time.perf_counter()
r0 = rss(); t2 = time.perf_counter()
with bfa.Archive.open(sys.argv[1]) as arch:
    name = arch["users"][50_000]["name"]
    row = arch["emb"][12_345]
    first = float(row[0])
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "read": t3 - t2, "rss": rss() - r0, "value": name}))
"""

_READ_PICKLE = """
import json, pickle, sys, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) * 1024
t0 = time.perf_counter(); import numpy; t1 = time.perf_counter()
r0 = rss(); t2 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    data = pickle.load(f)
name = data["users"][50_000]["name"]
row = data["emb"][12_345]
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "read": t3 - t2, "rss": rss() - r0, "value": name}))
"""


def build_data(n_users: int = 100_000, emb_rows: int = 600_000, dim: int = 128
               ) -> dict[str, Any]:
    """Mixed records and arrays: ``n_users`` user dicts plus float32 embeddings."""
    import numpy as np

    rng = random.Random(7)
    users = [{"id": i, "name": f"user-{i}", "email": f"user{i}@example.com",
              "score": rng.random() * 100, "active": i % 3 == 0,
              "tags": rng.sample(["red", "green", "blue", "cyan", "gold"], 3)}
             for i in range(n_users)]
    gen = np.random.default_rng(7)
    return {"meta": {"name": "demo", "created": "2026-11-24", "version": 1},
            "users": users,
            "emb": gen.standard_normal((emb_rows, dim), dtype=np.float32),
            "ids": np.arange(emb_rows, dtype=np.int64)}


def _child(code: str, path: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code, path], check=True,
                         capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _median_run(code: str, path: str, runs: int) -> dict[str, Any]:
    results = [_child(code, path) for _ in range(runs)]
    results.sort(key=lambda r: r["read"])
    return results[len(results) // 2]


def run(runs: int = 3, out: TextIO = sys.stdout) -> None:
    """Run the demo, printing as it goes; everything it writes is removed."""
    from . import dump

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    say(f"bfast_archive demo on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    t = time.perf_counter()
    data = build_data()
    say(f"built 100,000 user records + {data['emb'].nbytes / 2**20:.0f} MiB of arrays "
        f"in {time.perf_counter() - t:.2f} s")
    with tempfile.TemporaryDirectory(prefix="bfa-demo-") as tmp:
        bfa_path = os.path.join(tmp, "cache.bfa")
        pkl_path = os.path.join(tmp, "cache.pkl")
        t = time.perf_counter()
        size = dump(data, bfa_path)
        t_bfa = time.perf_counter() - t
        t = time.perf_counter()
        with open(pkl_path, "wb") as f:
            pickle.dump(data, f, protocol=5)
        t_pkl = time.perf_counter() - t
        say(f"write: bfast_archive {t_bfa:.2f} s ({size / 2**20:.0f} MiB), "
            f"pickle {t_pkl:.2f} s ({os.path.getsize(pkl_path) / 2**20:.0f} MiB)")
        del data
        say(f"open + read users[50000]['name'] and one embedding row, fresh process, "
            f"median of {runs}:")
        b = _median_run(_READ_BFA, bfa_path, runs)
        p = _median_run(_READ_PICKLE, pkl_path, runs)
        assert b["value"] == p["value"] == "user-50000"
        say(f"  bfast_archive  {b['read'] * 1e3:9.3f} ms   RSS +{b['rss'] / 2**20:7.1f} MiB")
        say(f"  pickle.load    {p['read'] * 1e3:9.3f} ms   RSS +{p['rss'] / 2**20:7.1f} MiB")
        say(f"  -> {p['read'] / b['read']:.0f}x faster, "
            f"{p['rss'] / max(b['rss'], 1):.0f}x less memory; value read: {b['value']!r}")
    say("temporary files removed.")
