"""Models benchmark: record tables and pydantic models against pickle, msgspec and bfast-py, in memory.

Sections (seeded): records = bench_core's records workload (dumps, loads with gc on and off, column("score")
at 1k .. 1M rows); models = a Catalog of User models (int, str, naive datetime, Enum, float | None): dumps,
loads(model=, trusted=True / False), lazy users[i].name, the masked column("score"); realistic = a Team of
models with the field types applications use (aware datetime, Enum, Optional[float], UUID, Decimal, Literal,
a nested model, list[str]).  bfa.loads pauses the collector itself, pickle.loads does not: "gc off" rows
(collector disabled for both) are the like-for-like comparison.  Timing: benchmarks/harness.py's method, the
peers of one comparison sampled round-robin; targets on the medians, "(mins)" from the minimums (no verdict).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import gc
import pickle
import random
import sys
import uuid
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
from benchmarks import peers as P  # noqa: E402

SEED, US = H.SEED, H.US
SETTINGS = {  # name: (full, quick); users: records workload rows; models: User models in the Catalog
    "users": (100_000, 20_000), "models": (10_000, 2_000),
    "column_rows": ((1_000, 10_000, 100_000, 1_000_000), (1_000, 10_000, 100_000)),
    "lazy_accesses": (20_000, 5_000), "repeats": (21, 5), "slow_repeats": (9, 2),
}


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


class Address(BaseModel):
    street: str
    city: str


class RUser(BaseModel):
    """The realistic workload's User: the field types applications have."""

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


ROLES = tuple(Role)
NONE_SCORE_FRACTION = 0.1


def make_catalog(n: int) -> Catalog:
    """A Catalog of n validated User models; ids, names, scores from bench_core.make_users."""
    rng = random.Random(SEED + 2)
    return Catalog(title=f"catalog of {n:,} users", users=[
        User(id=u["id"], name=u["name"],
             created=dt.datetime(2020, 1, 1) + dt.timedelta(seconds=rng.randrange(5 * 365 * 86_400),
                                                            microseconds=rng.randrange(10**6)),
             role=rng.choice(ROLES), score=None if rng.random() < NONE_SCORE_FRACTION else u["score"])
        for u in C.make_users(n, random.Random(SEED))])


def make_team(n: int, rng: random.Random) -> Team:
    utc = dt.timezone.utc
    return Team(users=[
        RUser(id=i, name=f"user {i}", created=dt.datetime(2020, 1, 1, tzinfo=utc) + dt.timedelta(
              seconds=rng.randrange(10**8)), role=rng.choice(ROLES),
              score=None if rng.random() < NONE_SCORE_FRACTION else rng.random(),
              uid=uuid.UUID(int=rng.getrandbits(128)), price=decimal.Decimal(rng.randrange(10**6)) / 100,
              kind=rng.choice("ab"), address=Address(street=f"{i} Main St", city=rng.choice(("Oslo", "Lima"))),
              tags=[rng.choice(("x", "y", "z")) for _ in range(rng.randrange(4))])
        for i in range(n)])


def timed(res: H.Results, section: str, metric: str, fns: dict, cfg: H.Config, gc_off: bool = False,
          per: int = 1) -> None:
    """A group of peers ({peer: fn}) sampled round-robin: seconds per call (or per one of ``per`` operations
    in a call); with ``gc_off`` the collector is disabled around the whole measurement."""
    if gc_off:
        gc.disable()
    try:
        res.group(fns, cfg, section=section, metric=metric, per=per, gc="off" if gc_off else "on")
    finally:
        gc.enable()


def dumps_loads(res: H.Results, sec: str, cfg: H.Config, dumps: dict, check, loads: dict, gc_off: bool = True) -> None:
    """The dumps group, then (once ``check()`` passes) the loads group with gc on, and also off for both."""
    H.log(f"{sec}: dumps")
    timed(res, sec, "dumps", dumps, cfg)
    H.log(f"{sec}: loads" + ", gc on / gc off" * gc_off)
    if res.step(check, section=sec, step="loads round-trip"):
        for off in (False, True)[: 1 + gc_off]:
            timed(res, sec, "loads_gc_off" if off else "loads", loads, cfg, gc_off=off)


def sizes(res: H.Results, section: str, blobs: dict) -> None:
    for peer, blob in blobs.items():
        res.add([len(blob)], "B", section=section, metric="size", peer=peer)


