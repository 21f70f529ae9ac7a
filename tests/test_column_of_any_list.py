"""``column(name)`` on every list of dicts, whatever its stored layout, and
numeric columns as arrays when their cells are numbers an array holds
exactly (docs/CONCEPTS.md, "Tables": "column() works on every list of
dicts")."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bfast_archive as bfa


def root(value):
    return bfa.Archive.from_buffer(bfa.dumps(value)).root


def test_column_of_a_three_row_list():
    rows = root([{"id": 1, "x": 0.5}, {"id": 2, "x": 1.5}, {"id": 3, "x": 2.5}])
    assert not isinstance(rows, bfa.ArchivedTable)
    ids = rows.column("id")
    assert ids.dtype == np.int64 and ids.tolist() == [1, 2, 3]
    assert rows.column("x").tolist() == [0.5, 1.5, 2.5]


def test_column_when_one_row_has_an_extra_key():
    rows = root([{"id": i} for i in range(5)] + [{"id": 5, "extra": "e"}])
    assert not isinstance(rows, bfa.ArchivedTable)
    assert rows.column("id").tolist() == list(range(6))


def test_column_when_rows_have_another_key_order():
    rows = root([{"a": i, "b": str(i)} for i in range(4)] + [{"b": "4", "a": 4}])
    assert not isinstance(rows, bfa.ArchivedTable)
    assert rows.column("a").tolist() == list(range(5))
    assert rows.column("b") == ["0", "1", "2", "3", "4"]


def test_a_missing_key_is_a_key_error_naming_the_item():
    rows = root([{"id": 1}, {"id": 2, "extra": 1}, {"id": 3}])
    with pytest.raises(KeyError, match="item 0 has no key 'extra'"):
        rows.column("extra")


def test_column_of_a_list_holding_a_non_dict_is_a_type_error():
    with pytest.raises(TypeError, match="item 1 is a int"):
        root([{"a": 1}, 5]).column("a")


def test_column_values_are_plain_values_not_views():
    rows = root([{"a": {"k": [1]}}, {"a": "s"}])
    assert rows.column("a") == [{"k": [1]}, "s"]
    assert type(rows.column("a")[0]) is dict


def test_none_cells_give_a_masked_array():
    col = root([{"x": 1.5}, {"x": None}, {"x": 2}]).column("x")
    assert isinstance(col, np.ma.MaskedArray)
    assert col.mask.tolist() == [False, True, False]
    assert col.dtype == np.float64 and col[0] == 1.5 and col[2] == 2.0


@pytest.mark.parametrize("n", [5, 100])  # Python and C table writers
def test_an_int_zero_among_floats_gives_a_float_array(n):
    rows = [{"x": 0 if i == 3 else i / 2} for i in range(n)]
    arch = bfa.Archive.from_buffer(bfa.dumps(rows))
    col = arch.root.column("x")
    assert isinstance(col, np.ndarray) and col.dtype == np.float64
    assert col.tolist() == [r["x"] for r in rows]
    cell = arch.root[3]["x"]
    assert cell == 0 and type(cell) is int              # the row keeps the cell's own type
    assert type(bfa.loads(bfa.dumps(rows))[3]["x"]) is int


@pytest.mark.parametrize("n", [5, 100])
def test_float32_cells_give_a_float32_array(n):
    rows = [{"x": np.float32(i) / 3} for i in range(n)]
    arch = bfa.Archive.from_buffer(bfa.dumps(rows))
    col = arch.root.column("x")
    assert col.dtype == np.float32
    assert col.tobytes() == np.array([r["x"] for r in rows], np.float32).tobytes()
    assert type(arch.root[1]["x"]) is np.float32


def test_an_int_a_float64_cannot_hold_gives_a_list():
    big = 2 ** 60 + 1  # not a float64
    col = root([{"x": big}, {"x": 0.5}, {"x": 1.5}, {"x": 2.5}]).column("x")
    assert col == [big, 0.5, 1.5, 2.5] and type(col[0]) is int


def test_ints_beyond_64_bits_give_a_list():
    assert root([{"x": 2 ** 64}, {"x": 1}]).column("x") == [2 ** 64, 1]


def test_bools_among_numbers_give_a_list():
    col = root([{"x": True}, {"x": 1}, {"x": 2.0}, {"x": 3}]).column("x")
    assert col == [True, 1, 2.0, 3] and type(col[0]) is bool


def test_bool_cells_give_a_bool_array():
    col = root([{"x": True}, {"x": np.bool_(False)}]).column("x")
    assert col.dtype == bool and col.tolist() == [True, False]


def test_int64_and_uint64_scalars_are_checked_for_exactness():
    col = root([{"x": np.uint64(2 ** 64 - 1)}, {"x": np.int64(-1)}]).column("x")
    assert col == [np.uint64(2 ** 64 - 1), np.int64(-1)]  # float64 would round: a list


def test_model_list_column_on_a_short_list():
    import pydantic

    class P(pydantic.BaseModel):
        x: float

    arch = bfa.Archive.from_buffer(bfa.dumps([{"x": 1.5}, {"x": 0}]), model=P)
    assert arch.root.column("x").tolist() == [1.5, 0.0]


numbers = st.one_of(st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(allow_nan=False),
                    st.none())


@settings(max_examples=150, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=80))
def test_numeric_column_is_exact_both_ways(cells):
    rows = [{"x": v} for v in cells]
    arch = bfa.Archive.from_buffer(bfa.dumps(rows))
    col = arch.root.column("x")
    # the cells, one by one and in load(), keep their own value and type
    assert [(type(r["x"]), r["x"]) for r in arch.root] == [(type(v), v) for v in cells]
    assert [(type(r["x"]), r["x"]) for r in bfa.loads(bfa.dumps(rows))] == \
        [(type(v), v) for v in cells]
    present = [v for v in cells if v is not None]
    if isinstance(col, list):
        assert col == cells
        # a list only when no exact array exists: every value present but an int a
        # float64 cannot hold, or no value at all
        assert not present or any(type(v) is int and float(v) != v for v in present) \
            and any(type(v) is float for v in present)
        return
    data = col.compressed() if isinstance(col, np.ma.MaskedArray) else col
    assert len(data) == len(present)
    assert all(a == b for a, b in zip(data.tolist(), present))  # exact int/float equality


def test_column_of_a_list_of_str_cell_is_a_type_error():
    rows = root([{"tags": ["a", "b"]} for _ in range(70)])
    cell = rows[0]["tags"]
    assert isinstance(cell, bfa.ArchivedList)
    with pytest.raises(TypeError, match="item 0 is a str"):
        cell.column("x")
