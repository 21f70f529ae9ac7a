"""Data frames in and out (format 1.1 FRAME nodes, bfast_archive/frames.py):
pyarrow Tables and RecordBatches, pandas and polars DataFrames come back as
the same kind of object, equal with their types, column order and index;
their columns are a record table read without copies; what cannot come back
exactly is refused naming the column; damaged frame nodes are reported."""
import datetime as dt
import struct

import numpy as np
import pandas as pd
import polars as pl
import polars.testing
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bfast_archive as bfa
from bfast_archive import format as F
from tests.support.format_helpers import fix_checksums, rewrite_header  # keep the checksums valid

N = 6
ARROW_COLUMNS = {
    "i8": pa.array([1, -2, None, 127, -128, 0], pa.int8()),
    "i16": pa.array([1, -2, None, 3, 4, 5], pa.int16()),
    "i32": pa.array([1, -2, None, 3, 4, 5], pa.int32()),
    "i64": pa.array([1, -2, None, 1 << 62, 4, 5], pa.int64()),
    "u8": pa.array([1, 2, None, 255, 0, 5], pa.uint8()),
    "u16": pa.array([1, 2, None, 3, 4, 5], pa.uint16()),
    "u32": pa.array([1, 2, None, 3, 4, 5], pa.uint32()),
    "u64": pa.array([1, 2, None, (1 << 64) - 1, 4, 5], pa.uint64()),
    "f16": pa.array(np.array([1, 2, 0, 3, 4, 5], np.float16)),
    "f32": pa.array([1.5, -0.0, None, 3, float("inf"), 5], pa.float32()),
    "f64": pa.array([1.5, -0.0, None, float("-inf"), 4, 5], pa.float64()),
    "bool": pa.array([True, False, None, True, True, False]),
    "str": pa.array(["a", "", None, "é\0", "x" * 100, "z"]),
    "large_str": pa.array(["a", "", None, "é", "y", "z"], pa.large_string()),
    "str_view": pa.array(["a", "", None, "é", "y" * 20, "z"], pa.string_view()),
    "bin": pa.array([b"a", b"", None, b"\0\xff", b"y", b"z"], pa.binary()),
    "large_bin": pa.array([b"a", b"", None, b"\0", b"y", b"z"], pa.large_binary()),
    "date32": pa.array([0, -1, None, 20000, 1, 2], pa.date32()),
    "ts_s": pa.array([0, -1, None, 1, 2, 3], pa.timestamp("s")),
    "ts_ms_tz": pa.array([0, -1, None, 1, 2, 3], pa.timestamp("ms", "Europe/Paris")),
    "ts_us": pa.array([0, -1, None, 1, 2, 3], pa.timestamp("us")),
    "ts_ns_utc": pa.array([0, -1, None, 1 << 62, 2, 3], pa.timestamp("ns", "UTC")),
    "dur_s": pa.array([0, -1, None, 1, 2, 3], pa.duration("s")),
    "dur_ns": pa.array([0, -1, None, 1, 2, 3], pa.duration("ns")),
    "dict": pa.array(["b", "a", None, "b", "c", "a"]).dictionary_encode(),
    "dict_ordered": pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 1, 0, 0], pa.int8()),
                                                   pa.array([5, 7]), ordered=True),
    "null": pa.nulls(N),
}
ARROW = pa.table(ARROW_COLUMNS, metadata={"origin": "test"})


def _back(value, **kw):
    return bfa.loads(bfa.dumps(value, **kw))


def _inside(arch, buf) -> bool:
    whole = np.frombuffer(arch._snap.mv, np.uint8)
    return buf.size > 0 and np.shares_memory(np.frombuffer(buf, np.uint8), whole)


@pytest.mark.parametrize("name", sorted(ARROW_COLUMNS))
def test_arrow_column_type_round_trips(name):
    table = pa.table({name: ARROW_COLUMNS[name]})
    back = _back(table)
    assert back.equals(table, check_metadata=True), (back.schema, table.schema)


def test_arrow_table_round_trips_with_schema_metadata():
    back = _back(ARROW)
    assert type(back) is pa.Table and back.equals(ARROW, check_metadata=True)


