"""What validation costs: the checked reader against an unchecked build of the same path.

Issue 5 asks for "the slowdown of the checked reader against an unchecked build of the same path (goal: under
10% on the records workload)". Run from the repository root, after ``pip install -e .``:

    python benchmarks/bench_checked.py              # about a minute on 2 cores
    python benchmarks/bench_checked.py --repeats 9  # more children per build

Method:
  * Two copies of the package go to a temporary directory, each with its own build of the C core from the same
    sources, compiler and flags (build_ffi.py's cdef, sources and ``_compile_args``); one of them with
    BFA_UNCHECKED=1, which defines the BFA_UNCHECKED macro: every bounds, alignment, tag, order and
    consistency check of the read path is compiled out (csrc/bfa_internal.h). The Python reader is the same
    file in both, so only the C core's checks differ (Python-side checks such as UTF-8 decoding and null-mask
    bytes run in both builds). Both builds are made here, so neither is favoured by how it was compiled.
  * The archive: bench_core.py's records workload ({"meta": {...}, "users": 100,000 user dicts}), written once
    with bfa.dump.
  * Each sample is a fresh ``python -c`` child importing one build: it opens the archive, then times, in this
    order, each phase with benchmarks/harness.py's method, ``--inner`` samples (the median is its figure):
      lookups   arch["users"][i]["name"] for 100,000 scattered i
      rows      for row in arch["users"]: row["id"], row["score"] (all rows)
      dict      arch["meta"][k] for each meta key, 20,000 rounds
      to_python arch["users"].to_python() (the whole table, column by column)
    Children alternate between the builds (checked, unchecked, checked, ...)
    so that load from other processes falls on both alike.
  * Printed: per phase and in total, the median over the children of each build, and checked / unchecked - 1
    (the slowdown). Also the machine's core count and its load average before and after, as the timings are
    only as quiet as the machine.
Not part of benchmarks/run.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PHASES = ("lookups", "rows", "dict", "to_python")

BUILD = textwrap.dedent("""
    import sys
    from cffi import FFI
    sys.path.insert(0, sys.argv[1])
    import build_ffi
    ffi = FFI()
    ffi.cdef(build_ffi._cdef_from_header())
    cflags, ldflags = build_ffi._compile_args()   # reads BFA_UNCHECKED, as for BFA_SANITIZE
    ffi.set_source("bfast_archive._bfa_core", '#include "bfa.h"',
                   sources=[str(build_ffi.CSRC / name) for name in build_ffi.SOURCES],
                   include_dirs=[str(build_ffi.CSRC)],
                   extra_compile_args=cflags, extra_link_args=ldflags)
    print(ffi.compile(tmpdir=sys.argv[2]))
    print(" ".join(cflags))
""")

CHILD = textwrap.dedent("""
    import json, random, statistics, sys
    path, want, inner, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    import bfast_archive as bfa
    sys.path.append(root)  # after the build under test is imported
    from benchmarks.harness import Config, measure
    from bfast_archive import _bfa_core
    assert _bfa_core.__file__.startswith(want) and bfa.__file__.startswith(want), \\
        (_bfa_core.__file__, bfa.__file__)
    arch = bfa.Archive.open(path)
    users, meta = arch["users"], arch["meta"]
    n = len(users)
    rng = random.Random(11)
    scattered = [rng.randrange(n) for _ in range(100_000)]
    keys = list(meta)

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

    def to_python():
        arch["users"].to_python()

    out, cfg = {}, Config(repeats=inner, slow_repeats=inner)
    for name, fn in (("lookups", lookups), ("rows", rows), ("dict", dict_loop),
                     ("to_python", to_python)):
        out[name] = statistics.median(measure(fn, cfg))
    # the same answers from both builds (compared by the parent)
    table = arch["users"].to_python()
    out["answer"] = repr((arch["users"][n // 2]["name"], table[n - 1], len(table),
                          sum(row["id"] for row in arch["users"]), meta.to_python()))
    arch.close()
    print(json.dumps(out))
""")


def copy_package(dest: Path) -> None:
    """The package's Python files, without any compiled core."""
    shutil.copytree(ROOT / "bfast_archive", dest / "bfast_archive",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "*.pyc"))


