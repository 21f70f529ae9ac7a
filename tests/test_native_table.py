"""Record tables converted in C (csrc/pytable.c) write exactly the bytes of
the Python writer's path, for every column kind and every way a list can
fail to be a table; and the C path leaks no references."""
from __future__ import annotations

import datetime as dt
import gc
import sys

import pytest
from hypothesis import given

import bfast_archive as bfa
from bfast_archive import _native, _pytable
from bfast_archive import writer as W
from tests.support.tables import CASES, Holder, Row, model_rows, tables


def _c_and_python(value, monkeypatch) -> tuple[bytes, bytes]:
    """(bytes with every table of >= 1 row converted in C, bytes of the Python path)."""
    with monkeypatch.context() as m:
        m.setattr(_pytable, "NATIVE_MIN", 1)
        native = bfa.dumps(value)
    with monkeypatch.context() as m:
        m.setattr(_pytable, "NATIVE_MIN", 1 << 60)
        python = bfa.dumps(value)
    return native, python


class Key(str):
    pass


class Mapping(dict):
    pass


NOT_TABLES = {
    "key order differs in the last row": [{"a": 1, "b": 2}] * 9 + [{"b": 2, "a": 1}],
    "an extra key": [{"a": 1}] * 9 + [{"a": 1, "b": 2}],
    "a missing key": [{"a": 1, "b": 2}] * 9 + [{"a": 1}],
    "a dict subclass row": [{"a": 1}] * 9 + [Mapping(a=1)],
    "a row that is not a dict": [{"a": 1}] * 9 + [[("a", 1)]],
    "an equal key of a str subclass": [{"a": 1}] * 9 + [{Key("a"): 2}],
}