def test_record_batch_comes_back_as_record_batch():
    batch = ARROW.to_batches()[0]
    back = _back(batch)
    assert type(back) is pa.RecordBatch and back.equals(batch, check_metadata=True)


def test_sliced_and_chunked_tables_round_trip():
    chunked = pa.concat_tables([ARROW.slice(1, 3), ARROW.slice(0, 2)])
    assert _back(chunked).equals(chunked, check_metadata=True)


def test_empty_table_round_trips():
    empty = ARROW.slice(0, 0)
    assert _back(empty).equals(empty, check_metadata=True)


def test_compressed_archive_round_trips_frames():
    assert _back(ARROW, compression="lz4").equals(ARROW, check_metadata=True)


def test_frame_nested_in_a_dict_round_trips():
    back = _back({"t": ARROW, "n": 1})
    assert back["n"] == 1 and back["t"].equals(ARROW, check_metadata=True)


def test_frames_are_written_as_version_1_1_and_other_content_as_1_0():
    assert struct.unpack_from("<HH", bfa.dumps(ARROW), 8) == (1, 1)
    assert struct.unpack_from("<HH", bfa.dumps([{"a": 1}] * 5), 8) == (1, 0)


def test_frame_columns_share_the_mapping(tmp_path):
    path = tmp_path / "f.bfa"
    bfa.dump(pa.table({"i": pa.array(range(1000), pa.int64()),
                       "f": pa.array(np.arange(1000) / 3),
                       "s": pa.array([str(i) for i in range(1000)], pa.large_string()),
                       "b": pa.array([bytes([i % 256]) for i in range(1000)], pa.large_binary()),
                       "i32": pa.array(range(1000), pa.int32())}), path)
    with bfa.Archive.open(path) as arch:
        out = arch.root.to_arrow()
        for name in ("i", "f", "i32"):
            assert _inside(arch, out.column(name).chunk(0).buffers()[1]), name
        for name in ("s", "b"):
            _, offsets, blob = out.column(name).chunk(0).buffers()
            assert _inside(arch, offsets) and _inside(arch, blob), name


def test_frame_view_reads_cells_and_numpy_columns():
    view = bfa.Archive.from_buffer(bfa.dumps(ARROW)).root
    assert isinstance(view, bfa.ArchivedFrame) and isinstance(view, bfa.ArchivedTable)
    assert view.frame_kind == "pyarrow.Table"
    assert view[3]["ts_ns_utc"] == np.datetime64(1 << 62, "ns")
    assert view[0]["dur_s"] == np.timedelta64(0, "s") and view[1]["bin"] == b""
    assert view[2]["i32"] is None and view[3]["u64"] == (1 << 64) - 1
    col = view.column("i16")
    assert col.dtype == np.dtype("<i2") and col.mask.tolist() == [0, 0, 1, 0, 0, 0]
    dates = view.column("date32")
    assert dates.dtype == np.dtype("M8[D]") and dates[1] == np.datetime64("1969-12-31")
    assert view.column("ts_ns_utc").dtype == np.dtype("M8[ns]")


def test_frame_rows_to_python_hold_typed_cells():
    rows = bfa.Archive.from_buffer(bfa.dumps(pa.table({"u": pa.array([1, None], pa.uint8()),
                                                      "b": pa.array([b"x", None])}))).root
    assert [r.to_python() for r in rows] == [{"u": 1, "b": b"x"}, {"u": None, "b": None}]


def test_unsupported_arrow_type_is_refused_naming_the_column():
    table = pa.table({"ok": [1, 2], "nested": pa.array([[1], [2]])})
    with pytest.raises(bfa.UnsupportedTypeError, match="'nested'"):
        bfa.dumps(table)


def test_duplicate_column_names_are_refused():
    with pytest.raises(bfa.UnsupportedTypeError, match="duplicate"):
        bfa.dumps(pa.table([pa.array([1]), pa.array([2])], names=["a", "a"]))


def _large_strings(offsets, blob, typ=pa.large_string()):
    """A large_string array straight from its buffers (Arrow checks only their sizes)."""
    raw = b"".join(o.to_bytes(8, "little", signed=True) for o in offsets)
    return pa.Array.from_buffers(typ, len(offsets) - 1, [None, pa.py_buffer(raw), pa.py_buffer(blob)])


