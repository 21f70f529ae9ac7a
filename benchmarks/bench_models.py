"""Models benchmark: issue 4's record tables and pydantic models against pickle, msgspec and bfast-py.

Run (from the repository root):

    pip install -e . -r benchmarks/requirements.txt bfast-py
    python benchmarks/bench_models.py                 # full run, 1-2 minutes on 2 cores
    python benchmarks/bench_models.py --quick         # smaller data, fewer repeats, < 30 s
    python benchmarks/bench_models.py --out res.json  # also write raw samples + medians as JSON

Tables go to stdout, progress to stderr.  Every figure is measured in the run
that prints it; the target verdicts at the end are computed from its medians.

Sections (deterministic, seeded):
  records  bench_core's records workload ({"meta": {...}, "users": [N dicts: id,
           name, email, score, active, tags]}, built by bench_core.build_workload):
           bfa.dumps vs pickle.dumps (protocol 5) and msgspec.msgpack.encode;
           bfa.loads vs pickle.loads (and msgspec decode, for reference), with the
           collector enabled for both, then disabled for both;
           arch["users"].column("score") on tables of 1k, 10k, 100k and 1M rows
           (rows past N repeat the same user dicts).
  models   Catalog(title, users: list[User]) holding M User models (id: int,
           name: str, created: naive datetime, role: Enum, score: float | None,
           10% None), ids/names/scores taken from bench_core.make_users:
           bfa.dumps(catalog) vs pickle.dumps(catalog.model_dump()),
           pickle.dumps(catalog) and bfast-py's BFast().encode_packed(catalog)
           (compress=False, its default; if bfast-py is missing or fails on these
           models, the output says so and its rows are absent);
           bfa.loads(b, model=Catalog, trusted=True / False) vs pickle.loads of the
           pickled catalog (and model_validate(pickle.loads(model_dump pickle)) for
           reference), gc enabled, then disabled for both;
           Archive.from_buffer(b, model=Catalog).root.users[i].name per access over
           scattered i (and with the users view held, and the in-memory models);
           .column("score") on the model archive (None present: a masked array).

Method (bench_core.measure's, applied by measure_group() to the peers of one
comparison with their samples interleaved round-robin, so that load from other
processes on this shared machine falls on all of them alike):
time.perf_counter; gc enabled with default thresholds unless a row says "gc
off"; gc.collect() before each sample, outside the timing; two discarded
warm-up calls; operations faster than 10 ms are timed in batches of >= 10 ms
and reported per call; operations >= 0.2 s get fewer repeats.  Everything is
in memory (bytes), no file I/O.
"gc off" rows disable the collector around the whole measurement for both
peers.  Note: bfa.loads pauses the collector itself while it builds the
result (bfast_archive._limits.gc_paused), pickle.loads does not, so the
"gc off" rows are the like-for-like comparison of the two decoders.

"ratio" in the tables is the row's median over the first row of its group
(bfa).  Targets (issue 4) are checked on medians; "in microseconds" is taken
as "< 100 µs", and "regardless of row count" as "1M-row median <= 2x the 1k-row
median".  The targets table also shows each figure computed from the minimums
("(mins)", no verdict): on a busy machine it is the less disturbed estimate.
Where benchmarks/_util.py has CpuLoad, the run ends with how many cores other
processes kept busy meanwhile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import enum
import gc
import json
import pickle
import random
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Literal, Optional

import msgspec
import numpy as np
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _util as U  # noqa: E402
from benchmarks import bench_core as C  # noqa: E402  (workload builder, measure(), machine_info())

import bfast_archive as bfa  # noqa: E402

log = C.log
SEED = C.SEED
US = 1e-6


# ==========================================================================
# configuration
# ==========================================================================


@dataclass(frozen=True)
class Config:
    users: int = 100_000  # records workload rows
    models: int = 10_000  # User models in the Catalog
    column_rows: tuple = (1_000, 10_000, 100_000, 1_000_000)
    lazy_accesses: int = 20_000
    fast_repeats: int = 21  # samples of an op < SLOW_OP_SECONDS (bench_core's name)
    slow_repeats: int = 9  # samples of an op >= SLOW_OP_SECONDS


FULL = Config()
QUICK = Config(users=20_000, models=2_000, lazy_accesses=5_000, fast_repeats=7, slow_repeats=3)


# ==========================================================================
# the models
# ==========================================================================


class Role(enum.Enum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"
    GUEST = "guest"


class User(BaseModel):
    id: int
    name: str
    created: dt.datetime
    role: Role
    score: float | None = None


class Catalog(BaseModel):
    title: str
    users: list[User]


ROLES = tuple(Role)
CREATED_FROM = dt.datetime(2020, 1, 1)
NONE_SCORE_FRACTION = 0.1


def make_catalog(n: int) -> Catalog:
    """A Catalog of n validated User models; ids, names, scores from bench_core.make_users."""
    rng = random.Random(SEED + 2)
    users = [
        User(
            id=u["id"],
            name=u["name"],
            created=CREATED_FROM
            + dt.timedelta(seconds=rng.randrange(5 * 365 * 86_400), microseconds=rng.randrange(10**6)),
            role=rng.choice(ROLES),
            score=None if rng.random() < NONE_SCORE_FRACTION else u["score"],
        )
        for u in C.make_users(n, random.Random(SEED))
    ]
    return Catalog(title=f"catalog of {n:,} users", users=users)


# ==========================================================================
# results
# ==========================================================================

START = time.perf_counter()


@dataclass
class Results:
    rows: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, section: str, metric: str, peer: str, samples: list, unit: str = "s", **extra) -> None:
        self.rows.append(
            {"section": section, "metric": metric, "peer": peer, "unit": unit, "samples": samples,
             **U.summary(samples), **extra}
        )

    def stat(self, section: str, metric: str, peer: str, which: str = "median") -> float | None:
        """The median (or "min", "max") of one row; None if it was not measured."""
        for row in self.rows:
            if (row["section"], row["metric"], row["peer"]) == (section, metric, peer):
                return row[which]
        return None

    def error(self, section: str, step: str, message: str) -> None:
        self.errors.append({"section": section, "step": step, "error": message})
        log(f"  !! {section}/{step}: {message.strip().splitlines()[-1]}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        log(f"  note: {text}")


def measure_group(fns: dict, cfg: Config) -> tuple[dict, dict]:
    """bench_core.measure's method for several peers at once, their samples interleaved.

    Per peer, as measure() does: warm-up calls (bench_core._time_once) size its
    batch (>= MIN_BATCH_SECONDS of calls, or one call for ops >= SLOW_OP_SECONDS,
    which get slow_repeats samples instead of fast_repeats), gc.collect() before
    each sample, the result dropped outside the timing.  Unlike measure(), the
    samples are taken round-robin (peer A, B, C, A, B, C...), so that load from
    other processes on a shared machine falls on all peers of a comparison alike.
    Returns ({peer: (seconds per call of each sample, calls per sample)},
    {peer: traceback} for the peers whose warm-up raised; those are dropped).
    """
    plan, failed = {}, {}
    for name, fn in list(fns.items()):
        try:
            once = C._time_once(fn)
            if once < C.SLOW_OP_SECONDS:
                once = C._time_once(fn)
        except Exception:
            failed[name] = traceback.format_exc()
            continue
        if once >= C.SLOW_OP_SECONDS:
            plan[name] = (cfg.slow_repeats, 1)
        else:
            plan[name] = (cfg.fast_repeats, max(1, min(100_000, int(C.MIN_BATCH_SECONDS / max(once, 1e-9)))))
    fns = {name: fn for name, fn in fns.items() if name in plan}
    rounds = max((repeats for repeats, _ in plan.values()), default=0)
    samples = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            repeats, inner = plan[name]
            if r % max(1, rounds // repeats) or len(samples[name]) >= repeats:
                continue  # a slow peer samples every (rounds // repeats)-th round
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(inner):
                out = fn()
            elapsed = time.perf_counter() - t0
            del out
            samples[name].append(elapsed / inner)
    return {name: (samples[name], plan[name][1]) for name in fns}, failed


def timed(res: Results, section: str, metric: str, fns: dict, cfg: Config, gc_off: bool = False,
          per: int = 1) -> None:
    """Measure a group of peers ({peer: fn}) interleaved and record seconds per
    call (or per one of ``per`` operations inside a call). A peer that raises is
    recorded as an error and dropped from the group."""
    try:
        if gc_off:
            gc.disable()
        try:
            measured, failed = measure_group(fns, cfg)
        finally:
            gc.enable()
    except Exception:
        res.error(section, metric, traceback.format_exc())
        return
    for name, message in failed.items():
        res.error(section, f"{metric} / {name}", message)
    for name, (samples, inner) in measured.items():
        res.add(section, metric, name, [s / per for s in samples], inner=inner, per=per,
                gc="off" if gc_off else "on")


def checked(res: Results, section: str, step: str, fn: Callable[[], object]) -> bool:
    """Run a correctness check; a failure is recorded and skips the dependent timing."""
    try:
        fn()
        return True
    except Exception:
        res.error(section, step, traceback.format_exc())
        return False


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


# ==========================================================================
# section 1: records (bench_core's workload)
# ==========================================================================


def bench_records(cfg: Config, res: Results) -> None:
    sec = "records"
    log(f"{sec}: building {cfg.users:,} user dicts (bench_core.build_workload)")
    obj = C.build_workload("records", replace(C.FULL, users=cfg.users)).obj

    b = bfa.dumps(obj)
    p = pickle.dumps(obj, protocol=5)
    m = msgspec.msgpack.encode(obj)
    for peer, blob in (("bfa", b), ("pickle", p), ("msgspec", m)):
        res.add(sec, "size", peer, [len(blob)], unit="B")

    log(f"{sec}: dumps")
    timed(res, sec, "dumps", {
        "bfa.dumps": lambda: bfa.dumps(obj),
        "pickle.dumps": lambda: pickle.dumps(obj, protocol=5),
        "msgspec.msgpack.encode": lambda: msgspec.msgpack.encode(obj),
    }, cfg)

    def check_loads():
        for name, out in (("bfa.loads", bfa.loads(b)), ("pickle.loads", pickle.loads(p))):
            mismatch = C.find_mismatch(obj, out)
            expect(mismatch is None, f"{name} returned a different object: {mismatch}")

    log(f"{sec}: loads, gc on / gc off")
    if checked(res, sec, "loads round-trip", check_loads):
        for gc_off in (False, True):
            metric = "loads_gc_off" if gc_off else "loads"
            timed(res, sec, metric, {
                "bfa.loads": lambda: bfa.loads(b),
                "pickle.loads": lambda: pickle.loads(p),
                "msgspec.msgpack.decode": lambda: msgspec.msgpack.decode(m),
            }, cfg, gc_off=gc_off)
    del p, m
    gc.collect()

    users = obj["users"]
    for rows in cfg.column_rows:
        log(f"{sec}: column('score') at {rows:,} rows")
        peer = f"{rows:,} rows"
        try:
            if rows == len(users):
                blob = b
            else:
                table = (users * -(-rows // len(users)))[:rows]
                blob = bfa.dumps({"meta": obj["meta"], "users": table})
                del table
            arch = bfa.Archive.from_buffer(blob)
            try:
                col = arch["users"].column("score")
                expect(type(col) is np.ndarray and col.dtype == np.float64 and len(col) == rows,
                       f"column('score') is {type(col).__name__} {getattr(col, 'dtype', '')} of {len(col)}")
                expected = np.fromiter((u["score"] for u in users), np.float64, len(users))
                expect(np.array_equal(col[: len(users)], expected[:rows]), "column('score') values differ")
                del col, expected
                timed(res, sec, "column", {peer: lambda: arch["users"].column("score")}, cfg)
            finally:
                arch.close()
            del blob
        except Exception:
            res.error(sec, f"column at {rows:,} rows", traceback.format_exc())
        gc.collect()


# ==========================================================================
# section 2: pydantic models
# ==========================================================================


def bfast_py_encoder(catalog: Catalog, res: Results) -> Callable | None:
    """bfast-py's BFast().encode_packed, if it installs and encodes these models."""
    try:
        from b_fast import BFast
    except Exception as exc:
        res.note(f"bfast-py not importable ({type(exc).__name__}: {exc}); "
                 "`pip install bfast-py` to compare with its encode_packed")
        return None
    encoder = BFast()
    try:
        blob = encoder.encode_packed(catalog, compress=False)
        back = encoder.decode_packed(blob)
        expect(isinstance(back, dict) and len(back.get("users", ())) == len(catalog.users),
               f"decode_packed gave {type(back).__name__}")
        expect(back["users"][-1]["name"] == catalog.users[-1].name, "decode_packed: names differ")
    except Exception as exc:
        res.note(f"bfast-py {metadata.version('bfast-py')} cannot encode these models "
                 f"({type(exc).__name__}: {exc}); its rows are skipped")
        return None
    res.add("models", "size", "bfast-py encode_packed", [len(blob)], unit="B")
    return lambda: encoder.encode_packed(catalog, compress=False)


