"""What validation costs: the checked reader against an unchecked build of the same path (goal: under 10% on
the records workload).

    python benchmarks/bench_checked.py              # about a minute on 2 cores
    python benchmarks/bench_checked.py --quick      # 1 child per build, 10,000 users: a smoke run

Two copies of the package in a temporary directory, each with its C core built from the same sources, compiler
and flags (build_ffi.py's); one with BFA_UNCHECKED=1, which compiles out every bounds, alignment, tag, order and
consistency check of the C read path (csrc/bfa_internal.h).  The archive: bench_core's records workload.  Each
sample is a fresh child importing one build (harness.alternate: the builds take turns, so load from other
processes falls on both alike) that times each phase with benchmarks/harness.py's method (``--inner`` samples,
their median): lookups (arch["users"][i]["name"], 100,000 scattered i), rows (row["id"], row["score"] of every
row), dict (arch["meta"][k] for each key, 20,000 rounds), to_python (the whole table).  Printed: per phase and
in total the median over each build's children, and checked / unchecked - 1.  Not part of benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402

PHASES = ("lookups", "rows", "dict", "to_python")
ENV = {k: v for k, v in os.environ.items() if k not in ("BFA_SANITIZE", "BFA_UNCHECKED", "PYTHONDONTWRITEBYTECODE")}
CHILD = """
import json, random, sys
path, want, inner, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import bfast_archive as bfa
sys.path.append(root)  # after the build under test is imported
from benchmarks.harness import Config, measure, median
from bfast_archive import _bfa_core
assert _bfa_core.__file__.startswith(want) and bfa.__file__.startswith(want), (_bfa_core.__file__, bfa.__file__)
arch = bfa.Archive.open(path)
users, meta = arch["users"], arch["meta"]
n, keys = len(users), list(meta)
rng = random.Random(11)
scattered = [rng.randrange(n) for _ in range(100_000)]

def lookups():
    for i in scattered:
        arch["users"][i]["name"]

def rows():
    for row in arch["users"]:
        row["id"], row["score"]

def dict_loop():
    m = arch["meta"]
    for _ in range(20_000):
        for k in keys:
            m[k]

phases = {"lookups": lookups, "rows": rows, "dict": dict_loop, "to_python": lambda: arch["users"].to_python()}
out = {name: median(measure(fn, Config(repeats=inner, slow_repeats=inner))) for name, fn in phases.items()}
table = arch["users"].to_python()  # the same answers from both builds (compared by the parent)
out["answer"] = repr((users[n // 2]["name"], table[n - 1], len(table), sum(row["id"] for row in users),
                      meta.to_python()))
print(json.dumps(out))
"""


def build(dest: Path, unchecked: bool) -> None:
    """A copy of the package's Python files, build_ffi.py and csrc/ in ``dest``; its C core built there."""
    shutil.copytree(ROOT / "bfast_archive", dest / "bfast_archive",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "*.pyc"))
    shutil.copytree(ROOT / "csrc", dest / "csrc")
    shutil.copy2(ROOT / "build_ffi.py", dest)
    done = subprocess.run([sys.executable, "build_ffi.py"], cwd=dest, capture_output=True, text=True,
                          env={**ENV, "BFA_UNCHECKED": "1"} if unchecked else ENV)
    if done.returncode != 0:
        sys.exit(f"building the {dest.name} core failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="children per build (default 7)")
    ap.add_argument("--inner", type=int, default=3, help="timings per phase in a child")
    ap.add_argument("--users", type=int, default=100_000, help="records in the archive")
    ap.add_argument("--quick", action="store_true", help="--repeats 1 --users 10000: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.users = 1, 10_000
    import bfast_archive as bfa
    from benchmarks.bench_core import SETTINGS, build_workload

    load0, start = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bfa-checked-") as tmp:
        builds = {name: Path(tmp) / name for name in ("checked", "unchecked")}
        for name, pkg in builds.items():
            build(pkg, name == "unchecked")
            H.log(f"built the {name} core")
        path = Path(tmp) / "records.bfa"
        bfa.dump(build_workload("records", H.config(SETTINGS, False, users=args.users)).obj, path)
        # PYTHONPATH: ahead of the editable install's finder; the unchecked core refuses files otherwise
        samples = H.alternate({name: lambda pkg=pkg: H.child_json(CHILD, [path, pkg, args.inner, ROOT], cwd=pkg, env={
            **ENV, "PYTHONPATH": str(pkg), "BFA_ALLOW_UNCHECKED": "1"}) for name, pkg in builds.items()}, args.repeats)
        size = path.stat().st_size
    load1 = os.getloadavg()
    if len({s.pop("answer") for runs in samples.values() for s in runs}) != 1:
        sys.exit("the two builds read different values: the unchecked build is broken")

    def med(name: str, phase: str) -> float:
        return statistics.median(sum(s[p] for p in PHASES) if phase == "total" else s[phase] for s in samples[name])

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"bench_checked: records workload, {args.users:,} user dicts ({size / 2**20:.1f} MiB), "
          f"{args.repeats} children per build (alternating), median of {args.inner} timings per phase in each child")
    print(f"machine: {os.cpu_count()} cores ({usable} usable), Python {sys.version.split()[0]}, "
          f"load average {load0[0]:.2f} before, {load1[0]:.2f} after")
    print(f"{'phase':<11}{'checked':>12}{'unchecked':>12}{'slowdown':>10}")
    for phase in PHASES + ("total",):
        c, u = med("checked", phase), med("unchecked", phase)
        print(f"{phase:<11}{c * 1e3:>10.1f}ms{u * 1e3:>10.1f}ms{(c / u - 1) * 100:>9.1f}%")
    c, u = med("checked", "total"), med("unchecked", "total")
    print(f"checked / unchecked = {c / u:.3f}: {'meets' if c / u - 1 < 0.10 else 'misses'} the goal of under 10% "
          f"({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