@pytest.mark.parametrize("offsets, blob", [([0, 1, 3], b"a\xff\xfe"),  # not UTF-8
                                           ([0, 1, 2], "é".encode())])  # cuts a character
def test_arrow_strings_of_invalid_utf8_are_refused_naming_the_column(offsets, blob):
    with pytest.raises(bfa.UnsupportedTypeError, match="'s'.*UTF8"):
        bfa.dumps(pa.table({"s": _large_strings(offsets, blob)}))


@pytest.mark.parametrize("typ", [pa.large_string(), pa.large_binary()])
def test_arrow_string_offsets_out_of_order_are_refused_naming_the_column(typ):
    with pytest.raises(bfa.UnsupportedTypeError, match="'s'.*out of order"):
        bfa.dumps(pa.table({"s": _large_strings([0, 3, 1, 3], b"abc", typ)}))


@pytest.mark.parametrize("start", [0, 1, 2])
def test_sliced_string_columns_are_stored_from_their_first_byte(start):
    strings = pa.array(["é", "ab", "", None, "xyz\0", "ü" * 3], pa.large_string())
    table = pa.table({"s": strings, "b": strings.cast(pa.large_binary())}).slice(start, 3)
    assert _back(table).equals(table)


arrow_ints = st.sampled_from([pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint32()])


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_random_arrow_tables_round_trip(data):
    n = data.draw(st.integers(0, 30))
    typ = data.draw(arrow_ints)
    lo, hi = (0, 2 ** typ.bit_width - 1) if typ == pa.uint32() else \
        (-(2 ** (typ.bit_width - 1)), 2 ** (typ.bit_width - 1) - 1)
    ints = data.draw(st.lists(st.integers(lo, hi) | st.none(), min_size=n, max_size=n))
    texts = data.draw(st.lists(st.text() | st.none(), min_size=n, max_size=n))
    floats = data.draw(st.lists(st.floats(allow_nan=False) | st.none(), min_size=n, max_size=n))
    table = pa.table({"i": pa.array(ints, typ), "s": pa.array(texts, pa.string()),
                      "f": pa.array(floats, pa.float64())})
    if any("\ud800" <= ch <= "\udfff" for t in texts if t for ch in t):
        return  # Arrow strings cannot hold lone surrogates (pa.array refuses them)
    assert _back(table).equals(table)


# -- pandas -------------------------------------------------------------------------

