"""The cells of SLOTS columns encoded in C (csrc/pyencode.c, bfast_archive/_cells.py)
write exactly the bytes of the writer's Python path, hand every value the C
does not take back to it (so errors are the same, naming the same path), and
leak nothing."""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import gc
import ipaddress
import sys
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, RootModel, create_model, field_serializer

import bfast_archive as bfa
from bfast_archive import _cells, _native, _pytable
from bfast_archive import writer as W
from tests.support import strategies as S


class Color(enum.Enum):
    RED = "red"
    ONE = 1
    HUGE = 1 << 70  # a BIGINT value
    PAIR = (1, "x")  # a value the C hands back


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 20


class Odd(enum.Enum):
    """An enum whose ``value`` is its own property: the Python path's."""
    X = 1

    @property
    def value(self) -> Any:  # type: ignore[override]
        return "not the stored value"


class Leaf(BaseModel):
    a: Any = None
    a_long_field_name: Any = None  # a key of more than 8 bytes: appended per instance


class Row(BaseModel):
    v: Any
    w: Any = None


class Masked(BaseModel):
    secret: str

    @field_serializer("secret")
    def _mask(self, value: str) -> str:
        return "***"


class Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int = 0


class Root(RootModel[Any]):
    pass


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Unknown:
    pass


def _both(value: Any, max_depth: int = 1000) -> tuple[Any, Any]:
    """(what dumps gives with the C cell encoder, and without it): the bytes,
    or the error's type and message."""
    out = []
    for native in (True, False):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_cells, "NATIVE", native)
            m.setattr(_pytable, "NATIVE_MIN", 1)  # every table's columns through the C
            try:
                out.append(bfa.dumps(value, max_depth=max_depth))
            except Exception as exc:  # noqa: BLE001 (compared below)
                out.append((type(exc), str(exc)))
    return out[0], out[1]


long_texts = st.text(S.any_char, min_size=9, max_size=40)
handled = st.one_of(
    st.none(), st.booleans(), S.ints, S.floats, S.texts, long_texts, S.datetimes, S.dates,
    S.uuids, S.decimals, st.sampled_from(list(Color) + list(Level)),
)
unhandled = st.one_of(
    S.times, S.timedeltas, S.binaries, st.lists(st.integers(), max_size=3),
    st.tuples(st.integers()), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([Odd.X, Masked(secret="s"), Extra(a=1, more="x"), Root(5), Point(1, 2),
                     ipaddress.IPv4Address("10.0.0.1"), frozenset({1, 2}), 1 + 2j,
                     dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).astimezone(
                         dt.timezone(dt.timedelta(hours=2), "Z\ud800"))]),
)
cells = st.recursive(
    st.one_of(handled, handled, unhandled),
    lambda inner: st.one_of(
        st.builds(Leaf, a=inner, a_long_field_name=inner), st.builds(Row, v=inner),
        st.lists(inner, max_size=6), st.tuples(inner, inner),
        st.lists(st.builds(dict, k=inner), min_size=4, max_size=5),  # a table inside a cell
        st.lists(st.builds(Leaf, a=inner), min_size=4, max_size=5)),  # a model table inside
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=st.lists(cells, min_size=4, max_size=40), other=st.lists(cells, min_size=4,
                                                                        max_size=40))
def test_model_tables_write_the_python_paths_bytes(column, other):
    n = min(len(column), len(other))
    rows = [Row(v=v, w=w) for v, w in zip(column[:n], other[:n])]
    native, python = _both({"rows": rows})
    assert native == python


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=st.lists(cells, min_size=4, max_size=40))
def test_dict_tables_write_the_python_paths_bytes(column):
    """Outside a model an enum member is refused: by the Python path, with its path."""
    native, python = _both([{"v": v, "i": i} for i, v in enumerate(column)])
    assert native == python


def _chain(depth: int, innermost: str = "list") -> Leaf:
    leaf = Leaf(a=[1, "a long string", dt.date(2000, 1, 1)] if innermost == "list" else 1)
    for _ in range(depth):
        leaf = Leaf(a=leaf, a_long_field_name="x" * 20)
    return leaf


