"""Round-trip properties over nested values of every type that must come back
exactly (the README's "Round-trips exactly" list).

- loads(dumps(x)) deep-equals x (types exact, floats bitwise, arrays by
  dtype + shape + contents + memory order);
- dumps is deterministic: the same bytes twice, the same bytes after a
  load/dump cycle, and the same bytes in other processes with other
  PYTHONHASHSEEDs (sets of strings iterate differently there);
- lazy access (Archive.from_buffer(b).root, walking the views) gives the same
  values, and to_python() of every view equals the corresponding input part.
"""
from __future__ import annotations

import datetime as dt
import decimal
import io
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import uuid

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import bfast_archive as bfa
from tests.support.strategies import (_X87, _float_from_bits, assert_deep_equal,
                                      assert_view_matches, values)

_N = settings.default.max_examples


# --------------------------------------------------------------------------
# properties


@given(values)
def test_loads_dumps_roundtrip(value):
    data = bfa.dumps(value)
    assert type(data) is bytes
    assert_deep_equal(bfa.loads(data), value)
    # any buffer-protocol object holding the bytes reads the same
    for buf in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        assert_deep_equal(bfa.loads(buf), value)


@given(values)
def test_lazy_views_match_input(value):
    data = bfa.dumps(value)
    with bfa.Archive.from_buffer(data) as arch:
        root = arch.root
        assert_view_matches(root, value)
        assert_deep_equal(arch.to_python(), value)
        if type(value) is dict:
            for key, part in value.items():
                assert_view_matches(arch[key], part, repr(key))


def _dtype_has_padding(dtype: np.dtype) -> bool:
    """Bytes that belong to no value and that the writer does not canonicalise:
    holes in a structured dtype, long doubles inside one or byte-swapped.
    NumPy leaves them uninitialised on copy. (A plain native long double
    array's padding is zeroed by the writer.)"""
    if dtype.subdtype is not None:
        return _dtype_has_padding(dtype.subdtype[0]) or dtype.subdtype[0].type in (
            np.longdouble, np.clongdouble)
    if dtype.names is None:
        return dtype.type in (np.longdouble, np.clongdouble) and not dtype.isnative
    fields = [dtype.fields[n][0] for n in dtype.names]
    return (sum(f.itemsize for f in fields) != dtype.itemsize
            or any(f.type in (np.longdouble, np.clongdouble) or _dtype_has_padding(f)
                   for f in fields))


def _has_padding_bytes(v) -> bool:
    """True if ``v`` holds arrays or scalars with padding bytes: see
    test_loaded_padded_structured_array_dumps_back_to_the_same_bytes and
    test_equal_longdouble_arrays_dump_identically (known bugs)."""
    if isinstance(v, (np.ndarray, np.generic)):
        return _dtype_has_padding(v.dtype)
    if isinstance(v, dict):
        return any(_has_padding_bytes(x) for x in v.values())
    if isinstance(v, (list, tuple, set, frozenset)):
        return any(_has_padding_bytes(x) for x in v)
    return False