PANDAS = {
    "int64": pd.DataFrame({"x": np.arange(N)}),
    "int8": pd.DataFrame({"x": np.arange(N, dtype="i1")}),
    "uint64": pd.DataFrame({"x": np.array([0, 1, 2, 3, 4, (1 << 64) - 1], "u8")}),
    "float32": pd.DataFrame({"x": np.arange(N, dtype="f4")}),
    "float64 with NaN": pd.DataFrame({"x": [1.0, np.nan, -np.nan, np.inf, -0.0, 2.0]}),
    "bool": pd.DataFrame({"x": [True, False] * 3}),
    "Int64": pd.DataFrame({"x": pd.array([1, None, 3, 4, 5, 6], "Int64")}),
    "boolean": pd.DataFrame({"x": pd.array([True, None, False, True, True, False], "boolean")}),
    "string": pd.DataFrame({"x": pd.array(["a", None, "c", "d", "é", ""], "string")}),
    "default str": pd.DataFrame({"x": ["a", None, "c", "d", "é", ""]}),
    "category": pd.DataFrame({"x": pd.Categorical(["a", "b", "a", None, "c", "c"],
                                                  categories=["c", "b", "a"], ordered=True)}),
    "category of ints": pd.DataFrame({"x": pd.Categorical([1, 2, 1, None, 2, 2])}),
    "datetime64[ns]": pd.DataFrame({"x": np.array([0, -1, 1, 10 ** 18, 2 ** 62, -(2 ** 62)],
                                                  "M8[ns]")}),
    "datetime64[ns] with NaT": pd.DataFrame({"x": pd.to_datetime(["2020-01-01", None] * 3)}),
    "datetime64[ns, tz]": pd.DataFrame({"x": pd.to_datetime(["2020-01-01", None, "2021-06-01"] * 2)
                                        .tz_localize("Europe/Paris")}),
    "datetime64[ns, UTC]": pd.DataFrame({"x": pd.date_range("2020", periods=N, freq="h",
                                                            tz="UTC")}),
    "timedelta64": pd.DataFrame({"x": pd.to_timedelta([1, 2, None, 4, 5, -6], unit="ns")}),
    "object str": pd.DataFrame({"x": np.array(["a", None, "b", "", "d", "é"], object)}),
    "object bytes": pd.DataFrame({"x": np.array([b"a", None, b"\0", b"", b"d", b"e"], object)}),
    "object None": pd.DataFrame({"x": np.array([None] * N, object)}),
    "int64[pyarrow]": pd.DataFrame({"x": pd.array([1, None, 3, 4, 5, 6], "int64[pyarrow]")}),
    "string ArrowDtype": pd.DataFrame({"x": pd.array(["a", None, "c", "d", "e", "f"],
                                                     pd.ArrowDtype(pa.string()))}),
    "timestamp ArrowDtype": pd.DataFrame({"x": pd.array([1, None, 3, 4, 5, 6],
                                                        pd.ArrowDtype(pa.timestamp("us", "UTC")))}),
    "named index": pd.DataFrame({"x": range(N)}, index=pd.Index(list("abcdef"), name="key")),
    "int index": pd.DataFrame({"x": range(N)}, index=[5, 3, 1, 2, 9, 0]),
    "RangeIndex with step": pd.DataFrame({"x": range(N)},
                                         index=pd.RangeIndex(10, 10 + 2 * N, 2, name="r")),
    "MultiIndex": pd.DataFrame({"x": range(4)}, index=pd.MultiIndex.from_product(
        [["a", "b"], [1, 2]], names=["l", None])),
    "object index": pd.DataFrame({"x": range(3)}, index=pd.Index(["a", "", "c"], dtype=object)),
    "MultiIndex with an object level": pd.DataFrame({"x": range(2)}, index=pd.MultiIndex.from_arrays(
        [pd.Index(["a", "b"], dtype=object), [1, 2]])),
    "DatetimeIndex with freq": pd.DataFrame({"x": range(N)}, index=pd.date_range(
        "2020", periods=N, tz="UTC", name="t")),
    "empty": pd.DataFrame({"x": pd.Series([], dtype="int64")}),
    "column order": pd.DataFrame({"b": [1, 2], "a": ["x", "y"], "c": [0.5, 1.5]}),
    "floats among others": pd.DataFrame({"f": [0.5, np.nan], "a": ["x", "y"], "g": [1.5, -0.0],
                                         "i": [1, 2]}, index=pd.Index([2.5, 1.0], name="fi")),
}


@pytest.mark.parametrize("name", list(PANDAS))
def test_pandas_dtype_round_trips_exactly(name):
    df = PANDAS[name]
    back = _back(df)
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert list(back.columns) == list(df.columns)


MIXED_FLOATS = pd.DataFrame({"f16": np.arange(N, dtype="f2"), "i": np.arange(N),
                             "f64": [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0], "s": list("abcdef"),
                             "f32": np.arange(N, dtype="f4")}, index=pd.Index(list("uvwxyz"), name="k"))


@pytest.mark.parametrize("name", list(PANDAS) + ["mixed floats", "only floats"])
def test_pandas_frame_gets_pyarrows_schema_and_metadata(name):
    from bfast_archive.frames import _pandas_to_arrow

    df = {"mixed floats": MIXED_FLOATS, "only floats": MIXED_FLOATS[["f64", "f32"]]}.get(name)
    df = PANDAS[name] if df is None else df
    assert _pandas_to_arrow(df).schema.equals(pa.Table.from_pandas(df).schema, check_metadata=True)