ODD_COLUMNS = {
    "surrogate in a str": [{"s": "x" if i != 7 else "\ud800"} for i in range(20)],
    "surrogate in a str list": [{"t": ["x"] if i != 7 else ["y", "\udfff"]} for i in range(20)],
    "non-ASCII": [{"s": f"é{i}€", "t": ["ü", "😀" * i]} for i in range(20)],
    "an int beyond 64 bits late": [{"i": i if i < 19 else -(1 << 63) - 1} for i in range(20)],
    "int64 limits": [{"i": (1 << 63) - 1 if i % 2 else -(1 << 63)} for i in range(20)],
    "floats, nan and -0.0": [{"f": float("nan") if i % 3 else -0.0} for i in range(20)],
    "all None": [{"n": None} for i in range(20)],
    "None first, then ints": [{"i": None if i < 10 else i} for i in range(20)],
    "None first, then strs": [{"s": None if i < 10 else "s" * i} for i in range(20)],
    "None first, then str lists": [{"t": None if i < 10 else ["a"]} for i in range(20)],
    "empty str lists": [{"t": []} for i in range(20)],
    "a tuple in a list column": [{"t": ["a"] if i != 3 else ("a",)} for i in range(20)],
    "bool and int mixed": [{"b": True if i % 2 else 1} for i in range(20)],
    "datetimes and nested values": [{"d": dt.datetime(2020, 1, 1 + i), "x": {"k": [i]}}
                                    for i in range(20)],
    "one row": [{"a": 1, "s": "x"}],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_table_cases_write_the_python_paths_bytes(name, monkeypatch):
    native, python = _c_and_python({"rows": CASES[name]}, monkeypatch)
    assert native == python


@pytest.mark.parametrize("name", sorted(ODD_COLUMNS))
def test_odd_columns_write_the_python_paths_bytes(name, monkeypatch):
    value = {"rows": ODD_COLUMNS[name]}
    native, python = _c_and_python(value, monkeypatch)
    assert native == python
    back = bfa.loads(native)["rows"]
    for got, want in zip(back, value["rows"]):
        for k in want:
            same = got[k] == want[k] or (got[k] != got[k] and want[k] != want[k])  # nan
            assert same and type(got[k]) is type(want[k])


@pytest.mark.parametrize("name", sorted(NOT_TABLES))
def test_lists_that_are_not_tables_take_the_generic_layout(name, monkeypatch):
    rows = NOT_TABLES[name]
    assert _pytable.table_columns(rows, tuple(rows[0])) is None
    if name in ("an equal key of a str subclass", "a dict subclass row"):
        return  # (the Python path decides: it compares keys with ==; and rejects Mapping)
    native, python = _c_and_python({"rows": rows}, monkeypatch)
    assert native == python
    assert bfa.loads(native)["rows"] == rows


def test_a_cell_of_a_subclass_goes_to_the_python_writer(monkeypatch):
    rows = [{"s": "x" if i != 7 else Key("x"), "i": i} for i in range(20)]
    s, i = _pytable.table_columns(rows, ("s", "i"))
    assert s == [r["s"] for r in rows] and type(i) is tuple
    errors = []
    for limit in (1, 1 << 60):
        monkeypatch.setattr(_pytable, "NATIVE_MIN", limit)
        with pytest.raises(bfa.UnsupportedTypeError) as info:
            bfa.dumps({"rows": rows})
        errors.append(str(info.value))
    assert errors[0] == errors[1] and "rows[7]['s']" in errors[0]


@given(rows=tables())
def test_tables_property(rows):
    with pytest.MonkeyPatch.context() as mp:
        native, python = _c_and_python({"rows": rows}, mp)
    assert native == python


def test_the_ready_columns_the_c_core_returns():
    rows = [{"i": i, "f": i / 2, "b": i % 2 == 0, "s": "é" * i, "t": ["a"] * i, "n": None}
            for i in range(3)]
    i, f, b, s, t, n = _pytable.table_columns(rows, tuple(rows[0]))
    assert i == (W._K_INT, (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
                 + (2).to_bytes(8, "little"), None)
    assert f[0] == W._K_FLOAT and b == (W._K_BOOL, b"\x01\x00\x01", None)
    offsets = b"".join(x.to_bytes(8, "little") for x in (0, 0, 2, 6))
    assert s == (W._K_STR, offsets, ("é" * 3).encode(), None)
    rows_at = b"".join(x.to_bytes(8, "little") for x in (0, 0, 1, 3))
    items = b"".join(x.to_bytes(8, "little") for x in (0, 1, 2, 3))
    assert t == (W._K_STRLIST, rows_at, items, b"aaa")
    assert n == [None, None, None]  # all None: the Python writer decides


def test_nulls_mask_marks_the_none_rows():
    rows = [{"i": None if i in (0, 2) else i} for i in range(4)]
    (col,) = _pytable.table_columns(rows, ("i",))
    assert col[0] == W._K_INT and col[2] == b"\x01\x00\x01\x00"


def test_no_reference_is_leaked():
    marker = float("1.5")  # one object in every row (and a fallback column)
    odd = (1, "odd")
    rows = [{"f": marker, "o": [marker, odd] if i % 2 else marker, "s": "x"}
            for i in range(500)]
    keys = tuple(rows[0])
    before = sys.getrefcount(marker), sys.getrefcount(odd), sys.getrefcount(rows[0])
    for _ in range(50):
        result = _pytable.table_columns(rows, keys)
        assert type(result[0]) is tuple and type(result[1]) is list
        del result
        bfa.dumps({"rows": rows})
    assert (sys.getrefcount(marker), sys.getrefcount(odd), sys.getrefcount(rows[0])) == before


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was(enabled):
    """The C conversion pauses the cyclic GC while it holds borrowed
    references to the rows (a collection's finalizers could free them);
    it must restore the collector's state, on success and on failure."""
    rows = [{"d": dt.datetime(2020, 1, 1), "i": i} for i in range(100)]
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert type(_pytable.table_columns(rows, ("d", "i"))) is list
        assert gc.isenabled() is enabled
        assert _pytable.table_columns(rows + [{"i": 1}], ("d", "i")) is None  # not a table
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.parametrize("args", [([], ()), ({"a": 1}, ("a",)), ([{"a": 1}], ["a"]),
                                  ([{"a": 1}], ()), ((({"a": 1}),), ("a",))])
def test_other_arguments_are_not_tables(args):
    assert _pytable.table_columns(*args) is None


def test_without_the_c_path_the_bytes_are_the_same(monkeypatch):
    rows = [{"i": i, "s": str(i), "t": [str(i)]} for i in range(300)]
    native = bfa.dumps({"rows": rows})
    monkeypatch.setitem(_native._FUNCS, "bfa_py_table_columns", False)  # as without ctypes
    assert bfa.dumps({"rows": rows}) == native


# -- trusted model loads: instances built in C ---------------------------------

from bfast_archive import models as M  # noqa: E402


def _loaded_both_ways(monkeypatch) -> tuple[Holder, Holder, Holder]:
    holder = Holder(rows=model_rows(60))
    data = bfa.dumps(holder)
    native = bfa.loads(data, model=Holder, trusted=True)
    with monkeypatch.context() as m:
        m.setitem(_native._FUNCS, "bfa_py_model_rows", False)  # the Python row builder
        python = bfa.loads(data, model=Holder, trusted=True)
    return holder, native, python


@pytest.mark.parametrize("nothing", [False, True])
def test_model_tables_write_the_python_paths_bytes(nothing, monkeypatch):
    rows = model_rows(70, nothing=nothing)
    native, python = _c_and_python({"rows": rows}, monkeypatch)
    assert native == python
    holder = Holder(rows=rows)
    native, python = _c_and_python(holder, monkeypatch)
    assert native == python
    # a __dict__ in another order than the fields: the Python path decides
    odd = list(rows)
    object.__setattr__(odd[5], "__dict__", dict(reversed(odd[5].__dict__.items())))
    native, python = _c_and_python({"rows": odd}, monkeypatch)
    assert native == python


def test_c_built_models_are_the_python_built_ones(monkeypatch):
    holder, native, python = _loaded_both_ways(monkeypatch)
    assert native == python == holder
    for a, b in zip(native.rows, python.rows):
        assert type(a) is type(b) is Row
        assert list(a.__dict__) == list(b.__dict__) == list(Row.model_fields)
        assert a.__dict__ == b.__dict__
        assert a.model_fields_set == b.model_fields_set == set(Row.model_fields)
        assert a.__pydantic_extra__ is None and a.__pydantic_private__ is None
    # instances stay usable pydantic models: assignment, copy, dump, validation
    first = native.rows[0]
    first.name = "renamed"
    assert first.name == "renamed" and native.rows[1].name != "renamed"
    assert first.model_copy(update={"id": 7}).id == 7
    assert Row.model_validate(first.model_dump()) == first


def test_model_rows_leak_no_reference():
    marker = "a-name-" + str(12345)
    columns = [[1, 2, 3], [marker] * 3]
    names = ("id", "name")
    setters = M._model_setters()
    before = sys.getrefcount(marker)
    for _ in range(100):
        rows = _pytable.model_rows(Row.__new__, (Row,), setters, set(names), names, columns)
        assert [r.name for r in rows] == [marker] * 3
        del rows
    assert sys.getrefcount(marker) == before


@pytest.mark.parametrize("bad", [
    dict(setters=(None,) * 4),                    # not descriptors
    dict(setters=()),                             # not four
    dict(columns=[[1, 2], ["a"]]),                # unequal lengths
    dict(columns=[[1, 2]]),                       # fewer columns than names
    dict(names=["id", "name"]),                   # not a tuple
])
def test_model_rows_rejects_bad_arguments(bad):
    args = dict(new=Row.__new__, new_args=(Row,), setters=M._model_setters(),
                fields_set={"id", "name"}, names=("id", "name"), columns=[[1, 2], ["a", "b"]])
    args.update(bad)
    with pytest.raises(TypeError):
        _pytable.model_rows(**args)


# -- reading tables back in C ---------------------------------------------------

def _le(*values: int) -> bytes:
    return b"".join(v.to_bytes(8, "little") for v in values)


def test_strings_decode_like_python():
    texts = ["", "a", "ascii", "é", "😀x", "\ud800", "mixed \udfff end", "\0"] * 20
    blob = "".join(texts).encode("utf-8", "surrogatepass")
    ends = [0]
    for s in texts:
        ends.append(ends[-1] + len(s.encode("utf-8", "surrogatepass")))
    got = _pytable.strings(blob, _le(*ends))
    assert got == texts and all(type(s) is str for s in got)


@pytest.mark.parametrize("blob, offsets, error", [
    (b"abc", _le(0, 2, 1), ValueError),          # out of order
    (b"abc", _le(0, 4), ValueError),             # past the blob
    (b"abc", _le(2, 1 << 63), ValueError),       # huge
    (b"abc", b"\0" * 7, ValueError),             # not whole uint64s
    (b"abc", b"", ValueError),                   # not even one offset
    (b"\xff\xfe", _le(0, 2), UnicodeDecodeError),  # not UTF-8
    (b"\xed\xa0", _le(0, 2), UnicodeDecodeError),  # a truncated surrogate
    (bytearray(b"abc"), _le(0, 3), TypeError),   # not bytes
])
def test_strings_reject_bad_regions(blob, offsets, error):
    with pytest.raises(error):
        _pytable.strings(blob, offsets)


def test_groups_and_rows():
    items = list("abcdef")
    assert _pytable.groups(items, _le(0, 0, 2, 6)) == [[], ["a", "b"], ["c", "d", "e", "f"]]
    for bounds in (_le(0, 3, 2), _le(0, 7), b"\0" * 4):
        with pytest.raises(ValueError):
            _pytable.groups(items, bounds)
    rows = _pytable.rows(("a", "b"), [[1, 2], ["x", "y"]])
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}] and list(rows[0]) == ["a", "b"]
    with pytest.raises(TypeError):
        _pytable.rows(("a", "b"), [[1, 2], ["x"]])
    with pytest.raises(TypeError):
        _pytable.rows(("a",), [[1], [2]])