@settings(max_examples=max(25, _N // 2))
@given(values)
def test_dumps_is_deterministic_and_canonical(value):
    first = bfa.dumps(value)
    assert bfa.dumps(value) == first
    if not _has_padding_bytes(value):
        assert bfa.dumps(bfa.loads(first)) == first


@settings(max_examples=max(10, _N // 4))
@given(values)
def test_dump_load_file_roundtrip(value):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "v.bfa")
        size = bfa.dump(value, path)
        assert size == os.path.getsize(path)
        with open(path, "rb") as f:
            assert f.read() == bfa.dumps(value)
        assert_deep_equal(bfa.load(path), value)
        with bfa.Archive.open(path) as arch:
            assert_deep_equal(arch.to_python(), value)


# --------------------------------------------------------------------------
# determinism across processes with other hash seeds

_WORKER = r"""
import pickle, struct, sys
import bfast_archive as bfa
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(9)
    if len(head) < 9:
        break
    op, n = head[:1], struct.unpack("<Q", head[1:])[0]
    value = pickle.loads(inp.read(n))
    reply = bfa.dumps(value) if op == b"D" else pickle.dumps([repr(x) for x in value])
    out.write(struct.pack("<Q", len(reply)) + reply)
    out.flush()
"""


class _ExactPickler(pickle.Pickler):
    """NumPy's own pickling turns big-endian arrays native when the array is
    not contiguous or the protocol is < 5; ship arrays as raw bytes + dtype +
    order instead, rebuilt by the ndarray constructor in the worker."""

    def reducer_override(self, obj):
        if type(obj) is np.ndarray:
            order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
            return np.ndarray, (obj.shape, obj.dtype, obj.tobytes(order=order), 0, None, order)
        return NotImplemented


class _Worker:
    def __init__(self, seed: str) -> None:
        env = dict(os.environ, PYTHONHASHSEED=seed)
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env,
                                     cwd=os.path.dirname(os.path.abspath(__file__)))

    def call(self, op: bytes, value) -> bytes:
        buf = io.BytesIO()
        _ExactPickler(buf, protocol=5).dump(value)
        payload = buf.getvalue()
        self.proc.stdin.write(op + struct.pack("<Q", len(payload)) + payload)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(8)
        assert len(head) == 8, "worker died"
        return self.proc.stdout.read(struct.unpack("<Q", head)[0])

    def dumps(self, value) -> bytes:
        return self.call(b"D", value)

    def iteration_order(self, value) -> list:
        return pickle.loads(self.call(b"I", value))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def workers():
    ws = [_Worker("1"), _Worker("2"), _Worker("31337")]
    yield ws
    for w in ws:
        w.close()


STRING_SET = {f"member-{i}-{'x' * (i % 13)}" for i in range(300)}


def test_hash_seed_really_changes_set_order(workers):
    # Control: without it the cross-process test below would prove nothing.
    orders = {tuple(w.iteration_order(STRING_SET)) for w in workers}
    assert len(orders) > 1


def test_sets_of_strings_dump_identically_under_any_hash_seed(workers):
    value = {"s": STRING_SET, "f": frozenset(STRING_SET), "nested": {frozenset({"a", "b", "c"}),
                                                                       frozenset({"x", b"y", 3})},
             "mixed": {"a", 1, b"b", 2.5, None, (1, "t"), frozenset({"z"})}}
    expected = bfa.dumps(value)
    for w in workers:
        assert w.dumps(value) == expected


@settings(max_examples=max(20, _N // 3))
@given(values)
def test_dumps_same_bytes_in_other_processes(workers, value):
    assume(not _has_padding_bytes(value))
    expected = bfa.dumps(value)
    for w in workers[:2]:
        assert w.dumps(value) == expected


# --------------------------------------------------------------------------
# explicit coverage, independent of what hypothesis happens to draw

ALL_DTYPES = [
    "?", "i1", "u1", "<i2", ">i2", "<u2", ">u2", "<i4", ">i4", "<u4", ">u4", "<i8", ">i8",
    "<u8", ">u8", "<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "<c8", ">c8", "<c16", ">c16",
    np.longdouble, np.clongdouble,
    "<M8[ns]", ">M8[D]", "<M8[Y]", "<M8[10ms]", "<M8[as]", "<m8[us]", ">m8[s]", "<m8[W]",
    "S1", "S7", "<U1", ">U4", "V5",
    [("a", "<i4"), ("b", ">f8", (2,)), ("c", "S3")],
    [("p", [("x", "<f4"), ("y", ">f4")]), ("n", "<i8"), ("t", "<M8[s]")],
    {"names": ["a", "b"], "formats": ["u1", "<i4"], "offsets": [0, 4], "itemsize": 12},
    np.dtype([("a", "u1"), ("b", "<f8")], align=True),
    [("m", "<i2", (2, 3))],
]
SHAPES = [(), (0,), (7,), (3, 4), (2, 0, 3), (2, 3, 4)]


def _filled(dtype: np.dtype, shape: tuple, seed: int) -> np.ndarray:
    n = math.prod(shape)
    rng = np.random.default_rng(seed)
    if dtype.kind == "U":
        cps = rng.integers(0, 0x110000, n * dtype.itemsize // 4, dtype=np.uint32)
        return cps.astype(dtype.byteorder + "u4").view(dtype).reshape(shape)
    return np.frombuffer(bytearray(rng.bytes(n * dtype.itemsize)), dtype).reshape(shape)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_fixed_size_dtype_every_shape_and_order(dtype):
    dtype = np.dtype(dtype)
    cases = []
    for i, shape in enumerate(SHAPES):
        a = _filled(dtype, shape, i)
        cases += [a, np.asfortranarray(a)]
        if a.ndim:
            cases.append(a[::-1])          # negative strides
        if a.ndim >= 2:
            cases.append(a[:, ::2])        # non-contiguous
            cases.append(np.moveaxis(a, 0, -1))
    data = bfa.dumps(cases)
    back = bfa.loads(data)
    for got, want in zip(back, cases):
        assert_deep_equal(got, want)
        assert got.flags.writeable  # load gives owned, writeable copies
    with bfa.Archive.from_buffer(data) as arch:
        for i, want in enumerate(cases):
            assert_view_matches(arch[i], want, f"case {i}")


def test_fortran_order_is_kept_both_ways():
    a = np.asfortranarray(np.arange(24, dtype="<i4").reshape(2, 3, 4))
    back = bfa.loads(bfa.dumps(a))
    assert back.flags.f_contiguous and not back.flags.c_contiguous
    view = bfa.Archive.from_buffer(bfa.dumps(a)).root
    assert view.flags.f_contiguous and not view.flags.c_contiguous
    assert np.array_equal(view, a) and np.array_equal(back, a)


def test_non_contiguous_input_is_stored_contiguous():
    base = np.arange(100, dtype="<f8").reshape(10, 10)
    a = base[::3, 1::2]
    assert not a.flags.c_contiguous and not a.flags.f_contiguous
    view = bfa.Archive.from_buffer(bfa.dumps(a)).root
    assert view.flags.c_contiguous and np.array_equal(view, a)


def test_big_endian_arrays_keep_their_byte_order():
    a = np.arange(6, dtype=">i4")
    back = bfa.loads(bfa.dumps(a))
    assert back.dtype.str == ">i4" and back.tobytes() == a.tobytes()
    assert back.tolist() == list(range(6))


SCALARS = [
    None, True, False, 0, -1, 2 ** 63 - 1, -(2 ** 63), 2 ** 63, -(2 ** 63) - 1, 2 ** 64,
    -(2 ** 64), 10 ** 400, -(10 ** 400),
    0.0, -0.0, math.inf, -math.inf, math.nan, _float_from_bits(0x7FF0000000000001),
    _float_from_bits(0xFFF8DEADBEEF0001), 5e-324, 1.7976931348623157e308,
    "", "a" * 8, "a" * 9, "\ud800", "\udfff\ud800", "a\udcff" * 20, "\U0010ffff", "\x00",
    "é" * 4, "x" * 100_000,
    b"", b"\x00" * 8, b"\x00" * 9, b"\xff" * 70_000, bytearray(b"xyz"), bytearray(100),
    bytearray(70_000),
    [], (), {}, set(), frozenset(), (1,), [[]], ((),), [None] * 3,
    dt.datetime.min, dt.datetime.max, dt.datetime(2020, 2, 29, 12, 30, 15, 123456),
    dt.datetime(2021, 11, 7, 1, 30, fold=1),
    dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(0), "X")),
    dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(-dt.timedelta(hours=23, minutes=59, seconds=59,
                                                             microseconds=999999), "far west")),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=14)),
                fold=1),
    dt.date.min, dt.date.max, dt.date(2000, 2, 29),
    dt.time(0), dt.time(23, 59, 59, 999999), dt.time(1, 2, 3, fold=1),
    dt.time(12, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT"), fold=1),
    dt.timedelta.min, dt.timedelta.max, dt.timedelta(microseconds=-1), dt.timedelta(0),
    uuid.UUID(int=0), uuid.UUID(int=2 ** 128 - 1), uuid.UUID("12345678-1234-5678-1234-567812345678"),
    *[decimal.Decimal(s) for s in ["0", "-0", "0E-10", "-0.000", "1E+999999", "NaN", "-NaN",
                                   "NaN123", "sNaN", "-sNaN12", "Infinity", "-Infinity",
                                   "1.000", "3.14159265358979323846264338327950288"]],
    complex(0, 0), complex(-0.0, -0.0), complex(math.inf, math.nan), complex(1e300, -1e-300),
    np.bool_(True), np.int8(-128), np.uint8(255), np.int16(-2), np.uint16(65535),
    np.int32(-7), np.uint32(2 ** 32 - 1), np.int64(-(2 ** 63)), np.uint64(2 ** 64 - 1),
    np.float16(-0.0), np.float16(np.inf), np.float32(np.nan), np.float64(1.5), np.longdouble(1) / 3,
    np.complex64(1 + 2j), np.complex128(complex(-0.0, math.nan)), np.clongdouble(1j),
    np.datetime64("2020-01-01", "D"), np.datetime64("NaT", "ns"), np.datetime64(5, "10ms"),
    np.timedelta64(5, "ms"), np.timedelta64("NaT", "s"),
    np.str_("héllo\U0010ffff"), np.bytes_(b"ab\x00c"), np.void(b"\x01\x02\x03"),
    np.zeros((), [("a", "<i2"), ("b", "S3"), ("c", ">f8", (2,))])[()],
]


