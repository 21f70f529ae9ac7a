"""Record tables built block by block (writer._ColumnBuilder) write exactly
the bytes of the same table converted column by column in one block, for
every column kind, with the block boundaries anywhere; and the models built
from tables in a trusted load are the models pydantic builds."""
import datetime as dt
import sys

import numpy  # noqa: F401  (loaded: the writer's NumPy path for datetimes is taken)
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

import bfast_archive as bfa
from bfast_archive import writer as W
from tests.support.tables import CASES, Holder, Row, model_rows, tables


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int
    b: str


def _both(value, monkeypatch, block):
    """(bytes with tables fed in blocks of ``block`` rows, bytes with each
    table's columns decided and converted whole, in one block)."""
    with monkeypatch.context() as m:
        m.setattr(W, "_BLOCK", block)
        fast = bfa.dumps(value)
    with monkeypatch.context() as m:
        m.setattr(W, "_BLOCK", 1 << 40)
        whole = bfa.dumps(value)
    return fast, whole


@pytest.mark.parametrize("block", [1, 3, 7, 2048])
@pytest.mark.parametrize("name", sorted(CASES))
def test_blocks_write_the_per_column_bytes(name, block, monkeypatch):
    value = {"rows": CASES[name]}
    fast, general = _both(value, monkeypatch, block)
    assert fast == general
    assert bfa.loads(fast) == value


@pytest.mark.parametrize("name", sorted(CASES))
def test_cells_read_back_with_their_exact_types(name, monkeypatch):
    """``==`` takes 1 for True and 1.0 for 1: compare each cell's type too,
    through load and through lazy row access (blocks of 7 rows)."""
    rows = CASES[name]
    with monkeypatch.context() as m:
        m.setattr(W, "_BLOCK", 7)
        data = bfa.dumps({"rows": rows})
    loaded = bfa.loads(data)["rows"]
    with bfa.Archive.from_buffer(data) as arch:
        lazy = arch["rows"]
        for i, want in enumerate(rows):
            for k, v in want.items():
                assert type(loaded[i][k]) is type(v) and loaded[i][k] == v, (i, k)
                if not isinstance(v, (dict, list, tuple)):
                    got = lazy[i][k]
                    assert type(got) is type(v) and got == v, (i, k)


@pytest.mark.parametrize("block", [1, 4, 2048])
@pytest.mark.parametrize("name", ["datetimes", "datetimes with None", "extreme datetimes",
                                  "str, non-ASCII late", "str with None", "str lists", "mixed"])
def test_without_numpy_loaded(name, block, monkeypatch):
    """Without NumPy imported the writer converts datetimes one by one and
    sums string lengths with accumulate (it does not import NumPy for
    them): the same bytes."""
    value = {"rows": CASES[name]}
    with monkeypatch.context() as m:
        m.setattr(W, "_BLOCK", block)
        with_numpy = bfa.dumps(value)
        m.delitem(sys.modules, "numpy")
        without = bfa.dumps(value)
        assert "numpy" not in sys.modules
    assert with_numpy == without
    assert bfa.loads(without) == value


@pytest.mark.parametrize("block", [1, 5, 2048])
def test_model_tables_write_the_per_column_bytes(block, monkeypatch):
    value = {"rows": model_rows(60, nothing=True)}
    fast, general = _both(value, monkeypatch, block)
    assert fast == general


@pytest.mark.parametrize("trusted", [True, False])
def test_model_table_round_trip(trusted, monkeypatch):
    monkeypatch.setattr(W, "_BLOCK", 7)
    holder = Holder(rows=model_rows(60))
    back = bfa.loads(bfa.dumps(holder), model=Holder, trusted=trusted)
    assert back == holder
    for got, want in zip(back.rows, holder.rows):
        assert type(got) is Row and got == want
        assert got.model_dump() == want.model_dump()
        assert got.model_fields_set == want.model_fields_set
        assert got.__pydantic_extra__ == want.__pydantic_extra__
        assert got.__pydantic_private__ == want.__pydantic_private__
        assert type(got.color) is type(want.color)


def test_model_dicts_in_another_order_still_round_trip():
    """Instances whose __dict__ lists the fields in another order (set by
    hand) are still one table: a model's fields are matched by name."""
    rows = model_rows(40)
    for r in rows[::3]:
        object.__setattr__(r, "__dict__", dict(reversed(r.__dict__.items())))
    holder = Holder(rows=rows)
    blob = bfa.dumps(holder)
    for trusted in (True, False):
        assert bfa.loads(blob, model=Holder, trusted=trusted) == holder
    assert [r["id"] for r in bfa.loads(blob)["rows"]] == list(range(40))
    arch = bfa.Archive.from_buffer(blob)
    try:
        assert list(arch["rows"].column("id")) == list(range(40))  # a table
    finally:
        arch.close()


def test_model_table_holds_the_field_dicts():
    """A table of instances is built from their field dicts (field order,
    only the fields), as one instance's body is: a key in a __dict__ that
    is not a field is not written, either way."""
    rows = model_rows(10)
    object.__setattr__(rows[4], "__dict__", {"zzz": 1, **rows[4].__dict__})
    table = bfa.loads(bfa.dumps({"rows": rows}))["rows"]
    alone = bfa.loads(bfa.dumps({"row": rows[4]}))["row"]
    assert list(table[4]) == list(Row.model_fields) == list(alone)
    assert table[4] == alone


class LooseHolder(BaseModel):
    items: list[Loose]


def test_trusted_load_of_extra_allow_models():
    holder = LooseHolder(items=[Loose(a=i, b=str(i)) for i in range(20)])
    back = bfa.loads(bfa.dumps(holder), model=LooseHolder, trusted=True)
    assert back == holder
    item = back.items[3]
    assert item.__pydantic_extra__ == {}
    item.new_attribute = 5  # extra="allow" stores it in __pydantic_extra__
    assert item.__pydantic_extra__ == {"new_attribute": 5}


@given(rows=tables(), block=st.integers(1, 9))
def test_blocks_property(rows, block):
    with pytest.MonkeyPatch.context() as mp:
        fast, general = _both({"rows": rows}, mp, block)
    assert fast == general
    back = bfa.loads(fast)["rows"]
    assert len(back) == len(rows)
    for got, want in zip(back, rows):
        assert list(got) == list(want)
        for k in want:
            assert got[k] == want[k] and type(got[k]) is type(want[k])
            if isinstance(want[k], dt.datetime):
                assert got[k].fold == want[k].fold and got[k].tzinfo == want[k].tzinfo