def bench_models(cfg: Config, res: Results) -> None:
    sec = "models"
    log(f"{sec}: building a Catalog of {cfg.models:,} User models")
    catalog = make_catalog(cfg.models)

    b = bfa.dumps(catalog)
    p_models = pickle.dumps(catalog, protocol=5)
    p_dicts = pickle.dumps(catalog.model_dump(), protocol=5)
    for peer, blob in (("bfa", b), ("pickle(model_dump)", p_dicts), ("pickle(models)", p_models)):
        res.add(sec, "size", peer, [len(blob)], unit="B")
    encode_packed = bfast_py_encoder(catalog, res)

    log(f"{sec}: dumps")
    dumps = {
        "bfa.dumps(catalog)": lambda: bfa.dumps(catalog),
        "pickle.dumps(catalog.model_dump())": lambda: pickle.dumps(catalog.model_dump(), protocol=5),
        "pickle.dumps(catalog)": lambda: pickle.dumps(catalog, protocol=5),
    }
    if encode_packed is not None:
        dumps["bfast-py encode_packed(catalog)"] = encode_packed
    timed(res, sec, "dumps", dumps, cfg)

    def check_loads():
        for trusted in (True, False):
            out = bfa.loads(b, model=Catalog, trusted=trusted)
            expect(type(out) is Catalog and out == catalog, f"bfa.loads(trusted={trusted}) differs")
            expect(type(out.users[0].role) is Role and type(out.users[0].created) is dt.datetime,
                   f"bfa.loads(trusted={trusted}): fields not typed")
        expect(pickle.loads(p_models) == catalog, "pickle.loads differs")
        expect(Catalog.model_validate(pickle.loads(p_dicts)) == catalog, "model_validate(pickle.loads) differs")

    log(f"{sec}: loads, gc on / gc off")
    if checked(res, sec, "loads round-trip", check_loads):
        for gc_off in (False, True):
            metric = "loads_gc_off" if gc_off else "loads"
            timed(res, sec, metric, {
                "bfa.loads(model=Catalog, trusted=True)": lambda: bfa.loads(b, model=Catalog, trusted=True),
                "bfa.loads(model=Catalog, trusted=False)": lambda: bfa.loads(b, model=Catalog, trusted=False),
                "pickle.loads(pickled catalog)": lambda: pickle.loads(p_models),
                "Catalog.model_validate(pickle.loads(dump))": lambda: Catalog.model_validate(pickle.loads(p_dicts)),
            }, cfg, gc_off=gc_off)
    del p_models, p_dicts

    log(f"{sec}: lazy users[i].name")
    rng = random.Random(SEED + 3)
    indices = [rng.randrange(cfg.models) for _ in range(cfg.lazy_accesses)]
    arch = bfa.Archive.from_buffer(b, model=Catalog)
    try:
        def check_lazy():
            for i in indices[:200]:
                view = arch.root.users[i]
                expect(view.name == catalog.users[i].name, f"users[{i}].name differs")
                expect(view.role is catalog.users[i].role, f"users[{i}].role differs")
                expect(view.created == catalog.users[i].created, f"users[{i}].created differs")

        def lazy_root():
            for i in indices:
                arch.root.users[i].name

        def lazy_held():
            users = arch.root.users
            for i in indices:
                users[i].name

        def in_memory():
            for i in indices:
                catalog.users[i].name

        if checked(res, sec, "lazy values", check_lazy):
            n = len(indices)
            timed(res, sec, "lazy", {
                "bfa arch.root.users[i].name": lazy_root,
                "bfa users[i].name (users view held)": lazy_held,
                "in-memory catalog.users[i].name": in_memory,
            }, cfg, per=n)

        def check_column():
            col = arch["users"].column("score")
            expect(isinstance(col, np.ma.MaskedArray), f"column('score') is {type(col).__name__}, not masked")
            expected = [u.score for u in catalog.users]
            expect(col.tolist() == expected, "column('score') values differ")

        if checked(res, sec, "column('score') masked", check_column):
            timed(res, sec, "column", {f"bfa column('score'), {cfg.models:,} rows, masked":
                                       lambda: arch["users"].column("score")}, cfg)
    finally:
        arch.close()


