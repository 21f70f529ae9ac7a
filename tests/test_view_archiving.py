"""Archiving a view of an archive archives its value: the same bytes as
archiving ``view.to_python()`` (docs/CONCEPTS.md, "Views and values":
"Views archive as their values")."""
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
    import pydantic

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


# --------------------------------------------------------------------------
# the direct path: a view's subtree is not copied out first, and still gives
# the bytes of dumps(view.to_python())

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.support.format_helpers import fix_checksums  # noqa: E402
from tests.support.strategies import values  # noqa: E402


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(values, st.sampled_from([None, "lz4"]))
def test_any_view_archives_as_its_value(value, compression):
    arch = bfa.Archive.from_buffer(bfa.dumps({"v": value}, compression=compression))
    view = arch.root
    assert bfa.dumps(view) == bfa.dumps(view.to_python())
    inner = view["v"]
    if isinstance(inner, (bfa.ArchivedDict, bfa.ArchivedList)):
        assert bfa.dumps(inner) == bfa.dumps(inner.to_python())


def _wide_rows(n):
    return [{"i": i, "f": i / 3 if i % 5 else None, "b": i % 2 == 0,
             "t": dt.datetime(2020, 1, 1) + dt.timedelta(seconds=i) if i % 7 else None,
             "s": ["plain", "naïve ✓", "\udc80 lone", None][i % 4],
             "l": [["a", "é"], [], ["x"] * (i % 3)][i % 3],
             "m": [1, "two", 3.0, None, {"d": [i]}][i % 5],
             "a": np.arange(i % 4)} for i in range(n)]


@pytest.mark.parametrize("n", [4, 63, 64, 3000])
def test_table_views_copy_their_columns_exactly(n):
    rows = _wide_rows(n)
    arch = bfa.Archive.from_buffer(bfa.dumps({"rows": rows}))
    table = arch["rows"]
    assert isinstance(table, bfa.ArchivedTable)
    assert bfa.dumps(table) == bfa.dumps(table.to_python()) == bfa.dumps(rows)


def test_table_views_without_numpy_loaded():
    """Non-ASCII columns are checked with NumPy; without it they are decoded."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys, datetime as dt
        import bfast_archive as bfa
        rows = [{"s": ["ascii", "naïve", None][i % 3], "l": [["é"], []][i % 2], "i": i,
                 "t": dt.datetime(2021, 1, 1)} for i in range(100)]
        arch = bfa.Archive.from_buffer(bfa.dumps(rows))
        assert bfa.dumps(arch.root) == bfa.dumps(arch.root.to_python()) == bfa.dumps(rows)
        assert "numpy" not in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_array_in_a_view_is_written_from_the_archives_memory(monkeypatch):
    """The read-only view of the array, not an owned copy, is what the writer gets."""
    from bfast_archive import writer

    arch = archived()
    seen = []
    real = writer._Writer.ndarray

    def spy(self, a, key=None):
        seen.append(a.flags.owndata or a.flags.writeable)
        return real(self, a, key)

    monkeypatch.setattr(writer._Writer, "ndarray", spy)
    bfa.dumps(arch.root)
    assert seen == [False]


def _table_column_offsets(raw: bytes):
    """(table offset, descriptors offset) of the table at the root of ``raw``."""
    import struct

    from bfast_archive import format as F

    root_tag, table = struct.unpack_from("<QQ", raw, 24)
    assert root_tag & 0xFF == F.T_TABLE
    return table, table + F.TABLE_HEADER_SIZE


def test_a_corrupt_bool_column_is_refused_as_to_python_refuses_it():
    import struct

    from bfast_archive import format as F

    raw = bytearray(bfa.dumps([{"b": i % 2 == 0} for i in range(8)]))
    _, cols = _table_column_offsets(bytes(raw))
    kind, flags, r0 = struct.unpack_from("<IIQ", raw, cols)
    assert kind == F.COL_BOOL
    raw[r0 + 3] = 7
    arch = bfa.Archive.from_buffer(fix_checksums(bytes(raw)))  # checksums agree: structure is tested
    with pytest.raises(bfa.ArchiveError, match="bool column"):
        arch.root.to_python()
    with pytest.raises(bfa.ArchiveError, match="bool column"):
        bfa.dumps(arch.root)


def test_data_under_a_null_is_not_carried_over():
    """A foreign file with bytes under a null cell: the copy writes what a
    writer writes for the decoded cells (zeros), not the hidden bytes."""
    import struct

    from bfast_archive import format as F

    rows = [{"x": None if i == 2 else i} for i in range(8)]
    raw = bytearray(bfa.dumps(rows))
    _, cols = _table_column_offsets(bytes(raw))
    kind, flags, r0 = struct.unpack_from("<IIQ", raw, cols)
    assert kind == F.COL_INT64 and flags
    struct.pack_into("<q", raw, r0 + 16, 12345)  # row 2's hidden value
    arch = bfa.Archive.from_buffer(fix_checksums(bytes(raw)))
    assert arch.root.to_python() == rows
    assert bfa.dumps(arch.root) == bfa.dumps(rows)


def test_a_shared_node_is_refused_as_to_python_refuses_it():
    """A file whose dict names one list node twice ("billion laughs"): the
    view walk refuses it, as to_python does, instead of expanding it."""
    import struct

    from bfast_archive import format as F

    raw = bytearray(bfa.dumps({"a": list(range(10)), "b": [0]}))
    root_off = struct.unpack_from("<Q", raw, 32)[0]
    entries = root_off + F.DICT_HEADER.size  # 32 bytes each: key slot, value slot
    raw[entries + 48:entries + 64] = raw[entries + 16:entries + 32]  # "b" -> "a"'s list
    shared = bfa.Archive.from_buffer(fix_checksums(bytes(raw)))
    with pytest.raises(bfa.ArchiveError, match="referenced twice"):
        shared.root.to_python()
    with pytest.raises(bfa.ArchiveError, match="referenced twice"):
        bfa.dumps(shared.root)


def test_cache_entry_republished_from_its_own_view(tmp_path):
    """The view maps the file being replaced: the new file is written from
    the old mapping, which stays intact past the rename."""
    cache = bfa.Cache(tmp_path)
    cache["a"] = {"rows": [{"i": i, "s": str(i)} for i in range(100)], "emb": np.arange(50_000)}
    cache["a"] = {"again": cache.get("a")}
    got = cache.get("a").to_python()["again"]
    assert got["rows"][99] == {"i": 99, "s": "99"}
    np.testing.assert_array_equal(got["emb"], np.arange(50_000))