@pytest.mark.parametrize("value", SCALARS, ids=lambda v: f"{type(v).__name__}:{v!r:.40}")
def test_edge_values_roundtrip(value):
    data = bfa.dumps(value)
    assert_deep_equal(bfa.loads(data), value)
    assert_view_matches(bfa.Archive.from_buffer(data).root, value)
    # ... and the same inside containers, where they sit in slots of their parents
    wrapped = {"v": value, "l": [value, value], "t": (value,)}
    assert_deep_equal(bfa.loads(bfa.dumps(wrapped)), wrapped)


def test_all_edge_values_in_one_archive():
    data = bfa.dumps(SCALARS)
    assert_deep_equal(bfa.loads(data), SCALARS)
    assert_view_matches(bfa.Archive.from_buffer(data).root, SCALARS)


@pytest.mark.parametrize("value", [
    pytest.param([{"a": ""}] * 4, id="empty-str-column"),
    pytest.param([{"a": 1, "b": ""}] * 5, id="empty-str-column-beside-int"),
    pytest.param([{"": ""}] * 4, id="empty-key-empty-str"),
    pytest.param([{"a": []}] * 4, id="empty-lists"),
    pytest.param([{"a": [""]}] * 4, id="lists-of-empty-str"),
])
def test_records_with_empty_text_columns(value):
    assert bfa.loads(bfa.dumps(value)) == value


