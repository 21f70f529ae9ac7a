"""A/B of the reader's hot paths between two checkouts of this repository.

    python benchmarks/ab_reader.py OLD_TREE [NEW_TREE] [--rounds N]

Each round runs one fresh subprocess per tree, alternating, so both see the
same machine load; each subprocess imports ``bfast_archive`` from its tree
and times every probe (median of many calls, ``time.perf_counter``). The
report prints each probe's median over rounds and the ratio new/old. Used to
show that a refactoring of the reader made no figure worse.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROBE = r'''
import json, sys, time, statistics
sys.path.insert(0, sys.argv[1])
import bfast_archive as bfa
import numpy as np
path, team_path, out = sys.argv[2], sys.argv[3], {}

def timed(fn, n):
    best = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best.append((time.perf_counter() - t) / n)
    return statistics.median(best)

arch = bfa.Archive.open(path)
users, meta = arch["users"], arch["meta"]
plain = arch["plain"]
out["open+close (kept mapping) us"] = timed(lambda: bfa.Archive.open(path).close(), 2000) * 1e6
out["arch['users'][i]['name'] us"] = timed(lambda: arch["users"][50_000]["name"], 20000) * 1e6
out["row['score'] us"] = timed(lambda: users[7]["score"], 20000) * 1e6
out["meta['k'] us"] = timed(lambda: meta["k"], 20000) * 1e6
out["plain[i]['b'] (list of mixed dicts) us"] = timed(lambda: plain[123]["b"], 20000) * 1e6
out["arch['emb'][i] us"] = timed(lambda: arch["emb"][17], 20000) * 1e6
out["column('id') us"] = timed(lambda: users.column("id"), 2000) * 1e6
out["column('name') ms"] = timed(lambda: users.column("name"), 5) * 1e3
out["to_python ms"] = timed(lambda: bfa.Archive.open(path).to_python(), 3) * 1e3
out["load ms"] = timed(lambda: bfa.load(path), 3) * 1e3
sys.path.insert(1, sys.argv[4])  # the benchmarks package, for the realistic models
from benchmarks.bench_models import Team
users = bfa.Archive.open(team_path, model=Team).root.users
out["typed users[i].created us"] = timed(lambda: users[777].created, 5000) * 1e6
out["typed users[i].name us"] = timed(lambda: users[777].name, 5000) * 1e6
print(json.dumps(out))
'''


def make_archives(path: str, team_path: str) -> None:
    import random

    import numpy as np

    import bfast_archive as bfa
    from benchmarks.bench_models import make_team

    bfa.dump(make_team(10_000, random.Random(0)), team_path)

    rows = [{"id": i, "name": f"user-{i}", "score": i * 0.5, "tags": ["a", "b"]}
            for i in range(100_000)]
    plain = [{"a": i, "b": str(i), "c": [i, {"d": i}]} if i % 3 else {"a": i, "b": None}
             for i in range(10_000)]
    bfa.dump({"meta": {"k": "v", "n": 3}, "users": rows, "plain": plain,
              "emb": np.random.default_rng(0).random((10_000, 64), np.float32)}, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=str(ROOT))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path, team_path = os.path.join(tmp, "ab.bfa"), os.path.join(tmp, "team.bfa")
        make_archives(path, team_path)
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for label in ("old", "new"):
                tree = getattr(args, label)
                out = subprocess.run([sys.executable, "-c", PROBE, tree, path, team_path,
                                      str(ROOT)], check=True,
                                     capture_output=True, text=True).stdout
                runs[label].append(json.loads(out))
    print(f"{'probe':44} {'old':>10} {'new':>10} {'new/old':>8}   ({args.rounds} rounds, "
          f"{os.cpu_count()} cores)")
    for probe in runs["old"][0]:
        old = statistics.median(r[probe] for r in runs["old"])
        new = statistics.median(r[probe] for r in runs["new"])
        print(f"{probe:44} {old:10.3f} {new:10.3f} {new / old:8.3f}")


if __name__ == "__main__":
    main()