def _big_table():
    return [{"id": i, "name": f"n{i}" if i % 7 else f"ñ{i}\ud800", "tags": ["t"] * (i % 3),
             "score": None if i % 5 == 0 else i / 4, "when": dt.datetime(2020, 1, 1 + i % 28)}
            for i in range(150)]


def test_loads_reads_tables_like_the_python_path(monkeypatch):
    rows = _big_table()
    data = bfa.dumps({"rows": rows})
    native = bfa.loads(data)
    with bfa.Archive.from_buffer(data) as arch:
        column = arch["rows"].column("name")
    for name in ("bfa_py_strings", "bfa_py_groups", "bfa_py_rows"):
        monkeypatch.setitem(_native._FUNCS, name, False)
    python = bfa.loads(data)
    assert native == python == {"rows": rows}
    assert column == [r["name"] for r in rows]
    assert [list(r) for r in native["rows"]] == [list(r) for r in rows]


def test_damaged_table_regions_raise_archive_errors():
    """Every single-byte change in a table's regions: a value or ArchiveError."""
    rows = [{"s": f"s{i}", "t": ["a", "b"][: i % 3]} for i in range(80)]
    data = bfa.dumps({"rows": rows})
    blob_at = data.index(b"s0s1s2")
    for at in range(blob_at - 2048, blob_at + 300):
        for byte in (0x00, 0xff, 0x80, 0xed):
            damaged = bytearray(data)
            damaged[at] ^= byte or 0x41
            try:
                bfa.loads(bytes(damaged))
            except bfa.ArchiveError:
                pass