@pytest.mark.parametrize("value", [
    [{"a": ""}, {"a": None}, {"a": ""}, {"a": ""}],
    [{"a": ""}, {"a": "x"}, {"a": ""}, {"a": ""}],
    [{"a": []}, {"a": ["x"]}, {"a": []}, {"a": []}],
    [{"a": ""}] * 3,
])
def test_records_with_some_text_roundtrip(value):
    """Controls for the test above: the same shapes with one character, a
    None, or too few rows for a table load fine."""
    assert bfa.loads(bfa.dumps(value)) == value


@pytest.mark.parametrize("value", [np.str_(""), np.bytes_(b"")], ids=["str_", "bytes_"])
def test_empty_numpy_str_and_bytes_scalars(value):
    back = bfa.loads(bfa.dumps(value))
    assert type(back) is type(value) and back == value


def test_dict_keys_of_different_kinds_stay_distinct():
    d = {1: "int", "1": "str", b"1": "bytes", 2 ** 70: "big", -(2 ** 70): "negbig",
         0: "zero", "": "empty str", b"": "empty bytes", -1: "minus one",
         "k" * 40: "long str", b"k" * 40: "long bytes", 2 ** 63: "just past int64"}
    back = bfa.loads(bfa.dumps(d))
    assert_deep_equal(back, d)
    assert list(back) == list(d)
    view = bfa.Archive.from_buffer(bfa.dumps(d)).root
    for k, v in d.items():
        assert view[k] == v
    assert len(view) == len(d) == 12