class Address(BaseModel):
    street: str
    city: str


class RUser(BaseModel):
    """Issue 12's User: the field types applications have."""

    id: int
    name: str
    created: dt.datetime
    role: Role
    score: Optional[float]
    uid: uuid.UUID
    price: decimal.Decimal
    kind: Literal["a", "b"]
    address: Address
    tags: list[str]


class Team(BaseModel):
    users: list[RUser]


def bench_realistic(cfg: Config, res: Results) -> None:
    """Issue 12's workload: Team(users: list[RUser]) of cfg.users models as
    applications write them (aware datetime, Enum, Optional[float], UUID,
    Decimal, Literal, a nested Address model, list[str]): checks, timings
    and the issue's target ratios (as notes, from this run's medians)."""
    sec = "realistic"
    n = cfg.users
    log(f"{sec}: building a Team of {n:,} models")
    rng = random.Random(SEED + 12)
    utc = dt.timezone.utc
    users = [RUser(id=i, name=f"user {i}",
                   created=dt.datetime(2020, 1, 1, tzinfo=utc) + dt.timedelta(seconds=rng.randrange(10**8)),
                   role=rng.choice(ROLES), score=None if rng.random() < NONE_SCORE_FRACTION else rng.random(),
                   uid=uuid.UUID(int=rng.getrandbits(128)), price=decimal.Decimal(rng.randrange(10**6)) / 100,
                   kind=rng.choice("ab"), address=Address(street=f"{i} Main St", city=rng.choice(("Oslo", "Lima"))),
                   tags=[rng.choice(("x", "y", "z")) for _ in range(rng.randrange(4))])
             for i in range(n)]
    team = Team(users=users)
    b = bfa.dumps(team)
    dicts = [u.model_dump() for u in users]
    p_dicts = pickle.dumps(dicts, protocol=5)
    p_models = pickle.dumps(users, protocol=5)
    res.add(sec, "size", "bfa", [len(b)], unit="B")

    def check():
        for trusted in (True, False):
            expect(bfa.loads(b, model=Team, trusted=trusted) == team, f"bfa.loads(trusted={trusted}) differs")
        view = bfa.Archive.from_buffer(b, model=Team).root.users[n // 2]
        expect(view.created == users[n // 2].created, "lazy users[i].created differs")

    if not checked(res, sec, "round-trip", check):
        return
    log(f"{sec}: dumps")
    timed(res, sec, "dumps", {
        "bfa.dumps(team)": lambda: bfa.dumps(team),
        "pickle.dumps([u.model_dump() for u in users])": lambda: pickle.dumps([u.model_dump() for u in users],
                                                                               protocol=5),
    }, cfg)
    log(f"{sec}: loads")
    timed(res, sec, "loads", {
        "bfa.loads(model=Team, trusted=True)": lambda: bfa.loads(b, model=Team, trusted=True),
        "bfa.loads(model=Team)": lambda: bfa.loads(b, model=Team),
        "pickle.loads(pickled instances)": lambda: pickle.loads(p_models),
        "Team.model_validate(pickle.loads(dicts))": lambda: Team.model_validate({"users": pickle.loads(p_dicts)}),
    }, cfg)
    log(f"{sec}: lazy users[i].created")
    indices = [rng.randrange(n) for _ in range(cfg.lazy_accesses)]
    arch = bfa.Archive.from_buffer(b, model=Team)
    try:
        def lazy():
            for i in indices:
                arch.root.users[i].created

        timed(res, sec, "lazy", {"bfa arch.root.users[i].created": lazy}, cfg, per=len(indices))
    finally:
        arch.close()
    ratios = (
        ("bfa.dumps(team) / pickle.dumps(model_dump dicts)", "dumps", "bfa.dumps(team)",
         "pickle.dumps([u.model_dump() for u in users])", 0.5),
        ("bfa.loads(trusted) / pickle.loads(instances)", "loads", "bfa.loads(model=Team, trusted=True)",
         "pickle.loads(pickled instances)", 0.5),
        ("bfa.loads(validated) / model_validate(pickle.loads(dicts))", "loads", "bfa.loads(model=Team)",
         "Team.model_validate(pickle.loads(dicts))", 1.0),
    )
    for label, metric, num, den, limit in ratios:
        a, d = res.stat(sec, metric, num), res.stat(sec, metric, den)
        if a is not None and d:
            res.note(f"issue 12 target {label} <= {limit}: {a / d:.2f} ({'met' if a / d <= limit else 'NOT met'})")
    lazy_us = res.stat(sec, "lazy", "bfa arch.root.users[i].created")
    if lazy_us is not None:
        res.note(f"issue 12 target lazy users[i].created < 10 us: {lazy_us / US:.1f} us "
                 f"({'met' if lazy_us < 10 * US else 'NOT met'})")


# ==========================================================================
# targets (issue 4), from this run's medians
# ==========================================================================


@dataclass(frozen=True)
class Target:
    label: str
    num: tuple  # (section, metric, peer)
    den: tuple | None  # None: the limit is absolute, in seconds
    limit: float
    strict: bool = False  # value < limit rather than value <= limit
    primary: bool = True  # False: a like-for-like variant, shown for information


def column_max(res: Results, cfg: Config, stat: str = "median") -> float | None:
    values = [res.stat("records", "column", f"{n:,} rows", stat) for n in cfg.column_rows]
    return None if None in values else max(values)


def targets(cfg: Config) -> tuple:
    lo, hi = f"{cfg.column_rows[0]:,} rows", f"{cfg.column_rows[-1]:,} rows"
    r, m = "records", "models"
    return (
        Target("records dump: bfa.dumps / pickle.dumps", (r, "dumps", "bfa.dumps"), (r, "dumps", "pickle.dumps"), 1.0),
        Target("records dump: bfa.dumps / msgspec encode", (r, "dumps", "bfa.dumps"),
               (r, "dumps", "msgspec.msgpack.encode"), 3.0),
        Target("records load: bfa.loads / pickle.loads (gc on)", (r, "loads", "bfa.loads"),
               (r, "loads", "pickle.loads"), 1.0),
        Target("  same, gc off for both", (r, "loads_gc_off", "bfa.loads"), (r, "loads_gc_off", "pickle.loads"),
               1.0, primary=False),
        Target(f"column('score'), slowest of {cfg.column_rows[0]:,}..{cfg.column_rows[-1]:,} rows",
               (r, "column", "*max*"), None, 100 * US, strict=True),
        Target(f"column('score') flat: {hi} / {lo}", (r, "column", hi), (r, "column", lo), 2.0),
        Target("models dump: bfa / (model_dump + pickle.dumps)", (m, "dumps", "bfa.dumps(catalog)"),
               (m, "dumps", "pickle.dumps(catalog.model_dump())"), 0.5),
        Target("models dump: bfa / bfast-py encode_packed", (m, "dumps", "bfa.dumps(catalog)"),
               (m, "dumps", "bfast-py encode_packed(catalog)"), 1.0, strict=True),
        Target("models load: bfa trusted / pickle.loads (gc on)",
               (m, "loads", "bfa.loads(model=Catalog, trusted=True)"), (m, "loads", "pickle.loads(pickled catalog)"),
               0.5),
        Target("  same, gc off for both", (m, "loads_gc_off", "bfa.loads(model=Catalog, trusted=True)"),
               (m, "loads_gc_off", "pickle.loads(pickled catalog)"), 0.5, primary=False),
        Target("lazy arch.root.users[i].name, per access", (m, "lazy", "bfa arch.root.users[i].name"), None,
               100 * US, strict=True),
    )


def target_value(target: Target, res: Results, cfg: Config, stat: str) -> float | None:
    value = column_max(res, cfg, stat) if target.num[2] == "*max*" else res.stat(*target.num, stat)
    if value is not None and target.den is not None:
        base = res.stat(*target.den, stat)
        value = value / base if base else None
    return value


def evaluate(target: Target, res: Results, cfg: Config) -> dict:
    """The verdict on medians; the same figure from the minimums is shown alongside
    (less sensitive to other processes' load), without a verdict."""
    value = target_value(target, res, cfg, "median")
    value_of_mins = target_value(target, res, cfg, "min")
    if value is None:
        verdict = "n/a"
    else:
        ok = value < target.limit if target.strict else value <= target.limit
        verdict = "PASS" if ok else "FAIL"
    return {**asdict(target), "value": value, "value_of_mins": value_of_mins, "verdict": verdict}


# ==========================================================================
# report
# ==========================================================================

METRIC_LABELS = {
    "size": "serialised size",
    "dumps": "serialise to bytes",
    "loads": "loads, gc on",
    "loads_gc_off": "loads, gc off for both",
    "column": 'arch["users"].column("score")',
    "lazy": "lazy read, per access",
}


def machine_info() -> dict:
    machine = C.machine_info()
    for dist in ("pydantic", "bfast-py"):
        try:
            machine["versions"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            machine["versions"][dist] = "not installed"
    return machine


def print_header(machine: dict, cfg: Config, mode: str) -> None:
    print(f"bfast_archive models benchmark ({mode} mode)")
    ram = U.fmt_bytes(machine["ram_bytes"])
    print(f"machine : {machine['cpu_count']} cores, {machine['cpu_model']}, {ram} RAM, {machine['platform']}")
    print(f"python  : {machine['python_impl']} {machine['python']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
    print(
        f"method  : bench_core.measure's, peers of a comparison interleaved round-robin; "
        f"gc enabled (thresholds {gc.get_threshold()}) unless 'gc off', gc.collect() before each sample; "
        f"{cfg.fast_repeats} repeats (>= {C.MIN_BATCH_SECONDS * 1e3:.0f} ms "
        f"batches) for fast ops, {cfg.slow_repeats} for ops >= {C.SLOW_OP_SECONDS} s; warm-up discarded; "
        "in memory, no file I/O; bfa.loads pauses gc itself (pickle.loads does not): 'gc off' is like-for-like"
    )
    print()


def fmt_value(value: float, unit: str) -> str:
    return U.fmt_bytes(value) if unit == "B" else U.fmt_seconds(value)


def print_section(section: str, title: str, res: Results) -> None:
    rows = [r for r in res.rows if r["section"] == section]
    order = list(METRIC_LABELS)
    rows.sort(key=lambda r: order.index(r["metric"]))  # stable: peers keep their run order
    print(f"== {section}: {title}")
    print(f"{'metric':<30} {'peer':<44} {'median':>10} {'min':>10} {'max':>10} {'n':>3} {'ratio':>8}")
    previous, ref = None, None
    for r in rows:
        first = r["metric"] != previous
        label = METRIC_LABELS[r["metric"]] if first else ""
        previous = r["metric"]
        if first:
            ref = r["median"]
        ratio = "" if r["metric"] == "column" or not ref else f"{r['median'] / ref:.2f}x"
        median = fmt_value(r["median"], r["unit"])
        low, high = ("", "") if r["n"] == 1 else (fmt_value(r["min"], r["unit"]), fmt_value(r["max"], r["unit"]))
        print(f"{label:<30} {r['peer']:<44} {median:>10} {low:>10} {high:>10} {r['n']:>3} {ratio:>8}")
    print("(ratio: median / the group's first row; for column rows see the targets)")
    print()


def print_targets(evaluated: list[dict]) -> None:
    print("== targets (issue 4; medians of this run)")
    print(f"{'check':<56} {'medians':>10} {'(mins)':>10} {'target':>10}  verdict")
    for t in evaluated:
        op = "<" if t["strict"] else "<="
        if t["den"] is None:
            shown = [("-" if v is None else U.fmt_seconds(v)) for v in (t["value"], t["value_of_mins"])]
            limit = f"{op} {U.fmt_seconds(t['limit'])}"
        else:
            shown = [("-" if v is None else f"{v:.3g}x") for v in (t["value"], t["value_of_mins"])]
            limit = f"{op} {t['limit']:.3g}x"
        verdict = t["verdict"] if t["primary"] else f"({t['verdict']}, info)"
        print(f"{t['label']:<56} {shown[0]:>10} {shown[1]:>10} {limit:>10}  {verdict}")
    primary = [t for t in evaluated if t["primary"]]
    passed = sum(t["verdict"] == "PASS" for t in primary)
    print(f"{passed} of {len(primary)} targets pass (verdicts on medians; '(mins)' is the same figure from "
          "the fastest samples, for reference)")
    print()


def gc_notes(res: Results) -> None:
    """How much of each decoder's gc-on time the collector took, from the medians."""
    for section, peer in (("records", "pickle.loads"), ("records", "bfa.loads"),
                          ("models", "pickle.loads(pickled catalog)"),
                          ("models", "bfa.loads(model=Catalog, trusted=True)")):
        on, off = res.stat(section, "loads", peer), res.stat(section, "loads_gc_off", peer)
        if on and off:
            delta = on - off
            res.notes.append(f"{section}: {peer}: gc on {U.fmt_seconds(on)}, gc off {U.fmt_seconds(off)}; "
                             f"difference {'-' if delta < 0 else ''}{U.fmt_seconds(abs(delta))} "
                             f"({delta / on:.0%} of gc on; negative = noise)")


def print_notes(res: Results) -> None:
    if res.notes:
        print("== notes")
        for text in res.notes:
            print(f"- {text}")
        print()
    if res.errors:
        print(f"== errors ({len(res.errors)})")
        for e in res.errors:
            print(f"-- {e['section']} / {e['step']}")
            print(e["error"].rstrip())
        print()


# ==========================================================================
# main
# ==========================================================================


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads and fewer repeats (< 30 s)")
    parser.add_argument(
        "--out", metavar="FILE.json", help="write machine, config, raw samples, medians and targets as JSON"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg, mode = (QUICK, "quick") if args.quick else (FULL, "full")
    machine = machine_info()
    print_header(machine, cfg, mode)
    res = Results()
    # how busy other processes kept the machine (benchmarks/_util.py's CpuLoad, where it has one)
    load = U.CpuLoad().start() if hasattr(U, "CpuLoad") else None

    for section, title, run in (
        ("records", f"bench_core records workload, {cfg.users:,} user dicts + meta", bench_records),
        ("models", f"Catalog of {cfg.models:,} pydantic User models "
                   f"(int, str, datetime, Enum, float | None with {NONE_SCORE_FRACTION:.0%} None)", bench_models),
        ("realistic", f"Team of {cfg.users:,} realistic pydantic models (issue 12)", bench_realistic),
    ):
        try:
            run(cfg, res)
        except Exception:
            res.error(section, "setup", traceback.format_exc())
        print_section(section, title, res)
        sys.stdout.flush()
        gc.collect()

    evaluated = [evaluate(t, res, cfg) for t in targets(cfg)]
    gc_notes(res)
    print_targets(evaluated)
    print_notes(res)
    machine_load = load.stop() if load is not None else None
    if load is not None:
        print(f"machine load during the run: {U.fmt_load(machine_load)}")
    elapsed = time.perf_counter() - START
    print(f"total time {elapsed:.0f} s")

    if args.out:
        report = {
            "mode": mode,
            "config": asdict(cfg),
            "machine": machine,
            "method": {
                "timing": "bench_core.measure conventions, peers of one comparison interleaved (measure_group)",
                "gc": "enabled, default thresholds, gc.collect() before each sample; "
                      "'gc off' metrics disable it around the whole measurement",
                "gc_threshold": gc.get_threshold(),
                "slow_op_seconds": C.SLOW_OP_SECONDS,
                "min_batch_seconds": C.MIN_BATCH_SECONDS,
                "ratio": "median / median of the first (bfa) row of the metric",
            },
            "results": res.rows,
            "targets": evaluated,
            "notes": res.notes,
            "errors": res.errors,
            "machine_load": machine_load,
            "elapsed_seconds": elapsed,
        }
        Path(args.out).write_text(json.dumps(report, indent=1))
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