def test_arrow_float_nan_bits_survive():
    values = np.array([np.nan, -np.nan, 1.0], "f8")
    values[0:1].view("u8")[0] |= 0xABCDE  # a NaN payload
    back = _back(pa.table({"x": values})).column("x").chunk(0)
    assert np.frombuffer(back.buffers()[1], "u8")[:3].tolist() == values.view("u8").tolist()


def test_pandas_float_nan_bits_survive():
    values = np.array([np.nan, -np.nan, 1.0], "f8")
    values[0:1].view("u8")[0] |= 0xABCDE  # a NaN payload
    back = _back(pd.DataFrame({"x": values}))
    assert back["x"].to_numpy().view("u8").tolist() == values.view("u8").tolist()


def test_pandas_load_from_a_file_is_independent_of_it(tmp_path):
    path = tmp_path / "df.bfa"
    bfa.dump(PANDAS["int64"], path)
    back = bfa.load(path)
    bfa.dump(pd.DataFrame({"x": np.arange(N) + 100}), path)
    pd.testing.assert_frame_equal(back, PANDAS["int64"], check_exact=True)


@pytest.mark.parametrize("df, match", [
        (pd.DataFrame({"ok": [1, 2], "bad": pd.Series([1, "a"], dtype=object)}), "'bad'"),
        (pd.DataFrame({"ok": [1, 2], "bad": pd.Series(["a", b"b"], dtype=object)}), "'bad'"),
        (pd.DataFrame({"ok": [1, 2], "bad": pd.Series(["a", float("nan")], dtype=object)}), "'bad'"),
    (pd.DataFrame({0: [1, 2]}), "column names must be str"),
    (pd.DataFrame({"x": [1, 2]}, index=pd.Index([1, "a"], dtype=object)), "index level 0"),
    (pd.DataFrame({"p": pd.period_range("2020", periods=3, freq="M")}), "'p'"),
    (pd.DataFrame({"c": np.array([1j, 2, 3])}), "column c"),
])
def test_pandas_columns_without_exact_form_are_refused(df, match):
    with pytest.raises(bfa.UnsupportedTypeError, match=match):
        bfa.dumps(df)


def test_to_pandas_of_a_pandas_frame_view_is_the_frame():
    view = bfa.Archive.from_buffer(bfa.dumps(PANDAS["named index"])).root
    pd.testing.assert_frame_equal(view.to_pandas(), PANDAS["named index"], check_exact=True)


def _bools_frame(nbool, index=None):
    cols = {f"b{i}": np.arange(N) % (i + 2) == 0 for i in range(nbool)}
    cols = {"x": np.arange(N), **cols, "s": list("abcdef"), "last": [True] * N,
            "nb": pd.array([True, False] * 3, "boolean")}  # (pandas' nullable bool: no nulls)
    df = pd.DataFrame(cols, index=index)
    df.columns.name = "cols"
    return df


BOOL_FRAMES = {"bools among others": _bools_frame(2),
               "bools and a named index": _bools_frame(1, pd.Index(list("uvwxyz"), name="k")),
               "more bools than are copied alone": _bools_frame(20),
               "only bools": pd.DataFrame({"a": [True, False], "b": [False, False]})}


@pytest.mark.parametrize("name", list(BOOL_FRAMES))
def test_to_pandas_of_a_frame_view_with_bool_columns_is_the_frame(name):
    df = BOOL_FRAMES[name]
    back = bfa.Archive.from_buffer(bfa.dumps(df)).root.to_pandas()
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert list(back.columns) == list(df.columns)


def test_bool_columns_of_to_pandas_are_writable_copies():
    arch = bfa.Archive.from_buffer(bfa.dumps(BOOL_FRAMES["bools among others"]))
    back = arch.root.to_pandas()
    back.loc[0, "b1"] = not back.loc[0, "b1"]
    assert arch.root.to_pandas().loc[0, "b1"] == BOOL_FRAMES["bools among others"].loc[0, "b1"]


@pytest.mark.parametrize("table", [
    pa.table({"b": [True, False, True], "n": [True, None, False], "i": [1, 2, 3]}),
    pa.table({"only": [True, False, True]})], ids=["among others", "only bools"])