@given(st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.binary(max_size=12)),
                       st.integers(), max_size=40))
def test_mixed_key_dicts_keep_order_and_lookups(d):
    view = bfa.Archive.from_buffer(bfa.dumps(d)).root
    assert list(view) == list(d)
    assert all(type(a) is type(b) for a, b in zip(view, d))
    for k, v in d.items():
        assert view[k] == v


def test_dumps_of_padded_structured_array_is_deterministic():
    dtype = np.dtype({"names": ["a"], "formats": ["<u2"], "offsets": [0], "itemsize": 16})
    a = np.zeros(200, dtype)[::2]          # not contiguous: the writer must copy it
    outputs = set()
    junk = []
    for i in range(20):
        outputs.add(bfa.dumps(a))
        junk.append(bytes(range(256)) * i)  # churn the heap between calls
    assert len(outputs) == 1
    # the padding of an all-zero input must not come out as anything but zero
    assert bfa.dumps(a) == bfa.dumps(np.zeros(100, dtype))


def test_loaded_padded_structured_array_dumps_back_to_the_same_bytes():
    dtype = np.dtype({"names": ["a"], "formats": ["<u2"], "offsets": [0], "itemsize": 16})
    data = bfa.dumps(np.zeros(50, dtype))
    junk = [np.full(800, 0xAB, np.uint8) for _ in range(20)]  # dirty the heap
    del junk
    loaded = bfa.loads(data)
    assert loaded.view(np.uint8).tobytes() == bytes(800)      # all-zero input, all-zero copy
    assert bfa.dumps(loaded) == data


@pytest.mark.skipif(not _X87, reason="long double is not x87 extended precision here")
@pytest.mark.parametrize("compression", [None, "lz4"])
def test_equal_longdouble_arrays_dump_identically(compression):
    """The 6 padding bytes of each x87 80-bit value (NumPy leaves them
    uninitialised) are written as zeros: equal arrays give equal archives."""
    third = np.longdouble(1) / np.longdouble(3)
    value = np.frombuffer(third.tobytes()[:10] + bytes(6), np.longdouble)
    same = np.frombuffer(third.tobytes()[:10] + b"\xab" * 6, np.longdouble)
    assert np.array_equal(value, same) and value.dtype == same.dtype
    assert bfa.dumps(value, compression=compression) == bfa.dumps(same, compression=compression)
    big = np.full(20_000, third)  # a payload of its own when compressed
    big.view(np.uint8).reshape(-1, 16)[:, 10:] = 0x5A
    clean = big.copy()
    clean.view(np.uint8).reshape(-1, 16)[:, 10:] = 0
    assert bfa.dumps(big, compression=compression) == bfa.dumps(clean, compression=compression)
    assert np.array_equal(bfa.loads(bfa.dumps(big, compression=compression)), big)
    # complex: two padded values per element; scalars too
    c = np.frombuffer((third.tobytes()[:10] + b"\x01" * 6) * 2, np.clongdouble)
    c0 = np.frombuffer((third.tobytes()[:10] + bytes(6)) * 2, np.clongdouble)
    assert bfa.dumps(c) == bfa.dumps(c0)
    assert bfa.dumps(value[0]) == bfa.dumps(same[0]) and bfa.loads(bfa.dumps(same[0])) == third
