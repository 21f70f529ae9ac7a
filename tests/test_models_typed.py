"""Pydantic models (docs/CONCEPTS.md, "Models"): dumped anywhere, read back
typed and lazily, rebuilt validated or trusted, with schema evolution and
record tables."""
import datetime as dt
import decimal
import enum
import subprocess
import sys
import uuid
from typing import Literal, Optional

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

import bfast_archive as bfa


class Role(enum.Enum):
    ADMIN = "admin"
    USER = "user"


class User(BaseModel):
    id: int
    name: str
    created: dt.datetime
    role: Role
    score: Optional[float] = None


class Catalog(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    title: str
    users: list[User]
    emb: np.ndarray


class Extra(BaseModel):
    key: uuid.UUID
    price: decimal.Decimal
    kind: Literal["a", "b"]
    owner: User
    by_name: dict[str, User]
    tags: list[str]


def _users(n):
    return [User(id=i, name=f"user-{i}", created=dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i),
                 role=Role.ADMIN if i % 7 == 0 else Role.USER,
                 score=None if i % 5 == 0 else i / 4) for i in range(n)]


@pytest.fixture
def catalog():
    return Catalog(title="cat", users=_users(500), emb=np.arange(12, dtype=np.float32).reshape(3, 4))


def test_typed_lazy_views(tmp_path, catalog):
    path = tmp_path / "cat.bfa"
    bfa.dump(catalog, path)
    with bfa.Archive.open(path, model=Catalog) as arch:
        u = arch.root.users[3]
        assert isinstance(u, bfa.ArchivedModel)
        assert u.name == "user-3" and type(u.name) is str
        assert u.created == dt.datetime(2024, 1, 1, 0, 3) and isinstance(u.created, dt.datetime)
        assert u.role is Role.USER and arch.root.users[7].role is Role.ADMIN
        assert u.score == 0.75 and arch.root.users[5].score is None
        assert u["name"] == "user-3" and arch["users"][3]["name"] == "user-3"
        assert u.to_model() == catalog.users[3]
        assert len(arch.root.users) == 500 and arch.root.title == "cat"
        assert np.array_equal(arch.root.emb, catalog.emb)
        with pytest.raises(AttributeError):
            u.nope


def test_load_with_model_validated_and_trusted(tmp_path, catalog):
    path = tmp_path / "cat.bfa"
    bfa.dump(catalog, path)
    for trusted in (False, True):
        back = bfa.load(path, model=Catalog, trusted=trusted)
        assert isinstance(back, Catalog) and back.users == catalog.users
        assert type(back.users[7].role) is Role and np.array_equal(back.emb, catalog.emb)
    plain = bfa.load(path)
    assert type(plain) is dict and plain["users"][3] == {
        "id": 3, "name": "user-3", "created": dt.datetime(2024, 1, 1, 0, 3), "role": "user",
        "score": 0.75}


def test_schema_is_stored_once(catalog):
    from bfast_archive.models import schema_of

    raw = bfa.dumps(catalog)
    assert raw.count(schema_of(User)["fingerprint"].encode()) == 1
    assert raw.count(b"user-499") == 1


def test_record_table_column_masked_views(catalog):
    raw = bfa.dumps(catalog)
    arch = bfa.Archive.from_buffer(raw)
    col = arch["users"].column("score")
    assert isinstance(col, np.ma.MaskedArray)
    assert col.mask[0] and col.mask[5] and not col.mask[1] and col[1] == 0.25
    buf = np.frombuffer(raw, np.uint8)
    assert np.shares_memory(col.data, buf) and np.shares_memory(col.mask, buf)
    ids = arch["users"].column("id")
    assert np.array_equal(ids, np.arange(500)) and np.shares_memory(ids, buf)


