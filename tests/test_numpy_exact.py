"""NumPy values come back exactly (type, dtype, bytes) or are refused with
UnsupportedTypeError naming their path: string scalars with trailing NULs,
C long long scalars, structured dtypes with titles or align=True, dtype
metadata that is JSON data (format 1.1 descriptors); other metadata is
refused."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bfast_archive as bfa
from tests.support.format_helpers import fix_checksums, read_header

COMPRESSIONS = [None, "lz4"]


def _round(value, compression=None):
    return bfa.loads(bfa.dumps(value, compression=compression))


def _minor(value) -> int:
    return read_header(bfa.dumps(value))["minor"]


# -- string scalars -------------------------------------------------------------

@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("value", [np.bytes_(b"ab\x00"), np.bytes_(b"\x00"), np.bytes_(b"\x00a\x00\x00"),
                                   np.str_("ab\x00"), np.str_("\x00"), np.str_("a\ud800\x00\x00")])
def test_string_scalar_keeps_trailing_nuls_and_itemsize(value, compression):
    back = _round(value, compression)
    assert type(back) is type(value)
    assert back.dtype == value.dtype and back.tobytes() == value.tobytes()


@given(st.binary(max_size=40))
def test_bytes_scalars_round_trip_exactly(raw):
    value = np.bytes_(raw)
    back = _round(value)
    assert type(back) is np.bytes_ and back.dtype == value.dtype
    assert back.tobytes() == value.tobytes()


@given(st.text(max_size=20))
def test_str_scalars_round_trip_exactly(text):
    value = np.str_(text)
    back = _round(value)
    assert type(back) is np.str_ and back.dtype == value.dtype and str(back) == str(value)


def test_str_scalar_above_the_unicode_range_is_an_archive_error():
    data = bytearray(bfa.dumps(np.str_("ab")))
    at = data.index("b".encode("utf-32-le"))
    data[at:at + 4] = struct.pack("<I", 0x110000)
    with pytest.raises(bfa.ArchiveError, match="U\\+10FFFF"):
        bfa.loads(fix_checksums(bytes(data)))


# -- C long long ---------------------------------------------------------------------

@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("value", [np.longlong(-5), np.ulonglong(2 ** 64 - 1), np.int64(3),
                                   np.uint64(4), np.intc(5), np.int_(6)])
def test_integer_scalar_keeps_its_exact_type(value, compression):
    back = _round(value, compression)
    assert type(back) is type(value) and back.dtype.char == value.dtype.char and back == value


def test_longlong_arrays_keep_their_type_char():
    a = np.arange(4, dtype=np.longlong)
    back = _round({"a": a, "s": [np.ulonglong(1)]})
    assert back["a"].dtype.char == a.dtype.char and (back["a"] == a).all()
    assert type(back["s"][0]) is np.ulonglong


@pytest.mark.skipif(np.dtype(np.longlong).char == np.dtype("<i8").char,
                    reason="long long is the platform's int64")
def test_longlong_needs_format_1_1_and_int64_stays_1_0():
    assert _minor(np.longlong(1)) == 1
    assert _minor({"x": [np.int64(1), np.zeros(2, "<i8"), np.zeros(1, [("a", "<i4")])]}) == 0


# -- structured dtypes ---------------------------------------------------------------

TITLED = np.dtype([(("the title", "a"), "<i4"), ("b", "<f8")])
ALIGNED = np.dtype([("a", "u1"), ("b", "<i8")], align=True)
BOTH = np.dtype([(("T", "a"), "u1"), ("b", "<i8")], align=True)
NESTED = np.dtype([("outer", BOTH), ("plain", [("x", "<i2")]), ("sub", TITLED, (2,)),
                   (("t2", "last"), "|S3")])


def _exact_dtype(a: np.dtype, b: np.dtype) -> bool:
    return (a == b and a.isalignedstruct == b.isalignedstruct and a.fields == b.fields
            and all(_exact_dtype(a.fields[n][0], b.fields[n][0]) for n in a.names or ()))


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("dt", [TITLED, ALIGNED, BOTH, NESTED], ids=["titles", "aligned",
                                                                     "both", "nested"])
def test_structured_array_keeps_titles_and_alignment(dt, compression):
    a = np.zeros(5000, dt)  # lz4: large enough to be an external payload
    a.view(np.uint8)[:] = np.arange(a.nbytes) % 251
    back = _round({"a": a}, compression)["a"]
    assert _exact_dtype(back.dtype, dt)
    assert back.tobytes() == a.tobytes()


def test_field_is_read_by_its_title():
    a = np.array([(1, 2.5)], TITLED)
    back = _round(a)
    assert back["the title"][0] == 1 and back["a"][0] == 1


@pytest.mark.parametrize("dt", [TITLED, ALIGNED, NESTED])
def test_structured_scalar_keeps_titles_and_alignment(dt):
    value = np.zeros(1, dt)[0]
    back = _round([value])[0]
    assert type(back) is np.void and _exact_dtype(back.dtype, dt)


def test_titles_and_alignment_need_format_1_1():
    assert _minor(np.zeros(1, TITLED)) == 1 and _minor(np.zeros(1, ALIGNED)) == 1
    assert _minor(np.zeros(1, [("a", "u1"), ("b", "<i8")])) == 0


META = {"unit": "m", "scale": [1, 2.5, None, True, {"note": "é"}]}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("dt", [
    np.dtype("<f8", metadata=META),
    np.dtype([("a", np.dtype("<i4", metadata={"k": 1})), ("b", "<f8")], align=True),
    np.dtype([("x", np.dtype("<i2", metadata={"z": [1]}), (2,))]),
    np.dtype(np.dtype([(("t", "a"), "<i4")]), metadata={}),
], ids=["simple", "field", "subarray-base", "struct-empty"])
def test_json_dtype_metadata_is_kept(dt, compression):
    a = np.zeros(20000, dt)  # lz4: an external payload
    back = _round({"a": a, "s": a[0]}, compression)
    # (a scalar of a simple dtype is a plain np.float64: its dtype has no metadata)
    for got, want in ((back["a"].dtype, dt), (back["s"].dtype, a[0].dtype)):
        assert _exact_dtype(got, want) and got.metadata == want.metadata
        for name in want.names or ():
            assert got.fields[name][0].base.metadata == want.fields[name][0].base.metadata
    assert _minor(a) == 1


@pytest.mark.parametrize("meta", [{"t": (1, 2)}, {1: "int key"}, {"f": float("nan")},
                                  {"o": object()}, {"b": b"bytes"}])
def test_non_json_dtype_metadata_is_refused_with_its_path(meta):
    dt = np.dtype("<f8", metadata=meta)
    with pytest.raises(bfa.UnsupportedTypeError, match="metadata") as info:
        bfa.dumps({"runs": [np.zeros(2, dt)]})
    assert info.value.path == "runs[0]"
    inner = np.dtype([("a", np.dtype("<i4", metadata=meta))])
    with pytest.raises(bfa.UnsupportedTypeError, match="metadata") as info:
        bfa.dumps({"s": np.zeros(1, inner)[0]})
    assert info.value.path == "s"


@pytest.mark.parametrize("text", ['{"dtype":"<f8","metadata":[1]}',
                                  '{"dtype":{"dtype":"<f8","metadata":{}},"metadata":{}}',
                                  '{"dtype":"<f8","metadata":{"a":NaN}}',
                                  '{"dtype":"<f8"}'])
def test_malformed_metadata_descriptor_is_refused(text):
    from bfast_archive.dtypes import descr_to_dtype

    with pytest.raises(bfa.ArchiveError, match="dtype descriptor"):
        descr_to_dtype(text.encode())


@pytest.mark.parametrize("extra", ['"titles":[null]', '"aligned":false', '"titles":[1]',
                                   '"titles":["x","y"]', '"metadata":{}'])
def test_malformed_1_1_descriptor_is_refused(extra):
    from bfast_archive.dtypes import descr_to_dtype

    text = '{"names":["x"],"formats":["<i8"],"offsets":[0],"itemsize":8,%s}' % extra
    with pytest.raises(bfa.ArchiveError, match="dtype descriptor"):
        descr_to_dtype(text.encode())


# -- empty EXTERNAL arrays -----------------------------------------------------------

def test_external_empty_array_in_an_uncompressed_archive_is_refused():
    data = bytearray(bfa.dumps(np.zeros((0, 3))))
    node = read_header(bytes(data))["root_payload"]
    struct.pack_into("<I", data, node + 20, 2)  # flags: EXTERNAL
    bad = fix_checksums(bytes(data))
    with pytest.raises(bfa.ArchiveError, match="uncompressed"):
        bfa.loads(bad)
    with pytest.raises(bfa.ArchiveError, match="uncompressed"):
        bfa.Archive.from_buffer(bad).root


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_empty_arrays_round_trip(compression):
    back = _round({"e": np.zeros((0, 3), "<f4"), "f": np.zeros((4, 0), ">i2")}, compression)
    assert back["e"].shape == (0, 3) and back["e"].dtype == np.dtype("<f4")
    assert back["f"].shape == (4, 0) and back["f"].dtype == np.dtype(">i2")
