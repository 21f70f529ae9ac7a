"""Models benchmark: issue 4's record tables and pydantic models against pickle, msgspec and bfast-py.

Run (from the repository root):

    pip install -e . -r benchmarks/requirements.txt bfast-py
    python benchmarks/bench_models.py                 # full run, 1-2 minutes on 2 cores
    python benchmarks/bench_models.py --quick         # smaller data, fewer repeats, < 30 s
    python benchmarks/bench_models.py --out res.json  # also write raw samples + medians as JSON

Tables go to stdout, progress to stderr.  Every figure is measured in the run that prints it; the target
verdicts at the end are computed from its medians.

Sections (deterministic, seeded):
  records  bench_core's records workload ({"meta": {...}, "users": [N dicts: id, name, email, score, active,
           tags]}, built by bench_core.build_workload): bfa.dumps vs pickle.dumps (protocol 5) and
           msgspec.msgpack.encode; bfa.loads vs pickle.loads (and msgspec decode, for reference), with the
           collector enabled for both, then disabled for both; arch["users"].column("score") on tables of 1k,
           10k, 100k and 1M rows (rows past N repeat the same user dicts).
  models   Catalog(title, users: list[User]) holding M User models (id: int, name: str, created: naive
           datetime, role: Enum, score: float | None, 10% None), ids/names/scores taken from
           bench_core.make_users: bfa.dumps(catalog) vs pickle.dumps(catalog.model_dump()),
           pickle.dumps(catalog) and bfast-py's BFast().encode_packed(catalog) (compress=False, its default;
           if bfast-py is missing or fails on these models, the output says so and its rows are absent);
           bfa.loads(b, model=Catalog, trusted=True / False) vs pickle.loads of the pickled catalog (and
           model_validate(pickle.loads(model_dump pickle)) for reference), gc enabled, then disabled for both;
           Archive.from_buffer(b, model=Catalog).root.users[i].name per access over scattered i (and with the
           users view held, and the in-memory models); .column("score") on the model archive (None present: a
           masked array).

Method: benchmarks/harness.py's, the peers of one comparison sampled round-robin (measure_group), so that load
from other processes on this shared machine falls on all of them alike.  Everything is in memory (bytes), no
file I/O.  "gc off" rows disable the collector around the whole measurement for both peers.  Note: bfa.loads
pauses the collector itself while it builds the result (bfast_archive._limits.gc_paused), pickle.loads does
not, so the "gc off" rows are the like-for-like comparison of the two decoders.

"ratio" in the tables is the row's median over the first row of its group (bfa).  Targets (issue 4) are
checked on medians; "in microseconds" is taken as "< 100 µs", and "regardless of row count" as "1M-row median
<= 2x the 1k-row median".  The targets table also shows each figure computed from the minimums ("(mins)", no
verdict): on a busy machine it is the less disturbed estimate.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import gc
import pickle
import random
import sys
import traceback
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Literal, Optional

import msgspec
import numpy as np
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bfast_archive as bfa  # noqa: E402
from benchmarks import bench_core as C  # noqa: E402  (the records workload, make_users, find_mismatch)
from benchmarks import harness as H  # noqa: E402

SEED, US = H.SEED, H.US
SETTINGS = {  # name: (full, quick); users: records workload rows; models: User models in the Catalog
    "users": (100_000, 20_000), "models": (10_000, 2_000), "column_rows": ((1_000, 10_000, 100_000, 1_000_000),) * 2,
    "lazy_accesses": (20_000, 5_000), "repeats": (21, 7), "slow_repeats": (9, 3),
}


# --- the models -----------------------------------------------------------------------------------


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


def timed(res: H.Results, section: str, metric: str, fns: dict, cfg: H.Config, gc_off: bool = False,
          per: int = 1) -> None:
    """Measure a group of peers ({peer: fn}) interleaved and record seconds per call (or per one of ``per``
    operations inside a call). A peer that raises is recorded as an error and dropped from the group."""
    try:
        if gc_off:
            gc.disable()
        try:
            measured = H.measure_group(fns, cfg, on_error=lambda name, message: res.error(
                message, section=section, step=f"{metric} / {name}"))
        finally:
            gc.enable()
    except Exception:
        res.error(traceback.format_exc(), section=section, step=metric)
        return
    for name, samples in measured.items():
        res.add([s / per for s in samples], section=section, metric=metric, peer=name, inner=samples.inner, per=per,
                gc="off" if gc_off else "on")


def checked(res: H.Results, section: str, step: str, fn: Callable[[], object]) -> bool:
    """Run a correctness check; a failure is recorded and skips the dependent timing."""
    return res.step(fn, section=section, step=step)


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


# --- section 1: records (bench_core's workload) ---------------------------------------------------


def bench_records(cfg: H.Config, res: H.Results) -> None:
    sec = "records"
    H.log(f"{sec}: building {cfg.users:,} user dicts (bench_core.build_workload)")
    obj = C.build_workload("records", cfg).obj

    b = bfa.dumps(obj)
    p = pickle.dumps(obj, protocol=5)
    m = msgspec.msgpack.encode(obj)
    for peer, blob in (("bfa", b), ("pickle", p), ("msgspec", m)):
        res.add([len(blob)], "B", section=sec, metric="size", peer=peer)

    H.log(f"{sec}: dumps")
    timed(res, sec, "dumps", {
        "bfa.dumps": lambda: bfa.dumps(obj),
        "pickle.dumps": lambda: pickle.dumps(obj, protocol=5),
        "msgspec.msgpack.encode": lambda: msgspec.msgpack.encode(obj),
    }, cfg)

    def check_loads():
        for name, out in (("bfa.loads", bfa.loads(b)), ("pickle.loads", pickle.loads(p))):
            mismatch = C.find_mismatch(obj, out)
            expect(mismatch is None, f"{name} returned a different object: {mismatch}")

    H.log(f"{sec}: loads, gc on / gc off")
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
        H.log(f"{sec}: column('score') at {rows:,} rows")
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
            res.error(traceback.format_exc(), section=sec, step=f"column at {rows:,} rows")
        gc.collect()


# --- section 2: pydantic models -------------------------------------------------------------------


def bfast_py_encoder(catalog: Catalog, res: H.Results) -> Callable | None:
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
    res.add([len(blob)], "B", section="models", metric="size", peer="bfast-py encode_packed")
    return lambda: encoder.encode_packed(catalog, compress=False)


def bench_models(cfg: H.Config, res: H.Results) -> None:
    sec = "models"
    H.log(f"{sec}: building a Catalog of {cfg.models:,} User models")
    catalog = make_catalog(cfg.models)

    b = bfa.dumps(catalog)
    p_models = pickle.dumps(catalog, protocol=5)
    p_dicts = pickle.dumps(catalog.model_dump(), protocol=5)
    for peer, blob in (("bfa", b), ("pickle(model_dump)", p_dicts), ("pickle(models)", p_models)):
        res.add([len(blob)], "B", section=sec, metric="size", peer=peer)
    encode_packed = bfast_py_encoder(catalog, res)

    H.log(f"{sec}: dumps")
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

    H.log(f"{sec}: loads, gc on / gc off")
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

    H.log(f"{sec}: lazy users[i].name")
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


def bench_realistic(cfg: H.Config, res: H.Results) -> None:
    """Issue 12's workload: Team(users: list[RUser]) of cfg.users models as
    applications write them (aware datetime, Enum, Optional[float], UUID,
    Decimal, Literal, a nested Address model, list[str]): checks, timings
    its targets are in ``targets``."""
    sec = "realistic"
    n = cfg.users
    H.log(f"{sec}: building a Team of {n:,} models")
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
    res.add([len(b)], "B", section=sec, metric="size", peer="bfa")

    def check():
        for trusted in (True, False):
            expect(bfa.loads(b, model=Team, trusted=trusted) == team, f"bfa.loads(trusted={trusted}) differs")
        view = bfa.Archive.from_buffer(b, model=Team).root.users[n // 2]
        expect(view.created == users[n // 2].created, "lazy users[i].created differs")

    if not checked(res, sec, "round-trip", check):
        return
    H.log(f"{sec}: dumps")
    timed(res, sec, "dumps", {
        "bfa.dumps(team)": lambda: bfa.dumps(team),
        "pickle.dumps([u.model_dump() for u in users])": lambda: pickle.dumps([u.model_dump() for u in users],
                                                                               protocol=5),
    }, cfg)
    H.log(f"{sec}: loads")
    timed(res, sec, "loads", {
        "bfa.loads(model=Team, trusted=True)": lambda: bfa.loads(b, model=Team, trusted=True),
        "bfa.loads(model=Team)": lambda: bfa.loads(b, model=Team),
        "pickle.loads(pickled instances)": lambda: pickle.loads(p_models),
        "Team.model_validate(pickle.loads(dicts))": lambda: Team.model_validate({"users": pickle.loads(p_dicts)}),
    }, cfg)
    H.log(f"{sec}: lazy users[i].created")
    indices = [rng.randrange(n) for _ in range(cfg.lazy_accesses)]
    arch = bfa.Archive.from_buffer(b, model=Team)
    try:
        def lazy():
            for i in indices:
                arch.root.users[i].created

        timed(res, sec, "lazy", {"bfa arch.root.users[i].created": lazy}, cfg, per=len(indices))
    finally:
        arch.close()


# --- targets (issue 4), from this run's medians ---------------------------------------------------


def targets(res: H.Results, cfg: H.Config) -> list:
    lo, hi = f"{cfg.column_rows[0]:,} rows", f"{cfg.column_rows[-1]:,} rows"

    def figure(num, den, which):
        if num[2] == "*max*":  # the slowest of the column rows
            values = [res.stat(which, section="records", metric="column", peer=f"{n:,} rows") for n in cfg.column_rows]
            return None if None in values else max(values)
        keys = ("section", "metric", "peer")
        num = dict(zip(keys, num, strict=True))
        return res.stat(which, **num) if den is None else res.ratio(num, dict(zip(keys, den, strict=True)), which)

    def target(label, num, den, limit, op="<=", primary=True):
        return H.check(label, figure(num, den, "median"), limit, op, "x" if den else "s", primary=primary,
                       value_of_mins=figure(num, den, "min"))

    r, m, x = "records", "models", "realistic"
    trusted, pickled = "bfa.loads(model=Catalog, trusted=True)", "pickle.loads(pickled catalog)"
    return [
        target("records dump: bfa.dumps / pickle.dumps", (r, "dumps", "bfa.dumps"), (r, "dumps", "pickle.dumps"), 1.0),
        target("records dump: bfa.dumps / msgspec encode", (r, "dumps", "bfa.dumps"),
               (r, "dumps", "msgspec.msgpack.encode"), 3.0),
        target("records load: bfa.loads / pickle.loads (gc on)", (r, "loads", "bfa.loads"),
               (r, "loads", "pickle.loads"), 1.0),
        target("  same, gc off for both", (r, "loads_gc_off", "bfa.loads"), (r, "loads_gc_off", "pickle.loads"),
               1.0, primary=False),
        target(f"column('score'), slowest of {cfg.column_rows[0]:,}..{cfg.column_rows[-1]:,} rows",
               (r, "column", "*max*"), None, 100 * US, "<"),
        target(f"column('score') flat: {hi} / {lo}", (r, "column", hi), (r, "column", lo), 2.0),
        target("models dump: bfa / (model_dump + pickle.dumps)", (m, "dumps", "bfa.dumps(catalog)"),
               (m, "dumps", "pickle.dumps(catalog.model_dump())"), 0.5),
        target("models dump: bfa / bfast-py encode_packed", (m, "dumps", "bfa.dumps(catalog)"),
               (m, "dumps", "bfast-py encode_packed(catalog)"), 1.0, "<"),
        target("models load: bfa trusted / pickle.loads (gc on)", (m, "loads", trusted), (m, "loads", pickled), 0.5),
        target("  same, gc off for both", (m, "loads_gc_off", trusted), (m, "loads_gc_off", pickled), 0.5,
               primary=False),
        target("lazy arch.root.users[i].name, per access", (m, "lazy", "bfa arch.root.users[i].name"), None,
               100 * US, "<"),
        target("realistic dump: bfa.dumps(team) / pickle.dumps(model_dump dicts)",
               (x, "dumps", "bfa.dumps(team)"), (x, "dumps", "pickle.dumps([u.model_dump() for u in users])"),
               0.5),
        target("realistic load: bfa trusted / pickle.loads(instances)",
               (x, "loads", "bfa.loads(model=Team, trusted=True)"), (x, "loads", "pickle.loads(pickled instances)"),
               0.5),
        target("realistic load: bfa validated / model_validate(pickle.loads(dicts))",
               (x, "loads", "bfa.loads(model=Team)"), (x, "loads", "Team.model_validate(pickle.loads(dicts))"), 1.0),
        target("realistic lazy arch.root.users[i].created, per access",
               (x, "lazy", "bfa arch.root.users[i].created"), None, 10 * US, "<"),
    ]


# --- report ---------------------------------------------------------------------------------------

METRIC_LABELS = {"size": "serialised size", "dumps": "serialise to bytes", "loads": "loads, gc on",
                 "loads_gc_off": "loads, gc off for both", "column": 'arch["users"].column("score")',
                 "lazy": "lazy read, per access"}


def gc_notes(res: H.Results) -> None:
    """How much of each decoder's gc-on time the collector took, from the medians."""
    for section, peer in (("records", "pickle.loads"), ("records", "bfa.loads"),
                          ("models", "pickle.loads(pickled catalog)"),
                          ("models", "bfa.loads(model=Catalog, trusted=True)")):
        on = res.stat(section=section, metric="loads", peer=peer)
        off = res.stat(section=section, metric="loads_gc_off", peer=peer)
        if on and off:
            delta = on - off
            res.notes.append(f"{section}: {peer}: gc on {H.fmt_seconds(on)}, gc off {H.fmt_seconds(off)}; "
                             f"difference {'-' if delta < 0 else ''}{H.fmt_seconds(abs(delta))} "
                             f"({delta / on:.0%} of gc on; negative = noise)")