def test_nested_models_and_other_field_types():
    owner = _users(2)[1]
    value = Extra(key=uuid.UUID(int=7), price=decimal.Decimal("9.99"), kind="b", owner=owner,
                  by_name={"x": owner}, tags=["p", "q"])
    raw = bfa.dumps({"extra": value, "also": [value, value]})
    back = bfa.loads(raw)
    assert back["extra"]["owner"]["name"] == "user-1" and back["extra"]["price"] == value.price
    arch = bfa.Archive.from_buffer(raw, model=None)
    typed = bfa.Archive.from_buffer(bfa.dumps(value), model=Extra).root
    assert typed.key == value.key and typed.price == value.price and typed.kind == "b"
    assert typed.owner.role is Role.USER and typed.by_name == {"x": owner}
    assert typed.tags == ["p", "q"]
    assert arch["also"][1]["kind"] == "b"
    assert bfa.loads(bfa.dumps(value), model=Extra) == value
    assert bfa.loads(bfa.dumps(value), model=Extra, trusted=True) == value


def test_enum_outside_a_model_is_unsupported():
    with pytest.raises(bfa.UnsupportedTypeError, match="enum"):
        bfa.dumps({"r": Role.ADMIN})


# -- schema evolution ----------------------------------------------------------------

class UserV2Added(BaseModel):
    id: int
    name: str
    created: dt.datetime
    role: Role
    score: Optional[float] = None
    team: str = "none"


class UserV2Dropped(BaseModel):
    id: int
    name: str


class UserV2Reordered(BaseModel):
    score: Optional[float] = None
    name: str
    id: int
    role: Role
    created: dt.datetime


class UserV2Changed(BaseModel):
    id: int
    name: str
    created: dt.datetime
    role: Role
    score: dt.date


@pytest.mark.parametrize("trusted", [False, True])
def test_newer_model_added_dropped_reordered_fields(trusted):
    users = _users(20)
    raw = bfa.dumps(users)
    added = bfa.loads(raw, model=UserV2Added, trusted=trusted)
    assert added[3].team == "none" and added[3].name == "user-3"
    dropped = bfa.loads(raw, model=UserV2Dropped, trusted=trusted)
    assert dropped[4] == UserV2Dropped(id=4, name="user-4")
    reordered = bfa.loads(raw, model=UserV2Reordered, trusted=trusted)
    assert reordered[6].model_dump() == {k: users[6].model_dump()[k] for k in
                                         UserV2Reordered.model_fields}
    lazy = bfa.Archive.from_buffer(raw, model=UserV2Added).root
    assert lazy[3].team == "none" and lazy[3].role is Role.USER


def test_incompatible_type_change_names_field_and_both_types():
    raw = bfa.dumps(_users(20))
    with pytest.raises(bfa.SchemaMismatchError) as info:
        bfa.loads(raw, model=UserV2Changed)
    msg = str(info.value)
    assert "score" in msg and "Optional[float]" in msg and "datetime.date" in msg
    assert isinstance(info.value, bfa.ArchiveError)


# -- lists of dicts that are almost tables ------------------------------------------------

@pytest.mark.parametrize("variant", ["extra-key", "missing-key", "key-order", "not-a-dict"])
def test_lists_whose_keys_differ_anywhere_round_trip_exactly(variant):
    rows = [{"id": i, "name": f"n{i}", "v": i * 0.5} for i in range(5000)]
    k = 3217
    if variant == "extra-key":
        rows[k] = {**rows[k], "extra": 1}
    elif variant == "missing-key":
        rows[k] = {"id": k, "name": "x"}
    elif variant == "key-order":
        rows[k] = {"name": rows[k]["name"], "id": k, "v": rows[k]["v"]}
    else:
        rows[k] = [1, 2]
    back = bfa.loads(bfa.dumps(rows))
    assert back == rows
    assert [list(r) for r in back if isinstance(r, dict)] == \
        [list(r) for r in rows if isinstance(r, dict)]
    assert bfa.Archive.from_buffer(bfa.dumps(rows)).root[k] == rows[k]


def test_import_does_not_load_pydantic_or_lz4():
    code = ("import sys, bfast_archive; "
            "print(sorted(m for m in ('numpy', 'pydantic', 'lz4', 'pyarrow', 'pandas', 'polars', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
