"""The one benchmark harness: config, timing, results, targets, machine facts and the CLI of every bench_*.

Timing method (every figure of every part; docs/BENCHMARKS.md says the same):

* ``time.perf_counter`` (CLOCK_MONOTONIC), with ``time.process_time`` beside each sample (CPU seconds of
  all threads: CPU / wall is how many cores a call kept busy).
* Warm-up: the first call is discarded; if it took under ``SLOW`` (0.2 s), a second one is discarded too
  and sizes the batch.  Calls under ``MIN_BATCH`` (10 ms) are repeated in a batch lasting >= 10 ms and
  reported per call.  Then ``cfg.repeats`` samples, or ``cfg.slow_repeats`` for calls >= 0.2 s.
* The garbage collector stays enabled with default thresholds (unless a row says "gc off");
  ``gc.collect()`` runs before each sample, outside the timing; a call's result is dropped outside it.
  A ``setup()`` (untimed, no batching) gives each sample a fresh argument, e.g. a freshly opened archive.
* Peers of one comparison (``measure_group``) are sampled round-robin, A B C A B C ..., so that load
  from other processes on a shared machine falls on all of them alike.
* Every figure is the median of its samples, kept with min, max and the raw samples; ratios and target
  verdicts are computed from the medians of the same run.
* "Cold" (``cold_run``): a fresh ``python -c`` child that imports the peer's libraries, opens the file and
  reads one value; its figure runs from the parent's spawn to the value (interpreter start + imports +
  open + read).  The page cache is warm (the file was just written) unless a row says "cache dropped";
  one discarded warm-up child per peer first leaves ``.pyc`` files, as in normal use (not in --quick mode,
  whose figures are not published).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KiB, MiB, GiB = 1024, 1024**2, 1024**3
MB, GB, US = 1e6, 1e9, 1e-6
SEED = 7
CORES = os.cpu_count() or 1
SLOW = 0.2  # seconds: a call at least this slow gets cfg.slow_repeats samples, unbatched
MIN_BATCH = 0.01  # seconds: faster calls are batched to at least this long
START = time.perf_counter()
DISTS = ("bfast-archive", "numpy", "lz4", "pydantic", "msgspec", "pyarrow", "safetensors", "h5py", "joblib",
         "msgpack", "orjson", "bfast-py", "psutil", "matplotlib", "pandas")


def expect(ok, what: str) -> None:
    """A check of a benchmark's data (outside the timing): raises AssertionError(what) unless ``ok``."""
    if not ok:
        raise AssertionError(what)


