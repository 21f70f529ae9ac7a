"""A/B of the reader's hot paths between two checkouts of this repository.

    python benchmarks/ab_reader.py OLD_TREE [NEW_TREE] [--rounds N]

Each round runs one fresh child per tree (harness.alternate: A B, then B A), so both see the same machine load;
a child imports ``bfast_archive`` from its tree and times every probe with benchmarks/harness.py's method (the
median of its samples).  Printed: each probe's median over the rounds, and new / old.  Used to show that a
refactoring of the reader made no figure worse.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402

PROBE = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
import bfast_archive as bfa
sys.path.insert(0, sys.argv[4])  # this checkout's benchmarks package (harness, models); bfast_archive is the tree's
from benchmarks.bench_models import Team
from benchmarks.harness import Config, measure, median
path, team_path = sys.argv[2], sys.argv[3]
arch = bfa.Archive.open(path)
users, meta, plain = arch["users"], arch["meta"], arch["plain"]
typed = bfa.Archive.open(team_path, model=Team).root.users
probes = {"open+close (kept mapping)": lambda: bfa.Archive.open(path).close(),
          "arch['users'][i]['name']": lambda: arch["users"][50_000]["name"], "row['score']": lambda: users[7]["score"],
          "meta['k']": lambda: meta["k"], "plain[i]['b'] (list of mixed dicts)": lambda: plain[123]["b"],
          "arch['emb'][i]": lambda: arch["emb"][17], "column('id')": lambda: users.column("id"),
          "column('name')": lambda: users.column("name"), "to_python": lambda: bfa.Archive.open(path).to_python(),
          "load": lambda: bfa.load(path), "typed users[i].created": lambda: typed[777].created,
          "typed users[i].name": lambda: typed[777].name}
print(json.dumps({name: median(measure(fn, Config(repeats=5, slow_repeats=3))) for name, fn in probes.items()}))
'''


def make_archives(path: str, team_path: str) -> None:
    import bfast_archive as bfa
    from benchmarks.bench_models import make_team

    bfa.dump(make_team(10_000, random.Random(0)), team_path)
    rows = [{"id": i, "name": f"user-{i}", "score": i * 0.5, "tags": ["a", "b"]} for i in range(100_000)]
    plain = [{"a": i, "b": str(i), "c": [i, {"d": i}]} if i % 3 else {"a": i, "b": None} for i in range(10_000)]
    bfa.dump({"meta": {"k": "v", "n": 3}, "users": rows, "plain": plain,
              "emb": np.random.default_rng(0).random((10_000, 64), np.float32)}, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=str(ROOT))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, "ab.bfa"), os.path.join(tmp, "team.bfa")]
        make_archives(*paths)
        runs = H.alternate({side: lambda tree=getattr(args, side): H.child_json(PROBE, [tree, *paths, ROOT])
                            for side in ("old", "new")}, args.rounds)
    print(f"{'probe':38} {'old':>10} {'new':>10} {'new/old':>8}   ({args.rounds} rounds, {os.cpu_count()} cores)")
    for probe in runs["old"][0]:
        old, new = (statistics.median(r[probe] for r in runs[side]) for side in ("old", "new"))
        print(f"{probe:38} {H.fmt_seconds(old):>10} {H.fmt_seconds(new):>10} {new / old:8.3f}")


if __name__ == "__main__":
    main()
