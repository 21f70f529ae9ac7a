"""Record tables out as Arrow (bfast_archive/frames.py): the values of
to_arrow() are the table's, the numeric and string buffers are the archive's
own bytes, damage is reported, and what has no Arrow form is refused by name."""
import datetime as dt
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bfast_archive as bfa
from bfast_archive import format as F
from tests.support.format_helpers import fix_checksums

ROWS = [{"id": i, "score": i / 7, "flag": i % 3 == 0,
         "name": None if i % 5 == 0 else f"name-{i}-é",
         "tags": ["a", "bé"][: i % 3], "when": dt.datetime(2024, 1, 1) + dt.timedelta(hours=i)}
        for i in range(200)]


def _table(rows, tmp_path=None):
    if tmp_path is None:
        return bfa.Archive.from_buffer(bfa.dumps(rows)).root
    path = tmp_path / "t.bfa"
    bfa.dump(rows, path)
    return bfa.Archive.open(path).root


def _inside(arch, buf) -> bool:
    """Whether the Arrow buffer ``buf`` lies inside the archive's bytes."""
    whole = np.frombuffer(arch._snap.mv, np.uint8)
    return buf.size > 0 and np.shares_memory(np.frombuffer(buf, np.uint8), whole)


def test_to_arrow_values_equal_rows(tmp_path):
    assert _table(ROWS, tmp_path).to_arrow().to_pylist() == ROWS


def test_to_arrow_types_per_column_kind(tmp_path):
    schema = _table(ROWS, tmp_path).to_arrow().schema
    assert schema == pa.schema([("id", pa.int64()), ("score", pa.float64()),
                                ("flag", pa.bool_()), ("name", pa.large_string()),
                                ("tags", pa.large_list(pa.large_string())),
                                ("when", pa.timestamp("us"))])


@pytest.mark.parametrize("name", ["id", "score"])
def test_numeric_column_shares_the_mapping(tmp_path, name):
    table = _table(ROWS, tmp_path)
    arr = table.column(name, arrow=True)
    assert _inside(table._arch, arr.buffers()[1])


def test_string_column_offsets_and_blob_share_the_mapping(tmp_path):
    table = _table(ROWS, tmp_path)
    _, offsets, blob = table.column("name", arrow=True).buffers()
    assert _inside(table._arch, offsets) and _inside(table._arch, blob)


def test_string_list_column_shares_the_mapping(tmp_path):
    table = _table(ROWS, tmp_path)
    arr = table.column("tags", arrow=True)
    _, starts = arr.buffers()[:2]
    _, offsets, blob = arr.values.buffers()
    assert all(_inside(table._arch, b) for b in (starts, offsets, blob))


def test_column_without_arrow_is_unchanged(tmp_path):
    table = _table(ROWS, tmp_path)
    assert isinstance(table.column("id"), np.ndarray)
    assert table.column("name") == [r["name"] for r in ROWS]


def test_arrow_table_outlives_the_closed_archive(tmp_path):
    table = _table(ROWS, tmp_path)
    out = table.to_arrow()
    table._arch.close()
    assert out.column("name").to_pylist() == [r["name"] for r in ROWS]


def test_duckdb_queries_to_arrow(tmp_path):
    arrow = _table(ROWS, tmp_path).to_arrow()  # noqa: F841 - duckdb reads it by name
    got = duckdb.sql("select count(*), sum(id) from arrow where flag and name is not null")
    expected = [r for r in ROWS if r["flag"] and r["name"] is not None]
    assert got.fetchall() == [(len(expected), sum(r["id"] for r in expected))]


def test_to_pandas_matches_arrow(tmp_path):
    table = _table(ROWS, tmp_path)
    pd.testing.assert_frame_equal(table.to_pandas(), table.to_arrow().to_pandas())


def test_to_polars_matches_arrow(tmp_path):
    table = _table(ROWS, tmp_path)
    assert table.to_polars().equals(pl.from_arrow(table.to_arrow()))


def test_mixed_column_refused_naming_it():
    rows = [{"ok": i, "mixed": i if i % 2 else "s"} for i in range(10)]
    with pytest.raises(bfa.UnsupportedTypeError, match="'mixed'"):
        _table(rows).to_arrow()