def log(msg: str) -> None:
    """Progress, to stderr (the tables go to stdout)."""
    print(f"[{time.perf_counter() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Config(dict):
    """A part's settings, read as attributes; written to the results file as they are."""

    def __getattr__(self, name: str):
        if name not in self:
            raise AttributeError(name)
        return self[name]


def config(settings: dict, quick: bool, **overrides) -> Config:
    """``settings`` maps each name to (full value, quick value)."""
    cfg = Config({name: pair[1] if quick else pair[0] for name, pair in settings.items()})
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


class Samples(list):
    """Seconds per call of each sample; ``cpu``: CPU seconds per call beside each; ``inner``: the batch."""

    def __init__(self, inner: int) -> None:
        super().__init__()
        self.cpu, self.inner = [], inner


def _sample(fn, batch: int, setup, teardown) -> tuple[float, float]:
    state = setup() if setup else None
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(batch):
        out = fn(state) if setup else fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    del out
    if teardown:
        teardown(state)
    return wall / batch, cpu / batch


def _plan(fn, cfg: Config, setup, teardown) -> tuple[int, int]:
    """Warm-up call(s); returns (samples, calls per sample)."""
    once = _sample(fn, 1, setup, teardown)[0]
    if once < SLOW:
        once = _sample(fn, 1, setup, teardown)[0]
    if once >= SLOW:
        return cfg.slow_repeats, 1
    return cfg.repeats, 1 if setup else max(1, min(100_000, int(MIN_BATCH / max(once, 1e-9))))


def measure_group(fns: dict, cfg: Config, setup=None, teardown=None, on_error=None) -> dict:
    """Time several callables, samples interleaved round-robin; returns {name: Samples}.  A callable whose
    warm-up raises goes to ``on_error(name, traceback)`` and is dropped (re-raised without ``on_error``)."""
    plans = {}
    for name, fn in fns.items():
        try:
            plans[name] = _plan(fn, cfg, setup, teardown)
        except Exception:
            if on_error is None:
                raise
            on_error(name, traceback.format_exc())
    out = {name: Samples(batch) for name, (_, batch) in plans.items()}
    rounds = max((repeats for repeats, _ in plans.values()), default=0)
    for r in range(rounds):
        for name, (repeats, batch) in plans.items():
            if r % max(1, rounds // repeats) or len(out[name]) >= repeats:
                continue  # a peer with fewer samples takes every (rounds // repeats)-th round
            wall, used = _sample(fns[name], batch, setup, teardown)
            out[name].append(wall)
            out[name].cpu.append(used)
    return out


def measure(fn, cfg: Config, setup=None, teardown=None) -> Samples:
    """Time one callable (``fn()``, or ``fn(setup())`` with a setup); see the module docstring."""
    return measure_group({0: fn}, cfg, setup, teardown)[0]


COLD_CHILD = """\
import time; t_start = time.perf_counter()
import json, sys
sys.path.insert(0, {root!r})
from benchmarks.peers import BY_NAME
def status():
    with open("/proc/self/status") as f:
        return {{l.split(":")[0]: int(l.split()[1]) * 1024 for l in f if l.startswith(("VmRSS:", "VmHWM:"))}}
t_util = time.perf_counter()
read = BY_NAME[{peer!r}].reader()
if {array_value!r}:
    import numpy  # every reader returns NumPy data here: import it up front, for all
t_imported = time.perf_counter()
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    hwm_reset = True
except OSError:
    hwm_reset = False
before = status()
value = read({path!r}, {probe!r})
t_read = time.perf_counter()
after = status()
print(json.dumps(dict(t_util=t_util, t_imported=t_imported, t_read=t_read, rss_before=before["VmRSS"],
                      rss_after=after["VmRSS"], hwm_after=after["VmHWM"], hwm_reset=hwm_reset, value=repr(value))))
"""
# the children may cache bytecode (the warm-up child writes it), as a user's Python would
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cold_run(peer: str, path: str, probe: tuple, array_value: bool, cwd: str) -> tuple[dict, str]:
    """One fresh ``python -c`` child: import the peer's reader, open ``path``, read ``probe``; returns its
    metrics and repr(value).  With ``array_value`` NumPy is imported in the import phase, for every reader.
    The parent's spawn time and the child's timestamps share one clock (CLOCK_MONOTONIC).  Peak RSS growth
    of the open+read: VmHWM reset through /proc/self/clear_refs, then VmHWM after - VmRSS before."""
    code = COLD_CHILD.format(root=str(ROOT), peer=peer, path=path, probe=probe, array_value=array_value)
    r, t_spawn, wall = child_json(code, env=CHILD_ENV, cwd=cwd)
    kept = r["rss_after"] - r["rss_before"]
    return {"cold_total": r["t_read"] - t_spawn, "cold_import": r["t_imported"] - r["t_util"],
            "cold_open_read": r["t_read"] - r["t_imported"], "cold_wall": wall,
            "cold_rss_peak": r["hwm_after"] - r["rss_before"] if r["hwm_reset"] else max(kept, 0),
            "cold_rss_kept": kept}, r["value"]


def child_json(code: str, args=(), env: dict | None = None, cwd=None) -> tuple[dict, float, float]:
    """A fresh ``python -c code args`` child: the JSON object on the last line of its stdout, the perf_counter
    at its spawn and its wall time.  Raises with the child's output when it fails."""
    t_spawn = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env)
    wall = time.perf_counter() - t_spawn
    if proc.returncode != 0:
        raise RuntimeError(f"child exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), t_spawn, wall


def alternate(children: dict, rounds: int) -> dict:
    """{name: [children[name]() of each round]}: the children run in turn, in reverse order every other round
    (A B, B A, ...), so that load from other processes falls on all of them alike."""
    out = {name: [] for name in children}
    for r in range(rounds):
        for name in list(children)[:: 1 if r % 2 == 0 else -1]:
            out[name].append(children[name]())
    return out


def drop_page_cache() -> bool:
    """sync, then ``echo 3 > /proc/sys/vm/drop_caches``; False where not permitted (not root)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


median = statistics.median


def row_of(rows: list, **keys) -> dict | None:
    """The first row with these keys' values."""
    return next((r for r in rows if all(r.get(k) == v for k, v in keys.items())), None)


class Results:
    """Rows of figures (their keys, unit, raw samples, median, min, max, n), targets, errors and notes."""

    def __init__(self) -> None:
        self.rows, self.targets, self.errors, self.notes = [], [], [], []

    def add(self, samples: list, unit: str = "s", **keys) -> dict:
        row = {**keys, "unit": unit, "samples": list(samples), "median": median(samples), "min": min(samples),
               "max": max(samples), "n": len(samples)}
        if getattr(samples, "inner", None) is not None:
            row["inner"] = samples.inner
        self.rows.append(row)
        return row

    def group(self, fns: dict, cfg: Config, setup=None, **keys) -> None:
        """``measure_group(fns)``, a row per name (``peer``) with ``keys``; with a ``per`` key, seconds per one of
        ``per`` operations in a call.  A callable that raises is recorded as an error and dropped."""
        measured = measure_group(fns, cfg, setup, on_error=lambda name, msg: self.error(msg, **keys, peer=name))
        for name, samples in measured.items():
            self.add([s / keys.get("per", 1) for s in samples], **keys, peer=name, inner=samples.inner)

    def get(self, **keys) -> dict | None:
        return row_of(self.rows, **keys)

    def stat(self, which: str = "median", **keys) -> float | None:
        return (self.get(**keys) or {}).get(which)

    def error(self, message: str, **where) -> None:
        self.errors.append({**where, "error": message})
        log(f"  !! {'/'.join(str(v) for v in where.values())}: {message.strip().splitlines()[-1]}")

    def step(self, fn, **where) -> bool:
        """Run ``fn()``; an exception is recorded as an error (the run goes on) and gives False."""
        try:
            fn()
            return True
        except Exception:
            self.error(traceback.format_exc(), **where)
            return False

    def note(self, text: str) -> None:
        self.notes.append(text)
        log(f"  note: {text}")

    def target(self, label: str, num: dict, den: dict | None, limit: float, op: str = "<=", unit: str = "",
               mins: bool = False, **kw) -> dict:
        """A target on this run's figures: num's median over den's ("x"), or num's median alone (den None)."""
        def value(which):
            a, b = self.stat(which, **num), den and self.stat(which, **den)
            return a if den is None else a / b if a is not None and b else None

        return check(label, value("median"), limit, op, unit or ("x" if den else "s"),
                     value_of_mins=value("min") if mins else None, **kw)

    def print_targets(self, title: str, targets: list) -> None:
        """Keep this run's targets and print them."""
        self.targets = targets
        mins = any(t["value_of_mins"] is not None for t in targets)
        print(f"== targets ({title}; verdicts on this run's medians"
              + ("; '(mins)': from the fastest samples)" if mins else ")"))
        print(f"{'check':<66} {'workload':<11} {'value':>10}" + (f" {'(mins)':>10}" if mins else "")
              + f" {'target':>12}")
        for t in targets:
            low = " " + (_show(t["unit"])(t["value_of_mins"]) if t["value_of_mins"] else "-").rjust(10) if mins else ""
            verdict = t["verdict"] if t["primary"] else f"({t['verdict']}, info)"
            print(f"{t['label']:<66} {t['workload']:<11} {t['value_text']:>10}{low} {t['limit_text']:>12}  {verdict}")
        primary = [t for t in targets if t["primary"]]
        print(f"{sum(t['verdict'] == 'PASS' for t in primary)} of {len(primary)} targets pass\n")


def _show(unit: str):
    return {"x": lambda v: f"{v:.3g}x", "s": fmt_seconds, "B": fmt_bytes, "GB/s": lambda v: f"{v:.1f} GB/s",
            "n": lambda v: f"{v:g}"}[unit]


def check(label: str, value: float | None, limit: float, op: str = "<=", unit: str = "x", workload: str = "",
          primary: bool = True, value_of_mins: float | None = None) -> dict:
    """A target: ``value op limit`` (op one of <, <=, >=) with its verdict and printed texts."""
    show = _show(unit)
    ok = {"<": value < limit, "<=": value <= limit, ">=": value >= limit}[op] if value is not None else None
    return {"label": label, "workload": workload, "value": value, "limit": limit, "op": op, "unit": unit,
            "value_text": "-" if value is None else show(value), "limit_text": f"{op} {show(limit)}",
            "value_of_mins": value_of_mins, "primary": primary,
            "verdict": "n/a" if ok is None else "PASS" if ok else "FAIL"}


def print_rows(title: str, rows: list, label=lambda r: r["metric"], group=lambda r: r["metric"]) -> None:
    """One table: label, peer, median, min, max, n and the ratio to bfa's median in the same group (to the
    group's first row's when bfa is not in it); then stdout is flushed."""
    wl, wp = max([6, *(len(label(r)) for r in rows)]), max([4, *(len(r["peer"]) for r in rows)])
    print(title)
    print(f"{'metric':<{wl}} {'peer':<{wp}} {'median':>10} {'min':>10} {'max':>10} {'n':>3} {'ratio':>8}")
    previous = None
    for r in rows:
        same = [x for x in rows if group(x) == group(r)]
        base = next((x for x in same if x["peer"] == "bfa"), same[0])
        first, previous = group(r) != previous, group(r)
        show = fmt_bytes if r["unit"] == "B" else fmt_seconds
        spread = ("", "") if r["n"] == 1 else (show(r["min"]), show(r["max"]))
        ratio = f"{r['median'] / base['median']:.2f}x" if base["median"] and len(same) > 1 else ""
        print(f"{label(r) if first else '':<{wl}} {r['peer']:<{wp}} {show(r['median']):>10} {spread[0]:>10} "
              f"{spread[1]:>10} {r['n']:>3} {ratio:>8}")
    print(flush=True)


def _lines(path: str) -> list:
    try:
        with open(path) as f:
            return f.readlines()
    except OSError:
        return []


def machine_info() -> dict:
    """Cores, CPU model, RAM, OS, Python and the versions of the peers' distributions."""
    from importlib import metadata

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = next((ln.split(":", 1)[1].strip() for ln in _lines("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor())
    mem_kib = next((int(ln.split()[1]) for ln in _lines("/proc/meminfo") if ln.startswith("MemTotal:")), 0)
    return {"cpu_count": os.cpu_count(), "cpu_model": cpu, "ram_bytes": mem_kib * KiB,
            "platform": platform.platform(), "python": sys.version.split()[0],
            "python_impl": platform.python_implementation(), "versions": {d: version(d) for d in DISTS}}


class CpuLoad:
    """How busy the rest of the machine was between start() and stop(): /proc/stat's CPU time of all processes
    minus this process's and its waited-for children's (os.times); None where /proc/stat is missing."""

    def _snapshot(self) -> dict | None:
        try:
            fields = [int(x) for x in _lines("/proc/stat")[0].split()[1:]]
        except (IndexError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        hz, t = os.sysconf("SC_CLK_TCK"), os.times()
        return {"busy": (user + nice + system + irq + softirq) / hz, "steal": steal / hz,
                "own": t.user + t.system + t.children_user + t.children_system, "wall": t.elapsed}

    def start(self) -> CpuLoad:
        self._start = self._snapshot()
        return self

    def stop(self) -> dict | None:
        a, b = self._start, self._snapshot()
        if a is None or b is None:
            return None
        wall, own = max(b["wall"] - a["wall"], 1e-9), b["own"] - a["own"]
        return {"seconds": wall, "own_cores": own / wall, "others_cores": max(b["busy"] - a["busy"] - own, 0) / wall,
                "steal_cores": (b["steal"] - a["steal"]) / wall, "cores": os.cpu_count()}


def fmt_seconds(t: float) -> str:
    if t < 1e-6:
        return f"{t * 1e9:.0f} ns"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def fmt_bytes(n: float) -> str:
    sign, n = "-" if n < 0 else "", abs(n)
    if n < 1000:
        return f"{sign}{n:.0f} B"
    if n < 1000 * KiB:
        return f"{sign}{n / KiB:.1f} KiB"
    return f"{sign}{n / MiB:.1f} MiB" if n < 1000 * MiB else f"{sign}{n / GiB:.2f} GiB"


def fmt_load(load: dict | None) -> str:
    if not load:
        return "not measured (no /proc/stat)"
    text = (f"other processes kept {load['others_cores']:.2f} of {load['cores']} cores busy on average "
            f"(this benchmark {load['own_cores']:.2f}) over {load['seconds']:.0f} s")
    return text + (f"; hypervisor steal {load['steal_cores']:.2f} cores" if load["steal_cores"] >= 0.01 else "")


def describe_machine(m: dict) -> str:
    return f"{m['cpu_count']} cores, {m['cpu_model']}, {fmt_bytes(m['ram_bytes'])} RAM, {m['platform']}"


def main(doc: str, settings: dict, run, argv=None, options=()) -> int:
    """``python benchmarks/bench_X.py [--quick] [--out FILE.json] [options]``: prints the header, runs
    ``run(cfg, res) -> report`` (it fills ``res``, a Results, prints its tables and targets and returns what
    else the report holds), prints the errors and notes, adds mode, config, machine, its load, the elapsed
    time and ``res``, and writes it with --out.  ``options``: (flag, argparse kwargs) of the part's own
    options, each overriding the setting its ``dest`` names."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer repeats (CI smoke run)")
    parser.add_argument("--out", metavar="FILE.json", help="write config, machine, raw samples, medians, targets")
    for flag, kwargs in options:
        parser.add_argument(flag, **kwargs)
    args = parser.parse_args(argv)
    cfg = config(settings, args.quick, **{k: v for k, v in vars(args).items() if k in settings})
    mode, machine = "quick" if args.quick else "full", machine_info()
    print(f"{doc.split(':')[0]} ({mode} mode)")
    print(f"machine : {describe_machine(machine)}")
    print(f"python  : {machine['python_impl']} {machine['python']}; "
          + ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v != "not installed"))
    print(f"method  : benchmarks/harness.py: {cfg.get('repeats')} samples ({cfg.get('slow_repeats')} for calls >= "
          f"{SLOW} s) after a discarded warm-up, calls < {MIN_BATCH * 1e3:.0f} ms batched; gc enabled "
          f"(thresholds {gc.get_threshold()}), gc.collect() before each sample; medians\n")
    sys.stdout.flush()
    load, res = CpuLoad().start(), Results()
    report = run(cfg, res)
    machine_load = load.stop()
    if args.quick and res.targets:
        print("NOTE    : quick mode (smaller data, fewer repeats): these verdicts are not the targets' figures\n")
    for e in res.errors:
        print(f"-- error: {' / '.join(str(v) for k, v in e.items() if k != 'error')}\n{e['error'].rstrip()}")
    if res.notes:
        print("== notes\n" + "".join(f"- {text}\n" for text in res.notes))
    elapsed = time.perf_counter() - START
    print(f"load    : {fmt_load(machine_load)}")
    print(f"total time {elapsed:.0f} s")
    report = {"mode": mode, "config": dict(cfg), "machine": machine, "machine_load": machine_load,
              "harness": "benchmarks/harness.py", "method": __doc__.split("\n\n", 1)[1].strip(), "results": res.rows,
              "targets": res.targets, "notes": res.notes, "errors": res.errors, **report, "elapsed_seconds": elapsed}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
        log(f"wrote {args.out}")
    return 0
