"""The benchmark suite: every benchmark in one run, one results file, one report.

Run (from the repository root):

    pip install -e ".[bench]"
    python -m benchmarks            # full suite, about 25 minutes on 2 cores; writes
                                    #   benchmarks/results/<date>-<machine>.json,
                                    #   docs/BENCHMARKS.md and docs/img/*.png
    python -m benchmarks --quick    # CI smoke run, < 2 minutes; writes only under
                                    #   benchmarks/results/tmp-quick/ (not published)
    python -m benchmarks --only core,compression     # some parts
    python -m benchmarks --update benchmarks/results/X.json --only compression
                                    # re-run parts into an existing results file
    python -m benchmarks --wait-idle 1800            # on a shared machine: before each part,
                                    #   wait (up to 30 minutes in all) for other processes to go quiet
    python -m benchmarks.report benchmarks/results/X.json   # re-render the report

Parts, each run in its own fresh Python process (so one part's memory and imports do not affect the next), in
this order:

  core         benchmarks/bench_core.py: records, arrays, mixed, arrays-big with every peer of
               benchmarks/peers.py that can hold them; in the full run also cold children after dropping the
               page cache, where that is permitted (root)
  scaling      benchmarks/bench_scaling.py: open + read one row against file size
  models       benchmarks/bench_models.py (records tables, pydantic models)
  cache        benchmarks/bench_cache.py (bfa.memoize vs joblib.Memory)
  frames       benchmarks/bench_frames.py: issue 17's data frame (10M rows) against Arrow IPC (Feather v2,
               memory-mapped) and Parquet: write, open + one column, to_pandas(), one row, file size
  compression  benchmarks/bench_compression.py: issue 3's LZ4 / threads / verify figures (last; with
               --wait-idle, core and compression wait for all cores to be idle, the others for one)

A part that fails (non-zero exit, timeout) is recorded with its output and the suite carries on. The results
file holds the machine description (cores, CPU model, RAM, OS, Python and package versions), each part's JSON
report (raw samples, medians, min and max, targets; benchmarks/harness.py) and its printed tables, how busy
the rest of the machine was during each part, and whether the page cache could be dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness as H  # noqa: E402

ROOT = H.ROOT
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
QUICK_DIR = RESULTS / "tmp-quick"  # ignored by git (benchmarks/results/tmp*)
DROP = "sync; echo 3 > /proc/sys/vm/drop_caches"

# name, script, what it is, timeouts in seconds (full, quick), cores it needs idle (for --wait-idle);
# compression runs last: it measures thread scaling, so it gets the longest chance of an idle machine
PARTS = (
    ("core", "bench_core.py", "bench_core workloads x all peers", (3600, 240), None),
    ("scaling", "bench_scaling.py", "open + read one row vs file size", (3600, 180), 1),
    ("models", "bench_models.py", "record tables and pydantic models (issue 4)", (1800, 180), 1),
    ("cache", "bench_cache.py", "bfa.memoize vs joblib.Memory (issue 6)", (1800, 180), 1),
    ("frames", "bench_frames.py", "data frames vs Arrow IPC and Parquet (issue 17)", (1800, 120), 1),
    ("compression", "bench_compression.py", "chunked LZ4, threads, verify (issue 3)", (1800, 180), None),
)


def log(msg: str) -> None:
    print(f"[suite {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine_slug(machine: dict) -> str:
    cpu = re.sub(r"\(.*?\)|\b(cpu|processor|with|radeon|graphics)\b|@.*", "", machine["cpu_model"], flags=re.I)
    cpu = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") or "cpu"
    return f"{cpu}-{machine['cpu_count']}core-{round(machine['ram_bytes'] / 1024**3)}gb"


def run_part(script: Path, args: list, timeout: float) -> dict:
    """Run one part in a fresh process; its stdout is shown and kept, stderr (progress) passes through."""
    fd, out_json = tempfile.mkstemp(prefix=f"bfa-suite-{script.stem}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, str(script), *args, "--out", out_json]
    log(f"{script.stem}: {' '.join(cmd[1:])}")
    load, t0, lines = H.CpuLoad().start(), time.perf_counter(), []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1)
    watchdog = threading.Timer(timeout, proc.kill)  # a hung part is killed, the suite goes on
    watchdog.start()
    try:
        for line in proc.stdout:  # tee: show and keep
            sys.stdout.write(line)
            lines.append(line)
        rc = proc.wait()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - t0
    status, reason = "ok", None
    if rc != 0:
        status, reason = "failed", f"timed out after {timeout:.0f} s" if elapsed >= timeout else f"exit status {rc}"
    part = {"status": status, "reason": reason, "command": " ".join(["python", str(script.relative_to(ROOT)), *args]),
            "elapsed_seconds": elapsed, "machine_load": load.stop(), "stdout": "".join(lines), "report": None}
    try:
        text = Path(out_json).read_text()
        part["report"] = json.loads(text) if text.strip() else None
    except (OSError, ValueError) as exc:
        if status == "ok":
            part["status"], part["reason"] = "failed", f"no JSON report: {exc}"
    finally:
        Path(out_json).unlink(missing_ok=True)
    log(f"{script.stem}: {part['status']} in {elapsed:.0f} s" + (f" ({reason})" if reason else ""))
    return part


def wait_idle(budget: list, need: int | None, probe: float = 5.0) -> dict | None:
    """Wait until ``need`` cores (None: all) are idle, i.e. other processes use less than
    cores - need + 0.25 of them over ``probe`` seconds, spending at most budget[0] seconds
    in all; returns the last probe's load."""
    cores = os.cpu_count() or 1
    threshold = cores - min(need or cores, cores) + 0.25
    said = 0.0
    while True:
        load = H.CpuLoad().start()
        time.sleep(probe)
        load = load.stop()
        budget[0] -= probe
        if load is None or load["others_cores"] < threshold or budget[0] <= 0:
            return load
        if time.monotonic() - said >= 60:
            said = time.monotonic()
            log(f"waiting for {need or cores} idle core(s): other processes keep {load['others_cores']:.2f} busy "
                f"({budget[0]:.0f} s of waiting left)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 2 minutes); nothing published")
    parser.add_argument("--only", help="comma-separated parts: " + ",".join(p[0] for p in PARTS))
    parser.add_argument("--results", metavar="FILE.json", help="where to write the results (default: see above)")
    parser.add_argument("--docs", metavar="DIR", help="where to write BENCHMARKS.md and img/ (default: see above)")
    parser.add_argument("--sizes", help="scaling sizes, e.g. 10M,100M,1G,4G (default: the part's own)")
    parser.add_argument("--nocache", type=int, default=3, help="cache-dropped cold children per peer (full run)")
    parser.add_argument("--update", metavar="FILE.json",
                        help="run the --only parts again and replace them in this results file")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each part wait for other processes to use < 0.25 cores, at most SECONDS in all")
    args = parser.parse_args(argv)
    quick = args.quick
    only = set(args.only.split(",")) if args.only else None
    if only and only - {p[0] for p in PARTS}:
        parser.error(f"unknown part(s): {', '.join(sorted(only - {p[0] for p in PARTS}))}")

    started = dt.datetime.now().astimezone()
    machine = H.machine_info()
    slug = machine_slug(machine)
    base = QUICK_DIR if quick else RESULTS
    results_path = Path(args.update or args.results or base / f"{started:%Y-%m-%d}-{slug}.json")
    docs_dir = Path(args.docs) if args.docs else QUICK_DIR / "docs" if quick else ROOT / "docs"
    cache_drop = {"command": DROP, "worked": None, "note": "not attempted in --quick mode"}
    previous = json.loads(results_path.read_text()) if args.update else None
    if previous and previous["mode"] != ("quick" if quick else "full"):
        parser.error(f"{results_path} is a {previous['mode']} run; use the same mode to update it")
    if not quick and args.nocache > 0 and (only is None or "core" in only):
        cache_drop = {"command": DROP, "worked": H.drop_page_cache(), "euid": os.geteuid()}
        log(f"dropping the page cache {'works' if cache_drop['worked'] else 'is not permitted'} here")

    print(f"bfast_archive benchmark suite ({'quick' if quick else 'full'} mode), {started:%Y-%m-%d %H:%M %Z}")
    print(f"machine : {machine['cpu_count']} cores, {machine['cpu_model']}, {H.fmt_bytes(machine['ram_bytes'])} RAM, "
          f"{machine['platform']}, {machine['python_impl']} {machine['python']}\n")
    sys.stdout.flush()

    suite_load, t0, parts, budget = H.CpuLoad().start(), time.perf_counter(), {}, [args.wait_idle]
    for name, script, what, (t_full, t_quick), need in PARTS:
        if only and name not in only:
            continue
        waited = wait_idle(budget, need) if budget[0] > 0 else None
        part_args = ["--quick"] if quick else []
        if name == "core" and cache_drop.get("worked"):
            part_args += ["--nocache", str(args.nocache)]
        if name == "scaling" and args.sizes:
            part_args += ["--sizes", args.sizes]
        parts[name] = {"what": what, **run_part(BENCH / script, part_args, t_quick if quick else t_full)}
        if waited is not None:
            parts[name]["load_before"] = waited
        parts[name]["started"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        print()

    if previous is not None:  # --update: the new parts replace the old ones, the rest stays
        results = previous
        results["parts"].update(parts)
        results.setdefault("updates", []).append(
            {"started": started.isoformat(timespec="seconds"), "parts": sorted(parts), "machine": machine})
        if "core" in parts:
            results["cache_drop"] = cache_drop
        results["elapsed_seconds"] = sum(p.get("elapsed_seconds", 0) for p in results["parts"].values())
    else:
        results = {"suite": "bfast_archive benchmarks (benchmarks/run.py)", "mode": "quick" if quick else "full",
                   "started": started.isoformat(timespec="seconds"), "elapsed_seconds": time.perf_counter() - t0,
                   "machine": machine, "machine_slug": slug, "machine_load": suite_load.stop(),
                   "cache_drop": cache_drop, "parts": parts}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=1))
    log(f"wrote {results_path}")

    from benchmarks import report

    for path in report.write(results, docs_dir, results_path):
        log(f"wrote {path}")
    print(report.headline_markdown(results))
    failed = [n for n, p in parts.items() if p["status"] == "failed"]
    log(f"done in {results['elapsed_seconds']:.0f} s" + (f"; failed parts: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