def run(cfg: H.Config) -> dict:
    print("note    : bfa.loads pauses gc itself (pickle.loads does not): 'gc off' is like-for-like; in memory, "
          "no file I/O; peers of a comparison interleaved round-robin\n")
    res = H.Results()
    for section, title, bench in (
        ("records", f"bench_core records workload, {cfg.users:,} user dicts + meta", bench_records),
        ("models", f"Catalog of {cfg.models:,} pydantic User models "
                   f"(int, str, datetime, Enum, float | None with {NONE_SCORE_FRACTION:.0%} None)", bench_models),
        ("realistic", f"Team of {cfg.users:,} realistic pydantic models (issue 12)", bench_realistic),
    ):
        res.step(lambda bench=bench: bench(cfg, res), section=section, step="setup")
        rows = sorted((r for r in res.rows if r["section"] == section), key=lambda r: list(METRIC_LABELS).index(
            r["metric"]))  # stable: peers keep their run order
        H.print_rows(f"== {section}: {title}", rows, lambda r: METRIC_LABELS[r["metric"]])
        sys.stdout.flush()
        gc.collect()
    evaluated = targets(res, cfg)
    gc_notes(res)
    H.print_targets("models", evaluated)
    if res.notes:
        print("== notes\n" + "".join(f"- {text}\n" for text in res.notes))
    for e in res.errors:
        print(f"-- error: {e['section']} / {e['step']}\n{e['error'].rstrip()}")
    return {"results": res.rows, "targets": evaluated, "notes": res.notes, "errors": res.errors}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run))