@pytest.mark.parametrize("innermost", ["list", "model"])
@pytest.mark.parametrize("max_depth", range(2, 11))
def test_nesting_limit_is_the_python_paths(max_depth, innermost):
    """{"rows": table}: 2 containers open, then 6 nested models (and a list):
    every max_depth puts the limit at another level of the C's recursion."""
    rows = [Row(v=_chain(0, innermost))] * 3 + [Row(v=_chain(5, innermost))] * 70
    native, python = _both({"rows": rows}, max_depth=max_depth)
    assert native == python
    if max_depth > 4:  # (below, the first row's schema or field dict is too deep)
        assert type(native) is bytes or "rows[3]['v']" in native[1]


def test_nesting_beyond_the_c_recursion_bound_is_the_python_paths():
    rows = [Row(v=_chain(70 if i == 3 else 2)) for i in range(70)]
    native, python = _both({"rows": rows})
    assert native == python and type(native) is bytes


@pytest.mark.parametrize("bad, where", [
    (dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Oslo")), "rows[50]['v']"),
    (Odd.X, None),
])
def test_errors_name_the_same_path(bad, where):
    rows = [Row(v=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)) for _ in range(70)]
    rows[50] = Row(v=bad)
    native, python = _both({"rows": rows})
    assert native == python
    if where is not None:
        assert native[0] is bfa.UnsupportedTypeError and where in native[1]


def test_an_enum_outside_a_model_is_refused_naming_its_path():
    rows = [{"c": Color.RED if i == 33 else "red"} for i in range(70)]
    native, python = _both(rows)
    assert native == python
    assert native[0] is bfa.UnsupportedTypeError and "[33]['c']" in native[1]


def test_a_cycle_inside_a_nested_model_is_refused_naming_its_path():
    loop: list[Any] = []
    loop.append(loop)
    rows = [Row(v=Leaf(a=loop if i == 9 else [1])) for i in range(70)]
    native, python = _both({"rows": rows})
    assert native == python
    assert native[0] is bfa.NestingError and "rows[9]['v']" in native[1]


def test_a_model_missing_a_field_fails_as_the_python_path():
    rows = [Row(v=Leaf(a=i)) for i in range(70)]
    object.__setattr__(rows[40].v, "__dict__", {"a": 1})  # its a_long_field_name gone
    native, python = _both({"rows": rows})
    assert native == python and native[0] is KeyError


def test_the_c_encodes_the_common_cells():
    """The realistic cell types never reach the Python encoders."""
    utc = dt.timezone.utc
    rows = [Row(v=dt.datetime(2020, 1, 1, i % 24, tzinfo=utc),
                w=Leaf(a=uuid.UUID(int=i), a_long_field_name=decimal.Decimal(i) / 7))
            for i in range(200)]
    seen = []
    spies = {t: (lambda enc: lambda w, v: seen.append(type(v)) or enc(w, v))(W._ENCODERS[t])
             for t in (dt.datetime, str, int)}
    with pytest.MonkeyPatch.context() as m:
        for t, spy in spies.items():
            m.setitem(W._ENCODERS, t, spy)
        data = bfa.dumps({"rows": rows})
        native = list(seen)
        m.setattr(_cells, "NATIVE", False)
        assert bfa.dumps({"rows": rows}) == data
    assert seen.count(dt.datetime) == 200  # (the spies see the Python path)
    # the C path: the schemas' and the key dict's strings, the first row's nested
    # model (handed back: its class is listed after it); no cell of the 199 others
    assert native.count(dt.datetime) == 0 and len(native) < 20 < len(seen) - len(native)


def test_many_zones_wide_models_and_long_lists_write_the_python_paths_bytes():
    """More distinct zones than the C remembers, more fields and items than
    its stack buffers hold."""
    wide = create_model("Wide", **{f"field_number_{i}": (Any, None) for i in range(20)})
    zones = [dt.timezone(dt.timedelta(minutes=i), *[f"zone {i}"] * (i % 2))
             for i in range(30)]
    rows = [Row(v=dt.datetime(2020, 1, 1, fold=i % 2, tzinfo=zones[i % 30]),
                w=wide(**{f"field_number_{j}": [i] * 20 if j == 3 else i * j for j in range(20)}))
            for i in range(200)]
    native, python = _both({"rows": rows})
    assert native == python and type(native) is bytes


