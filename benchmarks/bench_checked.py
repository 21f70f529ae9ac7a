"""What validation costs: the checked reader against an unchecked build of the same path (goal: under 10% on
the records workload).

    python benchmarks/bench_checked.py              # about a minute on 2 cores
    python benchmarks/bench_checked.py --quick      # 1 child per build, 10,000 users: a smoke run
    python benchmarks/bench_checked.py --out X.json # also the figures as JSON (benchmarks/harness.py's main)

Two copies of the package in a temporary directory, each with its C core built from the same sources, compiler
and flags (build_ffi.py's); one with BFA_UNCHECKED=1, which compiles out every bounds, alignment, tag, order and
consistency check of the C read path (csrc/bfa_internal.h).  The archive: bench_core's records workload.  Each
sample is a fresh child importing one build (harness.alternate: the builds take turns, so load from other
processes falls on both alike) that times each phase with benchmarks/harness.py's method (``repeats`` samples,
their median): lookups (arch["users"][i]["name"], 100,000 scattered i), rows (row["id"], row["score"] of every
row), dict (arch["meta"][k] for each key, 20,000 rounds), to_python (the whole table).  Printed: per phase and
in total the median over each build's children, and checked / unchecked.  Not part of benchmarks/run.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402

SETTINGS = {  # name: (full, quick); children: per build; repeats: timings of each phase in a child
    "users": (100_000, 10_000), "children": (7, 1), "repeats": (3, 3), "slow_repeats": (3, 3)}
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


def run(cfg: H.Config, res: H.Results) -> dict:
    import bfast_archive as bfa
    from benchmarks.bench_core import SETTINGS as CORE
    from benchmarks.bench_core import build_workload

    with tempfile.TemporaryDirectory(prefix="bfa-checked-") as tmp:
        builds = {name: Path(tmp) / name for name in ("checked", "unchecked")}
        for name, pkg in builds.items():
            build(pkg, name == "unchecked")
            H.log(f"built the {name} core")
        path = Path(tmp) / "records.bfa"
        bfa.dump(build_workload("records", H.config(CORE, False, users=cfg.users)).obj, path)
        # PYTHONPATH: ahead of the editable install's finder; the unchecked core refuses files otherwise
        samples = H.alternate({name: lambda pkg=pkg: H.child_json(CHILD, [path, pkg, cfg.repeats, ROOT], cwd=pkg, env={
            **ENV, "PYTHONPATH": str(pkg), "BFA_ALLOW_UNCHECKED": "1"})[0] for name, pkg in builds.items()},
            cfg.children)
        size = path.stat().st_size
    H.expect(len({s.pop("answer") for runs in samples.values() for s in runs}) == 1,
             "the two builds read different values: the unchecked build is broken")
    for phase in PHASES + ("total",):
        for name in ("unchecked", "checked"):  # the ratio column: over the first row of each phase
            res.add([sum(s[p] for p in PHASES) if phase == "total" else s[phase] for s in samples[name]], phase=phase,
                    peer=name)
    phase = lambda r: r["phase"]  # noqa: E731
    H.print_rows(f"== records workload, {cfg.users:,} user dicts ({H.fmt_bytes(size)}), {cfg.children} children per "
                 "build, alternating; ratio: checked / unchecked", res.rows, phase, phase)
    total = {"phase": "total", "peer": "checked"}, {"phase": "total", "peer": "unchecked"}
    res.print_targets("validation", [res.target("checked / unchecked, all phases", *total, 1.1, "<")])
    return {"file_bytes": size}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run))
