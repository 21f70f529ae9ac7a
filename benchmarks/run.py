"""The benchmark suite: every benchmark in one run, one results file, one report.

    python -m benchmarks            # full suite (~25 minutes on 2 cores): benchmarks/results/<date>-<machine>.json,
                                    #   docs/BENCHMARKS.md and docs/img/*.png
    python -m benchmarks --quick    # CI smoke run: writes only under benchmarks/results/tmp-quick/
    python -m benchmarks --update benchmarks/results/X.json --only compression   # re-run parts into a file
    python -m benchmarks --wait-idle 1800   # before each part, wait (30 minutes in all) for a quiet machine
    python -m benchmarks.report benchmarks/results/X.json   # re-render the report

Each part (PARTS) runs in its own fresh Python process, one after another; a part that fails (non-zero exit,
timeout) is recorded with its output and the suite carries on.  The results file holds the machine
description, each part's JSON report (benchmarks/harness.py) and printed tables, how busy the rest of the
machine was during each part, and whether the page cache could be dropped (for core's cache-dropped runs).
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
    ("models", "bench_models.py", "record tables and pydantic models", (1800, 180), 1),
    ("cache", "bench_cache.py", "bfa.memoize vs joblib.Memory", (1800, 180), 1),
    ("frames", "bench_frames.py", "data frames vs Arrow IPC and Parquet", (1800, 120), 1),
    ("remote", "bench_remote.py", "byte-range reads over HTTP; Dask on 2 workers", (1800, 120), None),
    ("compression", "bench_compression.py", "chunked LZ4, threads, verify", (1800, 180), None),
)


def machine_slug(machine: dict) -> str:
    cpu = re.sub(r"\(.*?\)|\b(cpu|processor|with|radeon|graphics)\b|@.*", "", machine["cpu_model"], flags=re.I)
    cpu = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") or "cpu"
    return f"{cpu}-{machine['cpu_count']}core-{round(machine['ram_bytes'] / 1024**3)}gb"


def run_part(script: Path, args: list, timeout: float) -> dict:
    """Run one part in a fresh process; its stdout is shown and kept, stderr (progress) passes through."""
    fd, out_json = tempfile.mkstemp(prefix=f"bfa-suite-{script.stem}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, str(script), *args, "--out", out_json]
    H.log(f"{script.stem}: {' '.join(cmd[1:])}")
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
    reason = None if rc == 0 else f"timed out after {timeout:.0f} s" if elapsed >= timeout else f"exit status {rc}"
    part = {"status": "failed" if reason else "ok", "reason": reason, "elapsed_seconds": elapsed,
            "command": " ".join(["python", str(script.relative_to(ROOT)), *args]), "machine_load": load.stop(),
            "stdout": "".join(lines), "report": None}
    try:
        text = Path(out_json).read_text()
        part["report"] = json.loads(text) if text.strip() else None
    except (OSError, ValueError) as exc:
        if not reason:
            part["status"], part["reason"] = "failed", f"no JSON report: {exc}"
    Path(out_json).unlink(missing_ok=True)
    H.log(f"{script.stem}: {part['status']} in {elapsed:.0f} s" + (f" ({part['reason']})" if part["reason"] else ""))
    return part


def wait_idle(budget: list, need: int | None, probe: float = 5.0) -> dict | None:
    """Wait until ``need`` cores (None: all) are idle, i.e. other processes use less than
    cores - need + 0.25 of them over ``probe`` seconds, spending at most budget[0] seconds
    in all; returns the last probe's load."""
    cores, said = os.cpu_count() or 1, 0.0
    threshold = cores - min(need or cores, cores) + 0.25
    while True:
        load = H.CpuLoad().start()
        time.sleep(probe)
        load, budget[0] = load.stop(), budget[0] - probe
        if load is None or load["others_cores"] < threshold or budget[0] <= 0:
            return load
        if time.monotonic() - said >= 60:
            said = time.monotonic()
            H.log(f"waiting for {need or cores} idle core(s): other processes keep {load['others_cores']:.2f} busy "
                  f"({budget[0]:.0f} s of waiting left)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 2 minutes); nothing published")
    parser.add_argument("--only", help="comma-separated parts: " + ",".join(p[0] for p in PARTS))
    parser.add_argument("--results", metavar="FILE.json", help="where to write the results (default: see above)")
    parser.add_argument("--docs", metavar="DIR", help="where to write BENCHMARKS.md and img/ (default: see above)")
    parser.add_argument("--nocache", type=int, default=3, help="cache-dropped cold children per peer (full run)")
    parser.add_argument("--update", metavar="FILE.json",
                        help="run the --only parts again and replace them in this results file")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each part wait for other processes to use < 0.25 cores, at most SECONDS in all")
    args = parser.parse_args(argv)
    quick, mode = args.quick, "quick" if args.quick else "full"
    only = set(args.only.split(",")) if args.only else {p[0] for p in PARTS}
    if unknown := only - {p[0] for p in PARTS}:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    started, machine = dt.datetime.now().astimezone(), H.machine_info()
    slug = machine_slug(machine)
    default = (QUICK_DIR if quick else RESULTS) / f"{started:%Y-%m-%d}-{slug}.json"
    results_path = Path(args.update or args.results or default)
    docs_dir = Path(args.docs) if args.docs else QUICK_DIR / "docs" if quick else ROOT / "docs"
    previous = json.loads(results_path.read_text()) if args.update else None
    if previous and previous["mode"] != mode:
        parser.error(f"{results_path} is a {previous['mode']} run; use the same mode to update it")
    cache_drop = {"command": DROP, "worked": None, "note": "not attempted in --quick mode"}
    if not quick and args.nocache > 0 and "core" in only:
        cache_drop = {"command": DROP, "worked": H.drop_page_cache(), "euid": os.geteuid()}
        H.log(f"dropping the page cache {'works' if cache_drop['worked'] else 'is not permitted'} here")
    print(f"bfast_archive benchmark suite ({mode} mode), {started:%Y-%m-%d %H:%M %Z}")
    print(f"machine : {H.describe_machine(machine)}, {machine['python_impl']} {machine['python']}\n", flush=True)

    suite_load, t0, parts, budget = H.CpuLoad().start(), time.perf_counter(), {}, [args.wait_idle]
    for name, script, what, (t_full, t_quick), need in (p for p in PARTS if p[0] in only):
        waited = wait_idle(budget, need) if budget[0] > 0 else None
        part_args = ["--quick"] if quick else []
        part_args += ["--nocache", str(args.nocache)] if name == "core" and cache_drop.get("worked") else []
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds")  # the part's start (was: its end)
        timeout = t_quick if quick else t_full
        parts[name] = {"what": what, "started": now, **run_part(BENCH / script, part_args, timeout)}
        if waited is not None:
            parts[name]["load_before"] = waited
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
        results = {"suite": "bfast_archive benchmarks (benchmarks/run.py)", "mode": mode,
                   "started": started.isoformat(timespec="seconds"), "elapsed_seconds": time.perf_counter() - t0,
                   "machine": machine, "machine_slug": slug, "machine_load": suite_load.stop(),
                   "cache_drop": cache_drop, "parts": parts}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=1))
    from benchmarks import report

    for path in [results_path, *report.write(results, docs_dir, results_path)]:
        H.log(f"wrote {path}")
    print(report.headline_markdown(results) or "(no headline table: the core part did not run)")
    failed = [n for n, p in parts.items() if p["status"] == "failed"]
    H.log(f"done in {results['elapsed_seconds']:.0f} s" + (f"; failed parts: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