def test_mostly_unhandled_cells_finish_in_python_with_the_same_bytes():
    column = [dt.time(1, i % 60) if i % 10 else i for i in range(1000)]
    native, python = _both({"rows": [{"v": v} for v in column]})
    assert native == python and type(native) is bytes


def test_without_the_c_path_the_bytes_are_the_same(monkeypatch):
    rows = [Row(v=dt.date(2000, 1, 1 + i % 28)) for i in range(100)]
    native = bfa.dumps({"rows": rows})
    monkeypatch.setitem(_native._FUNCS, "bfa_py_encode_cells", False)  # as without ctypes
    assert bfa.dumps({"rows": rows}) == native


def test_no_reference_is_leaked():
    zone = dt.timezone(dt.timedelta(hours=3), "a long zone name")
    price = decimal.Decimal("1.25")
    rows = [Row(v=dt.datetime(2020, 1, 1, tzinfo=zone), w=Leaf(a=price, a_long_field_name=[1]))
            for _ in range(300)]
    before = sys.getrefcount(zone), sys.getrefcount(price), sys.getrefcount(rows[0])
    for _ in range(30):
        bfa.dumps({"rows": rows})
    assert (sys.getrefcount(zone), sys.getrefcount(price), sys.getrefcount(rows[0])) == before


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was(enabled):
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        cells = [dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)] * 3 + [Unknown()]
        blob, slots, stop = _pytable.encode_cells(
            cells, (0, 64, {dt.datetime: _native.lib.BFA_CELL_DATETIME}, dt.timezone, False, 10))
        assert stop == 3 and len(slots) == 48 and gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.parametrize("ctx", [(), (0, 0, [], dt.timezone, False, 1), (-1, 0, {}, dt.timezone, False, 1),
                                 (0, -8, {}, dt.timezone, False, 1), (0, 0, {}, 5, False, 1)])
def test_bad_arguments_raise(ctx):
    with pytest.raises(TypeError):
        _pytable.encode_cells([1], ctx)


# -- long lists and tuples outside tables: their items go through the C too -------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(cells, min_size=1, max_size=40), as_tuple=st.booleans())
def test_lists_and_tuples_write_the_python_paths_bytes(items, as_tuple):
    seq = tuple(items) if as_tuple else items
    native, python = _both({"seq": seq, "nested": [seq, [seq]], "in_model": Row(v=items)})
    assert native == python


def test_a_long_list_of_common_values_is_encoded_in_c(monkeypatch):
    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    value = {"ts": [when + dt.timedelta(seconds=i) for i in range(200)],
             "ids": tuple(uuid.UUID(int=i) for i in range(200)), "set": set(range(100))}
    calls = []
    real = _pytable.encode_cells
    monkeypatch.setattr(_pytable, "encode_cells", lambda *a: calls.append(len(a[0])) or real(*a))
    data = bfa.dumps(value)
    # one C call per list, the UUIDs' two: the first UUID is handed back (the
    # writer learns its type), then the C takes the rest
    assert sorted(calls) == [100, 200, 200, 200]
    assert bfa.loads(data) == value
    monkeypatch.setattr(_cells, "NATIVE", False)
    assert bfa.dumps(value) == data


@pytest.mark.parametrize("bad, error, where", [
    (Unknown(), bfa.UnsupportedTypeError, "v[70]"),
    (Color.RED, bfa.UnsupportedTypeError, "v[70]"),   # an enum outside a model
    ("self", bfa.NestingError, "v[70]"),             # the list itself: a cycle
])
def test_errors_in_long_lists_name_the_same_path(bad, error, where):
    items: list[Any] = [dt.date(2020, 1, 1 + i % 28) for i in range(100)]
    items[70] = items if bad == "self" else bad
    native, python = _both({"v": items})
    assert native == python
    assert native[0] is error and where in native[1]