def test_to_pandas_of_an_arrow_frame_view_with_bools_is_pyarrows(table):
    view = bfa.Archive.from_buffer(bfa.dumps(table)).root
    pd.testing.assert_frame_equal(view.to_pandas(), table.to_pandas(), check_exact=True)


# -- polars -------------------------------------------------------------------------

POLARS = pl.DataFrame({
    "i": [1, None, 3],
    "u8": pl.Series([1, 2, 255], dtype=pl.UInt8),
    "f32": pl.Series([1.5, None, float("nan")], dtype=pl.Float32),
    "s": ["x", "é", None],
    "b": [b"x", None, b"\0"],
    "bool": [True, False, None],
    "cat": pl.Series(["a", "b", "a"], dtype=pl.Categorical),
    "date": [dt.date(2020, 1, 1), None, dt.date(1, 1, 1)],
    "ts": pl.Series([dt.datetime(2020, 1, 1)] * 3).dt.replace_time_zone("Europe/Paris"),
    "ts_ns": pl.Series([dt.datetime(2020, 1, 1), None, dt.datetime(1970, 1, 1)]).cast(
        pl.Datetime("ns")),
    "dur": [dt.timedelta(days=1), None, dt.timedelta(microseconds=-1)],
    "null": pl.Series([None, None, None], dtype=pl.Null),
})


def test_polars_frame_round_trips():
    back = _back(POLARS)
    assert type(back) is pl.DataFrame
    polars.testing.assert_frame_equal(back, POLARS)


def test_polars_enum_round_trips():
    df = pl.DataFrame({"e": pl.Series(["a", "b", "a"], dtype=pl.Enum(["a", "b", "c"]))})
    polars.testing.assert_frame_equal(_back(df), df)


def test_polars_type_without_arrow_form_is_an_unsupported_type_error():
    with pytest.raises(bfa.UnsupportedTypeError):
        bfa.dumps(pl.DataFrame({"i": pl.Series([1], dtype=pl.Int128)}))


def test_polars_nested_column_is_refused_naming_it():
    with pytest.raises(bfa.UnsupportedTypeError, match="'lst'"):
        bfa.dumps(pl.DataFrame({"ok": [1], "lst": [[1, 2]]}))


# -- damaged frames -----------------------------------------------------------------

def _frame_bytes():
    buf = bfa.dumps(pa.table({"a": pa.array([1, 2, 3, 4], pa.int32()),
                              "b": pa.array([b"x", b"y", b"z", b""]),
                              "d": pa.array(["p", "q", "p", "q"]).dictionary_encode()}))
    return bytearray(buf), bfa.Archive.from_buffer(buf).root._off


def _desc_at(table_off: int, c: int) -> int:
    return table_off + F.TABLE_HEADER_SIZE + F.COLUMN.size * c


@pytest.mark.parametrize("code", [0, 19, 255])
def test_fixed_column_with_unknown_type_code_is_refused(code):
    buf, off = _frame_bytes()
    at = _desc_at(off, 0) + 4
    buf[at:at + 4] = struct.pack("<I", code << F.COL_TYPE_SHIFT)
    with pytest.raises(bfa.ArchiveError):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root[0]["a"]


def test_type_bits_on_a_1_0_kind_are_refused():
    buf = bytearray(bfa.dumps([{"a": i} for i in range(5)]))
    off = bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root._off
    at = _desc_at(off, 0) + 4
    buf[at:at + 4] = struct.pack("<I", 3 << F.COL_TYPE_SHIFT)
    with pytest.raises(bfa.ArchiveError):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root[0]["a"]


def test_fixed_column_region_of_the_wrong_length_is_refused():
    buf, off = _frame_bytes()
    at = _desc_at(off, 0) + 16  # region 0 length: 4 rows x 4 bytes
    assert struct.unpack_from("<Q", buf, at)[0] == 16
    buf[at:at + 8] = struct.pack("<Q", 32)
    with pytest.raises(bfa.ArchiveError):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.to_arrow()


def test_binary_offsets_past_the_blob_are_refused():
    buf, off = _frame_bytes()
    offsets_at = struct.unpack_from("<Q", buf, _desc_at(off, 1) + 8)[0]
    buf[offsets_at + 16:offsets_at + 24] = struct.pack("<Q", 1000)
    with pytest.raises(bfa.ArchiveError):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.to_arrow()
    with pytest.raises(bfa.ArchiveError):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root[1]["b"]


