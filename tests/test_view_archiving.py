"""Archiving a view of an archive archives its value: the same bytes as
archiving ``view.to_python()`` (issue 13, "Views and columns")."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import bfast_archive as bfa

VALUE = {
    "meta": {"name": "run", "when": dt.datetime(2024, 5, 1, 12), "tags": ("a", "b"), "s": {3, 1}},
    "rows": [{"id": i, "x": i / 4, "name": f"n{i}", "labels": ["p", "q"][: i % 3]}
             for i in range(70)],
    "short": [{"id": 1}, {"id": 2}],
    "blob": b"\x00\x01" * 40_000,
    "small": b"abc",
    "emb": np.arange(12, dtype=np.float32).reshape(3, 4),
    "nested": [[1, [2, [3]]], {"k": None}],
}


def archived(value=VALUE, **kw):
    return bfa.Archive.from_buffer(bfa.dumps(value, **kw))


def assert_same_as_plain(view):
    assert bfa.dumps(view) == bfa.dumps(view.to_python())


def test_archived_dict_archives_as_its_value():
    view = archived().root
    assert isinstance(view, bfa.ArchivedDict)
    assert_same_as_plain(view)


def test_archived_list_archives_as_its_value():
    view = archived()["nested"]
    assert isinstance(view, bfa.ArchivedList)
    assert_same_as_plain(view)


def test_archived_tuple_stays_a_tuple():
    view = archived()["meta"]["tags"]
    assert view.is_tuple
    assert_same_as_plain(view)
    assert bfa.loads(bfa.dumps(view)) == ("a", "b")


def test_archived_table_archives_as_its_rows():
    view = archived()["rows"]
    assert isinstance(view, bfa.ArchivedTable)
    assert_same_as_plain(view)
    assert bfa.loads(bfa.dumps(view)) == VALUE["rows"]


def test_archived_row_archives_as_its_dict():
    row = archived()["rows"][5]
    assert_same_as_plain(row)
    assert bfa.loads(bfa.dumps(row)) == VALUE["rows"][5]


def test_strings_cell_archives_as_a_list():
    cell = archived()["rows"][4]["labels"]
    assert isinstance(cell, bfa.ArchivedList)
    assert_same_as_plain(cell)
    assert bfa.loads(bfa.dumps(cell)) == ["p"]


def test_memoryview_of_bytes_archives_as_bytes():
    arch = archived()
    for key in ("blob", "small"):
        view = arch[key]
        assert isinstance(view, memoryview)
        assert bfa.dumps(view) == bfa.dumps(bytes(view))


def test_memoryview_of_other_format_is_refused():
    with pytest.raises(bfa.UnsupportedTypeError, match="memoryview of format 'd'") as info:
        bfa.dumps({"m": memoryview(np.zeros(3))})
    assert info.value.path == "m"


def test_ndarray_view_archives_as_the_array():
    arr = archived()["emb"]
    assert not arr.flags.writeable
    assert bfa.dumps(arr) == bfa.dumps(np.array(arr))


def test_array_handle_archives_as_the_array():
    arch = archived()
    handle = arch.array("emb")
    assert bfa.dumps(handle) == bfa.dumps(VALUE["emb"])


def test_views_nested_in_plain_containers():
    arch = archived()
    mixed = {"d": arch["meta"], "l": [arch["nested"], arch["rows"][0]], "t": (arch["short"],)}
    plain = {"d": arch["meta"].to_python(),
             "l": [arch["nested"].to_python(), arch["rows"][0].to_python()],
             "t": (arch["short"].to_python(),)}
    assert bfa.dumps(mixed) == bfa.dumps(plain)


def test_views_of_a_compressed_archive():
    arch = archived(compression="lz4", chunk_size=4096)
    assert arch.compressed
    assert bfa.dumps(arch.root) == bfa.dumps(VALUE)
    assert bfa.dumps(arch["blob"]) == bfa.dumps(VALUE["blob"])


def test_view_of_a_closed_archive_is_refused():
    arch = archived()
    view = arch["meta"]
    arch.close()
    with pytest.raises(bfa.ArchiveError, match="ArchivedDict: its archive is closed"):
        bfa.dumps({"x": view})


def test_cache_entry_stored_under_another_key(tmp_path):
    cache = bfa.Cache(tmp_path)
    cache["a"] = {"ids": [1, 2, 3], "emb": np.ones(4)}
    cache["b"] = {"x": cache.get("a")}
    got = cache.get("b").to_python()
    assert got["x"]["ids"] == [1, 2, 3]
    np.testing.assert_array_equal(got["x"]["emb"], np.ones(4))


def test_archived_models_archive_as_their_fields():
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):
        id: int
        name: str

    class Order(pydantic.BaseModel):
        items: list[Item]

    order = Order(items=[Item(id=i, name=str(i)) for i in range(5)])
    arch = bfa.Archive.from_buffer(bfa.dumps(order), model=Order)
    view = arch.root
    assert isinstance(view, bfa.ArchivedModel)
    assert_same_as_plain(view)
    items = view.items
    assert isinstance(items, bfa.ArchivedModelList)
    assert_same_as_plain(items)
    assert_same_as_plain(items[2])
