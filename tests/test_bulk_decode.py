"""Bulk decoding of slot runs (``_decode.mat_slots``, csrc/pydecode.c).

A copy-out decodes a SLOTS column (and any list of 64 or more slots) in one
C call: datetimes, UUIDs, Decimals, dates, str and numbers, and model nodes
of one class as a batch of instances. The promise: the same values, of the
same types, as the cell-by-cell path (``mat``), and for a damaged cell the
same error. Each test compares the two paths on one archive: the
cell-by-cell one is forced by replacing ``mat_slots`` with its definition.
"""
from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import bfast_archive as bfa
from bfast_archive import _decode as D
from bfast_archive.errors import ArchiveError

N = 80  # rows: at least _pytable.NATIVE_MIN, so the bulk path is taken
UTC = dt.timezone.utc
CEST = dt.timezone(dt.timedelta(hours=2), "CEST")
LONG_ZONE = dt.timezone(dt.timedelta(hours=-3, minutes=-30), "Atlantic/Somewhere-Long")


class Address(BaseModel):
    street: str
    city: str


class Row(BaseModel):
    id: int
    created: dt.datetime
    uid: uuid.UUID
    price: decimal.Decimal
    day: dt.date
    score: Optional[float]
    address: Address


class Team(BaseModel):
    users: list[Row]


def _created(i: int) -> dt.datetime:
    base = dt.datetime(2021, 3, 4, 5, 6, 7, 1000 + i)
    when = base.replace(tzinfo=LONG_ZONE if i == 41 else (UTC, CEST, None, UTC)[i % 4])
    return when.replace(fold=1) if i % 7 == 3 else when


def make_team() -> Team:
    return Team(users=[Row(
        id=i, created=_created(i), uid=uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128)),
        price=decimal.Decimal("98765.43") if i == 40 else decimal.Decimal(i) / 8,
        day=dt.date(2000, 1, 1) + dt.timedelta(days=i), score=None if i % 4 == 0 else i / 3,
        address=Address(street=f"{i} Unique Road number {i}", city="Oslo" if i % 2 else "Lima"))
        for i in range(N)])


TEAM = make_team()
DATA = bfa.dumps(TEAM)


def _one_by_one(s: Any, start: int, count: int, depth: int) -> list[Any]:
    return [D.mat(s, pos, depth) for pos in range(start, start + 16 * count, 16)]


@contextmanager
def cell_by_cell() -> Iterator[None]:
    """Reads in this block decode every slot run cell by cell."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(D, "mat_slots", _one_by_one)
        yield


def outcome(read: Any) -> tuple[Any, ...]:
    """What a read gives: its value (repr: types and zones included) or its error."""
    try:
        value = read()
    except Exception as exc:  # noqa: BLE001 (compared, not swallowed)
        return ("error", type(exc).__name__, str(exc))
    return ("value", repr(value))


READS = {
    "trusted": lambda b: bfa.loads(b, model=Team, trusted=True, verify=False),
    "validated": lambda b: bfa.loads(b, model=Team, verify=False),
    "plain": lambda b: bfa.loads(b, verify=False),
}


def both_paths(data: bytes, how: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    bulk = outcome(lambda: READS[how](data))
    with cell_by_cell():
        one = outcome(lambda: READS[how](data))
    return bulk, one


@pytest.mark.parametrize("how", sorted(READS))
def test_bulk_decode_gives_the_values_and_types_of_the_cell_by_cell_path(how):
    bulk, one = both_paths(DATA, how)
    assert bulk[0] == "value"
    assert bulk == one


def test_trusted_load_builds_nested_models_and_typed_cells():
    out = bfa.loads(DATA, model=Team, trusted=True)
    assert out == TEAM
    user = out.users[41]
    assert type(user.address) is Address and type(user.uid) is uuid.UUID
    assert user.created.tzinfo == LONG_ZONE and user.created.tzname() == LONG_ZONE.tzname(None)
    assert out.users[3].created.fold == 1 and out.users[6].created.tzinfo is None
    assert type(out.users[0].price) is decimal.Decimal and out.users[40].price == decimal.Decimal("98765.43")


def test_a_list_of_datetimes_is_decoded_in_bulk_with_its_zones():
    stamps = [_created(i) for i in range(N)]
    out = bfa.loads(bfa.dumps({"stamps": stamps}))["stamps"]
    assert out == stamps
    assert [(d.tzinfo, d.fold) for d in out] == [(d.tzinfo, d.fold) for d in stamps]


def _wall(when: dt.datetime) -> int:
    return (when.replace(tzinfo=None, fold=0) - dt.datetime(1, 1, 1)) // dt.timedelta(microseconds=1)


def _datetime_node(data: bytes, i: int) -> int:
    """Offset of the DATETIME node of row i's ``created``."""
    at = data.find(struct.pack("<QqQq", 3, _wall(_created(i)), 3, _created(i).fold))
    assert at > 0
    return at - 8