def test_lone_surrogate_refused_naming_the_column():
    rows = [{"s": "a\ud800" if i == 3 else "b"} for i in range(10)]
    with pytest.raises(bfa.UnsupportedTypeError, match="'s'.*surrogate"):
        _table(rows).column("s", arrow=True)


def _column_desc(buf, c=0):
    arch = bfa.Archive.from_buffer(buf)
    return arch.root._info().cols[c]


def test_invalid_utf8_is_an_archive_error():
    buf = bytearray(bfa.dumps([{"s": "abc"} for _ in range(10)]))
    blob_at = _column_desc(bytes(buf))[4]
    buf[blob_at] = 0xFF
    with pytest.raises(bfa.ArchiveError, match="UTF-8"):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.to_arrow()


def test_offset_inside_a_character_is_an_archive_error():
    # the blob stays valid UTF-8 as a whole; string 5 starts inside the
    # two bytes of "é": damage, not a lone surrogate
    buf = bytearray(bfa.dumps([{"s": "é"} for _ in range(10)]))
    offsets_at = _column_desc(bytes(buf))[2]
    buf[offsets_at + 8 * 5:offsets_at + 8 * 6] = (11).to_bytes(8, "little")
    with pytest.raises(bfa.ArchiveError, match="string 5 of column 's' starts inside a UTF-8"):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.column("s", arrow=True)


def test_string_offsets_past_the_blob_are_an_archive_error():
    buf = bytearray(bfa.dumps([{"s": "abc"} for _ in range(10)]))
    offsets_at = _column_desc(bytes(buf))[2]
    buf[offsets_at + 8 * 5:offsets_at + 8 * 6] = (10 ** 6).to_bytes(8, "little")
    with pytest.raises(bfa.ArchiveError, match="string offsets"):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.to_arrow()


@pytest.mark.parametrize("rows", [[{"x": None if i == 2 else i} for i in range(10)],
                                  [{"x": None if i == 2 else "s"} for i in range(10)]])
def test_null_mask_byte_other_than_one_is_an_archive_error(rows):
    buf = bytearray(bfa.dumps(rows))
    kind, _, r0, _, r1, _, r2, _ = _column_desc(bytes(buf))
    mask_at = r2 if kind == F.COL_STR else r1
    assert buf[mask_at + 2] == 1
    buf[mask_at + 2] = 7
    with pytest.raises(bfa.ArchiveError, match="null mask"):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.to_arrow()


def test_bool_byte_other_than_one_is_an_archive_error():
    buf = bytearray(bfa.dumps([{"b": True} for _ in range(10)]))
    buf[_column_desc(bytes(buf))[2] + 4] = 2
    with pytest.raises(bfa.ArchiveError, match="bool column"):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.to_arrow()


KEYS = ("i", "f", "b", "s", "t", "d")
row_sets = st.lists(st.tuples(
    st.integers(-(1 << 63), (1 << 63) - 1) | st.none(),
    st.floats(allow_nan=False) | st.none(),
    st.booleans() | st.none(),
    st.text(st.characters(exclude_categories=("Cs",))) | st.none(),
    st.lists(st.text(max_size=3), max_size=3),
    st.datetimes() | st.none(),
).map(lambda cells: dict(zip(KEYS, cells))), min_size=4, max_size=40)


@settings(max_examples=60, deadline=None)
@given(row_sets)
def test_to_arrow_round_trips_typed_columns(rows):
    table = _table(rows)
    assert isinstance(table, bfa.ArchivedTable)
    for name, (kind, *_) in zip(KEYS, table._info().cols):
        if kind != F.COL_SLOTS:  # SLOTS: stored cell by cell (e.g. all None), refused
            assert table.column(name, arrow=True).to_pylist() == [r[name] for r in rows]


def test_missing_pyarrow_names_the_extra():
    code = ("import sys; sys.modules['pyarrow'] = None; import bfast_archive as bfa\n"
            "t = bfa.Archive.from_buffer(bfa.dumps([{'a': 1}] * 4)).root\n"
            "try:\n    t.to_arrow()\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pyarrow" in out.stdout and "bfast-archive[frames]" in out.stdout