def build(dest: Path, unchecked: bool) -> str:
    """Build the C core into ``dest``/bfast_archive; returns the C flags used."""
    env = dict(os.environ)
    env.pop("BFA_SANITIZE", None)
    env.pop("BFA_UNCHECKED", None)
    if unchecked:
        env["BFA_UNCHECKED"] = "1"
    scratch = dest / "build"
    done = subprocess.run([sys.executable, "-c", BUILD, str(ROOT), str(scratch)], env=env,
                          cwd=str(ROOT), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"building the {'un' if unchecked else ''}checked core failed:\n"
                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    so, cflags = done.stdout.strip().splitlines()[-2:]
    shutil.copy2(so, dest / "bfast_archive" / Path(so).name)
    return cflags


def write_archive(path: Path, users: int) -> None:
    sys.path.insert(0, str(ROOT))
    import bfast_archive as bfa
    from benchmarks.bench_core import SETTINGS, build_workload
    from benchmarks.harness import config

    work = build_workload("records", config(SETTINGS, False, users=users))
    bfa.dump(work.obj, path)


def run_child(pkg: Path, path: Path, inner: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pkg)  # ahead of the editable install's finder
    env["BFA_ALLOW_UNCHECKED"] = "1"  # the unchecked core refuses files otherwise
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(pkg), str(inner), str(ROOT)],
                          env=env, cwd=str(pkg), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="children per build (default 7)")
    ap.add_argument("--inner", type=int, default=3, help="timings per phase in a child")
    ap.add_argument("--users", type=int, default=100_000, help="records in the archive")
    args = ap.parse_args()

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load0 = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bfa-checked-") as tmp:
        tmp = Path(tmp)
        builds = {}
        for name, unchecked in (("checked", False), ("unchecked", True)):
            pkg = tmp / name
            copy_package(pkg)
            flags = build(pkg, unchecked)
            builds[name] = pkg
            print(f"built {name:9s} core: {flags}", file=sys.stderr)
        path = tmp / "records.bfa"
        write_archive(path, args.users)
        samples: dict[str, list[dict]] = {name: [] for name in builds}
        for r in range(args.repeats):
            for name in (("checked", "unchecked") if r % 2 == 0 else ("unchecked", "checked")):
                samples[name].append(run_child(builds[name], path, args.inner))
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)
        size = path.stat().st_size
    load1 = os.getloadavg()
    answers = {s.pop("answer") for runs in samples.values() for s in runs}
    if len(answers) != 1:
        sys.exit("the two builds read different values: the unchecked build is broken")

    def med(name: str, phase: str) -> float:
        if phase == "total":
            return statistics.median(sum(s[p] for p in PHASES) for s in samples[name])
        return statistics.median(s[phase] for s in samples[name])

    print(f"bench_checked: records workload, {args.users:,} user dicts ({size / 2**20:.1f} MiB), "
          f"{args.repeats} children per build (alternating), median of {args.inner} "
          f"timings per phase in each child")
    print(f"machine: {cores} cores ({usable} usable), Python {sys.version.split()[0]}, "
          f"load average {load0[0]:.2f} before, {load1[0]:.2f} after")
    print(f"{'phase':<11}{'checked':>12}{'unchecked':>12}{'slowdown':>10}")
    for phase in PHASES + ("total",):
        c, u = med("checked", phase), med("unchecked", phase)
        print(f"{phase:<11}{c * 1e3:>10.1f}ms{u * 1e3:>10.1f}ms{(c / u - 1) * 100:>9.1f}%")
    c, u = med("checked", "total"), med("unchecked", "total")
    verdict = "meets" if c / u - 1 < 0.10 else "misses"
    print(f"checked / unchecked = {c / u:.3f}: {verdict} the goal of under 10% "
          f"({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