def _put(data: bytes, at: int, raw: bytes) -> bytes:
    return data[:at] + raw + data[at + len(raw):]


def _fold_two(data: bytes) -> bytes:
    return _put(data, _datetime_node(data, 37) + 32, struct.pack("<q", 2))


def _wall_negative(data: bytes) -> bytes:
    return _put(data, _datetime_node(data, 38) + 16, struct.pack("<q", -1))


def _decimal_not_canonical(data: bytes) -> bytes:
    return data.replace(b"98765.43", b"098765.4")


def _zone_name_not_utf8(data: bytes) -> bytes:
    return data.replace(b"Atlantic/", b"\xfftlantic/")


def _field_not_utf8(data: bytes) -> bytes:
    return data.replace(b"42 Unique Road number 42", b"42 Unique Road number \xff2")


def _shared_datetime_node(data: bytes) -> bytes:
    a, b = _datetime_node(data, 10), _datetime_node(data, 11)
    slot = data.find(struct.pack("<QQ", 17 | 4 << 8, b))
    assert slot > 0
    return _put(data, slot + 8, struct.pack("<Q", a))


CORRUPTIONS = [_fold_two, _wall_negative, _decimal_not_canonical, _zone_name_not_utf8,
               _field_not_utf8, _shared_datetime_node]


@pytest.mark.parametrize("how", sorted(READS))
@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_a_corrupt_cell_in_a_bulk_decoded_column_raises_the_cell_by_cell_error(corrupt, how):
    bulk, one = both_paths(corrupt(DATA), how)
    assert bulk[0] == "error" and bulk[1] == ArchiveError.__name__ or how == "validated"
    assert bulk == one


def test_a_node_shared_by_two_cells_is_refused_as_referenced_twice():
    with pytest.raises(ArchiveError, match="referenced twice"):
        bfa.loads(_shared_datetime_node(DATA), model=Team, trusted=True, verify=False)


WORDS = st.sampled_from([0, 1, 2, 3, 4, 8, 16, 17, 20, 21, 33, 0x411, 2**63 - 1, 2**64 - 1,
                         -1 % 2**64, 315537897599999999 + 1, 86400000000])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(64, len(DATA) - 8), WORDS, st.sampled_from(sorted(READS)))
def test_mutated_archives_read_the_same_in_bulk_and_cell_by_cell(at, word, how):
    data = _put(DATA, at - at % 8, struct.pack("<Q", word))
    bulk, one = both_paths(data, how)
    assert bulk == one


@pytest.mark.parametrize("compression", [None, "lz4"])
@pytest.mark.parametrize("trusted", [True, False])
def test_a_ranged_archive_fetches_what_the_bulk_path_reads(trusted, compression):
    """Over an image pre-filled with garbage, 512-byte blocks: a byte the
    bulk path read before fetching it would change a value."""
    import fsspec

    from bfast_archive._ranged import open_ranged

    url = f"memory://bulk-decode/team-{trusted}-{compression}.bfa"
    with fsspec.open(url, "wb") as f:
        f.write(bfa.dumps(TEAM, compression=compression))
    source = open_ranged(url, block=512, tail=512, poison=0xA5)
    with bfa.Archive._open_source(source, model=Team) as arch:
        assert arch.to_model(trusted=trusted) == TEAM
    with bfa.Archive._open_source(open_ranged(url, block=512, tail=512, poison=0xA5)) as arch:
        assert outcome(arch.to_python) == outcome(lambda: bfa.loads(DATA))


def test_the_bulk_path_is_taken_for_columns_and_model_batches(monkeypatch):
    from bfast_archive import _pytable

    calls = {"decode_slots": 0, "model_cells": 0}
    for name in calls:
        def counted(*args: Any, _fn: Any = getattr(_pytable, name), _name: str = name) -> Any:
            calls[_name] += 1
            return _fn(*args)
        monkeypatch.setattr(_pytable, name, counted)
    assert bfa.loads(DATA, model=Team, trusted=True) == TEAM
    assert calls["model_cells"] == 1 and calls["decode_slots"] >= 5