def test_dictionary_index_out_of_range_is_refused():
    buf, off = _frame_bytes()
    codes_at = struct.unpack_from("<Q", buf, _desc_at(off, 2) + 8)[0]
    buf[codes_at] = 9  # int32 codes: a code past the 2 values
    with pytest.raises(bfa.ArchiveError, match="'d'"):
        bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root.to_arrow()


def test_dictionary_index_out_of_range_is_refused_at_every_read():
    buf, off = _frame_bytes()
    codes_at = struct.unpack_from("<Q", buf, _desc_at(off, 2) + 8)[0]
    buf[codes_at] = 9
    root = bfa.Archive.from_buffer(fix_checksums(bytes(buf))).root
    for _ in range(2):  # (a check that failed is not remembered as passed)
        with pytest.raises(bfa.ArchiveError, match="'d'"):
            root.to_arrow()


def test_frame_slot_with_the_wrong_count_is_refused():
    buf = bytearray(bfa.dumps(ARROW))
    word = struct.unpack_from("<Q", buf, 24)[0]
    assert word & 0xFF == F.T_FRAME and word >> 8 == 3
    buf[24:32] = struct.pack("<Q", F.T_FRAME | 2 << 8)
    with pytest.raises(bfa.ArchiveError):
        bfa.Archive.from_buffer(rewrite_header(bytes(buf))).root


def test_frame_reads_after_the_same_file_was_opened_and_closed(tmp_path):
    path = tmp_path / "f.bfa"
    bfa.dump(ARROW, path)
    with bfa.Archive.open(path) as arch:
        arch.root.to_arrow()
    with bfa.Archive.open(path) as arch:  # archives of one file share caches
        assert arch.root.to_arrow().equals(ARROW, check_metadata=True)


def test_load_of_a_frame_without_pyarrow_names_the_extra(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "f.bfa"
    bfa.dump({"t": ARROW}, path)
    code = ("import sys; sys.modules['pyarrow'] = None; import bfast_archive as bfa\n"
            f"arch = bfa.Archive.open({str(path)!r})\n"
            "print(arch['t'][0]['i8'], arch['t'].frame_kind)\n"  # the body reads without Arrow
            f"try:\n    bfa.load({str(path)!r})\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "1 pyarrow.Table"
    assert "pyarrow" in out.stdout and "bfast-archive[frames]" in out.stdout


pandas_columns = st.sampled_from([
    lambda d, n: np.array(d.draw(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=n,
                                          max_size=n)), "i8"),
    lambda d, n: np.array(d.draw(st.lists(st.floats(width=32), min_size=n, max_size=n)), "f4"),
    lambda d, n: pd.array(d.draw(st.lists(st.integers(-100, 100) | st.none(), min_size=n,
                                          max_size=n)), "Int64"),
    lambda d, n: pd.array(d.draw(st.lists(st.booleans() | st.none(), min_size=n, max_size=n)),
                          "boolean"),
    lambda d, n: pd.array(d.draw(st.lists(st.text(st.characters(exclude_categories=("Cs",)))
                                          | st.none(), min_size=n, max_size=n)), "string"),
    lambda d, n: pd.Categorical(d.draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n,
                                                max_size=n))),
    lambda d, n: pd.to_datetime(np.array(d.draw(st.lists(st.integers(-(2 ** 62), 2 ** 62),
                                                         min_size=n, max_size=n)), "M8[ns]"))
    .tz_localize("UTC"),
])


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_pandas_frames_round_trip_exactly(data):
    n = data.draw(st.integers(0, 12))
    makers = data.draw(st.lists(pandas_columns, min_size=1, max_size=4))
    df = pd.DataFrame({f"c{i}": make(data, n) for i, make in enumerate(makers)})
    if data.draw(st.booleans()):
        df.index = pd.Index(data.draw(st.lists(st.text(max_size=3), min_size=n, max_size=n)),
                            dtype=object, name="k")
    pd.testing.assert_frame_equal(_back(df), df, check_exact=True)