def bench_records(cfg: H.Config, res: H.Results) -> None:
    sec = "records"
    H.log(f"{sec}: building {cfg.users:,} user dicts (bench_core.build_workload)")
    obj = C.build_workload("records", cfg).obj
    b, p, m = bfa.dumps(obj), pickle.dumps(obj, protocol=5), msgspec.msgpack.encode(obj)
    sizes(res, sec, {"bfa": b, "pickle": p, "msgspec": m})

    def check_loads():
        for name, out in (("bfa.loads", bfa.loads(b)), ("pickle.loads", pickle.loads(p))):
            mismatch = C.find_mismatch(obj, out)
            H.expect(mismatch is None, f"{name} returned a different object: {mismatch}")

    dumps_loads(res, sec, cfg, {"bfa.dumps": lambda: bfa.dumps(obj), "pickle.dumps": lambda: pickle.dumps(
        obj, protocol=5), "msgspec.msgpack.encode": lambda: msgspec.msgpack.encode(obj)}, check_loads, {
        "bfa.loads": lambda: bfa.loads(b), "pickle.loads": lambda: pickle.loads(p),
        "msgspec.msgpack.decode": lambda: msgspec.msgpack.decode(m)})
    p = m = None  # the blobs are not needed for the column rows
    gc.collect()
    users = obj["users"]
    expected = np.fromiter((u["score"] for u in users), np.float64, len(users))

    def column(rows: int) -> None:
        blob = b if rows == len(users) else bfa.dumps({"meta": obj["meta"],
                                                      "users": (users * -(-rows // len(users)))[:rows]})
        with bfa.Archive.from_buffer(blob) as arch:
            col = arch["users"].column("score")
            H.expect(type(col) is np.ndarray and col.dtype == np.float64 and len(col) == rows,
                     f"column('score') is {type(col).__name__} {getattr(col, 'dtype', '')} of {len(col)}")
            H.expect(np.array_equal(col[: len(users)], expected[:rows]), "column('score') values differ")
            del col
            timed(res, sec, "column", {f"{rows:,} rows": lambda: arch["users"].column("score")}, cfg)

    for rows in cfg.column_rows:
        H.log(f"{sec}: column('score') at {rows:,} rows")
        res.step(lambda: column(rows), section=sec, step=f"column at {rows:,} rows")
        gc.collect()


def bfast_py_encoder(catalog: Catalog, res: H.Results):
    """bfast-py's BFast().encode_packed, if it installs and encodes these models."""
    try:
        encoder = P.codec("bfast-py")  # BFast(), as bench_core's bfast-py peer
    except Exception as exc:
        return res.note(f"bfast-py not importable ({type(exc).__name__}: {exc}); "
                        "`pip install bfast-py` to compare with its encode_packed")
    try:
        blob = encoder.encode_packed(catalog, compress=False)
        back = encoder.decode_packed(blob)
        H.expect(isinstance(back, dict) and len(back.get("users", ())) == len(catalog.users),
                 f"decode_packed gave {type(back).__name__}")
        H.expect(back["users"][-1]["name"] == catalog.users[-1].name, "decode_packed: names differ")
    except Exception as exc:
        return res.note(f"bfast-py {metadata.version('bfast-py')} cannot encode these models "
                        f"({type(exc).__name__}: {exc}); its rows are skipped")
    sizes(res, "models", {"bfast-py encode_packed": blob})
    return lambda: encoder.encode_packed(catalog, compress=False)


def bench_models(cfg: H.Config, res: H.Results) -> None:
    sec = "models"
    H.log(f"{sec}: building a Catalog of {cfg.models:,} User models")
    catalog = make_catalog(cfg.models)
    b, p_models = bfa.dumps(catalog), pickle.dumps(catalog, protocol=5)
    p_dicts = pickle.dumps(catalog.model_dump(), protocol=5)
    sizes(res, sec, {"bfa": b, "pickle(model_dump)": p_dicts, "pickle(models)": p_models})
    encode_packed = bfast_py_encoder(catalog, res)

    def check_loads():
        for trusted in (True, False):
            out = bfa.loads(b, model=Catalog, trusted=trusted)
            H.expect(type(out) is Catalog and out == catalog, f"bfa.loads(trusted={trusted}) differs")
            H.expect(type(out.users[0].role) is Role and type(out.users[0].created) is dt.datetime,
                     f"bfa.loads(trusted={trusted}): fields not typed")
        H.expect(pickle.loads(p_models) == catalog, "pickle.loads differs")
        H.expect(Catalog.model_validate(pickle.loads(p_dicts)) == catalog, "model_validate(pickle.loads) differs")

    dumps_loads(res, sec, cfg, {
        "bfa.dumps(catalog)": lambda: bfa.dumps(catalog),
        "pickle.dumps(catalog.model_dump())": lambda: pickle.dumps(catalog.model_dump(), protocol=5),
        "pickle.dumps(catalog)": lambda: pickle.dumps(catalog, protocol=5),
        **({"bfast-py encode_packed(catalog)": encode_packed} if encode_packed else {})}, check_loads, {
        "bfa.loads(model=Catalog, trusted=True)": lambda: bfa.loads(b, model=Catalog, trusted=True),
        "bfa.loads(model=Catalog, trusted=False)": lambda: bfa.loads(b, model=Catalog, trusted=False),
        "pickle.loads(pickled catalog)": lambda: pickle.loads(p_models),
        "Catalog.model_validate(pickle.loads(dump))": lambda: Catalog.model_validate(pickle.loads(p_dicts))})
    p_models = p_dicts = None
    H.log(f"{sec}: lazy users[i].name")
    rng = random.Random(SEED + 3)
    indices = [rng.randrange(cfg.models) for _ in range(cfg.lazy_accesses)]
    with bfa.Archive.from_buffer(b, model=Catalog) as arch:
        def check_lazy():
            for i in indices[:200]:
                view, user = arch.root.users[i], catalog.users[i]
                H.expect((view.name, view.created) == (user.name, user.created) and view.role is user.role,
                         f"users[{i}] differs")

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

        if res.step(check_lazy, section=sec, step="lazy values"):
            timed(res, sec, "lazy", {"bfa arch.root.users[i].name": lazy_root, "bfa users[i].name (users view "
                                     "held)": lazy_held, "in-memory catalog.users[i].name": in_memory},
                  cfg, per=len(indices))

        def check_column():
            col = arch["users"].column("score")
            H.expect(isinstance(col, np.ma.MaskedArray), f"column('score') is {type(col).__name__}, not masked")
            H.expect(col.tolist() == [u.score for u in catalog.users], "column('score') values differ")

        if res.step(check_column, section=sec, step="column('score') masked"):
            timed(res, sec, "column", {f"bfa column('score'), {cfg.models:,} rows, masked":
                                       lambda: arch["users"].column("score")}, cfg)


def bench_realistic(cfg: H.Config, res: H.Results) -> None:
    sec, n, rng = "realistic", cfg.users, random.Random(SEED + 12)
    H.log(f"{sec}: building a Team of {n:,} models")
    team = make_team(n, rng)
    users = team.users
    b = bfa.dumps(team)
    p_dicts, p_models = pickle.dumps([u.model_dump() for u in users], protocol=5), pickle.dumps(users, protocol=5)
    sizes(res, sec, {"bfa": b})

    def check():
        for trusted in (True, False):
            H.expect(bfa.loads(b, model=Team, trusted=trusted) == team, f"bfa.loads(trusted={trusted}) differs")
        view = bfa.Archive.from_buffer(b, model=Team).root.users[n // 2]
        H.expect(view.created == users[n // 2].created, "lazy users[i].created differs")

    dumps_loads(res, sec, cfg, {"bfa.dumps(team)": lambda: bfa.dumps(team),
                                "pickle.dumps([u.model_dump() for u in users])":
                                    lambda: pickle.dumps([u.model_dump() for u in users], protocol=5)}, check, {
        "bfa.loads(model=Team, trusted=True)": lambda: bfa.loads(b, model=Team, trusted=True),
        "bfa.loads(model=Team)": lambda: bfa.loads(b, model=Team),
        "pickle.loads(pickled instances)": lambda: pickle.loads(p_models),
        "Team.model_validate(pickle.loads(dicts))": lambda: Team.model_validate({"users": pickle.loads(p_dicts)}),
    }, gc_off=False)
    H.log(f"{sec}: lazy users[i].created")
    indices = [rng.randrange(n) for _ in range(cfg.lazy_accesses)]
    with bfa.Archive.from_buffer(b, model=Team) as arch:
        def lazy():
            for i in indices:
                arch.root.users[i].created

        timed(res, sec, "lazy", {"bfa arch.root.users[i].created": lazy}, cfg, per=len(indices))


def targets(res: H.Results, cfg: H.Config) -> list:
    lo, hi = f"{cfg.column_rows[0]:,} rows", f"{cfg.column_rows[-1]:,} rows"

    def slowest(which):  # of the column('score') rows
        values = [res.stat(which, section="records", metric="column", peer=f"{n:,} rows") for n in cfg.column_rows]
        return None if None in values else max(values)

    r, m, x = "records", "models", "realistic"
    trusted, pickled = "bfa.loads(model=Catalog, trusted=True)", "pickle.loads(pickled catalog)"
    table = (  # label, numerator (section, metric, peer), denominator or None (seconds), limit, op, primary
        ("records dump: bfa.dumps / pickle.dumps", (r, "dumps", "bfa.dumps"), (r, "dumps", "pickle.dumps"), 1.0),
        ("records dump: bfa.dumps / msgspec encode", (r, "dumps", "bfa.dumps"),
         (r, "dumps", "msgspec.msgpack.encode"), 3.0),
        ("records load: bfa.loads / pickle.loads (gc on)", (r, "loads", "bfa.loads"), (r, "loads", "pickle.loads"),
         1.0),
        ("  same, gc off for both", (r, "loads_gc_off", "bfa.loads"), (r, "loads_gc_off", "pickle.loads"), 1.0, "<=",
         False),
        (f"column('score') flat: {hi} / {lo}", (r, "column", hi), (r, "column", lo), 2.0),
        ("models dump: bfa / (model_dump + pickle.dumps)", (m, "dumps", "bfa.dumps(catalog)"),
         (m, "dumps", "pickle.dumps(catalog.model_dump())"), 0.5),
        ("models dump: bfa / bfast-py encode_packed", (m, "dumps", "bfa.dumps(catalog)"),
         (m, "dumps", "bfast-py encode_packed(catalog)"), 1.0, "<"),
        ("models load: bfa trusted / pickle.loads (gc on)", (m, "loads", trusted), (m, "loads", pickled), 0.5),
        ("  same, gc off for both", (m, "loads_gc_off", trusted), (m, "loads_gc_off", pickled), 0.5, "<=", False),
        ("lazy arch.root.users[i].name, per access", (m, "lazy", "bfa arch.root.users[i].name"), None, 100 * US,
         "<"),
        ("realistic dump: bfa.dumps(team) / pickle.dumps(model_dump dicts)", (x, "dumps", "bfa.dumps(team)"),
         (x, "dumps", "pickle.dumps([u.model_dump() for u in users])"), 0.5),
        ("realistic load: bfa trusted / pickle.loads(instances)", (x, "loads", "bfa.loads(model=Team, trusted=True)"),
         (x, "loads", "pickle.loads(pickled instances)"), 0.5),
        ("realistic load: bfa validated / model_validate(pickle.loads(dicts))", (x, "loads", "bfa.loads(model=Team)"),
         (x, "loads", "Team.model_validate(pickle.loads(dicts))"), 1.0),
        ("realistic lazy arch.root.users[i].created, per access", (x, "lazy", "bfa arch.root.users[i].created"),
         None, 10 * US, "<"),
    )
    keys = ("section", "metric", "peer")
    out = [res.target(label, dict(zip(keys, num)), den and dict(zip(keys, den)), limit, *rest[:1], mins=True,
                      primary=rest[1] if len(rest) > 1 else True) for label, num, den, limit, *rest in table]
    out.insert(4, H.check(f"column('score'), slowest of {cfg.column_rows[0]:,}..{hi}", slowest("median"),
                          100 * US, "<", "s", value_of_mins=slowest("min")))
    return out


METRIC_LABELS = {"size": "serialised size", "dumps": "serialise to bytes", "loads": "loads, gc on",
                 "loads_gc_off": "loads, gc off for both", "column": 'arch["users"].column("score")',
                 "lazy": "lazy read, per access"}


def gc_notes(res: H.Results) -> None:
    """How much of each decoder's gc-on time the collector took, from the medians."""
    for section, peer in (("records", "pickle.loads"), ("records", "bfa.loads"), ("models", "pickle.loads(pickled "
                          "catalog)"), ("models", "bfa.loads(model=Catalog, trusted=True)")):
        on, off = (res.stat(section=section, metric=m, peer=peer) for m in ("loads", "loads_gc_off"))
        if on and off:
            res.notes.append(f"{section}: {peer}: gc on {H.fmt_seconds(on)}, gc off {H.fmt_seconds(off)}; difference "
                             f"{'-' if on < off else ''}{H.fmt_seconds(abs(on - off))} ({(on - off) / on:.0%} of gc "
                             "on; negative = noise)")


def run(cfg: H.Config, res: H.Results) -> dict:
    print("note    : bfa.loads pauses gc itself (pickle.loads does not): 'gc off' is like-for-like; in memory, "
          "no file I/O; peers of a comparison interleaved round-robin\n")
    for section, title, bench in (
        ("records", f"bench_core records workload, {cfg.users:,} user dicts + meta", bench_records),
        ("models", f"Catalog of {cfg.models:,} pydantic User models "
                   f"(int, str, datetime, Enum, float | None with {NONE_SCORE_FRACTION:.0%} None)", bench_models),
        ("realistic", f"Team of {cfg.users:,} realistic pydantic models", bench_realistic),
    ):
        res.step(lambda bench=bench: bench(cfg, res), section=section, step="setup")
        rows = sorted((r for r in res.rows if r["section"] == section), key=lambda r: list(METRIC_LABELS).index(
            r["metric"]))  # stable: peers keep their run order
        H.print_rows(f"== {section}: {title}", rows, lambda r: METRIC_LABELS[r["metric"]])
        gc.collect()
    res.print_targets("models", targets(res, cfg))
    gc_notes(res)
    return {}


if __name__ == "__main__":
    sys.exit(H.main(__doc__, SETTINGS, run))
