"""Hypothesis strategies over every value type that must round-trip exactly
(the README's "Round-trips exactly" list), and a strict deep-equality helper
(not a test module).

``assert_deep_equal(actual, expected)`` compares types exactly (``1`` is not
``True``, ``np.float64`` is not ``float``), floats and complex parts bitwise
(NaN payloads and -0.0 included), Decimals by their exact text (sign of zero,
exponent, NaN payload, sNaN), datetimes/times field by field including ``fold``
and the tzinfo's offset *and name*, dicts in order, sets by matching members
under this same equality, arrays by dtype + shape + bytes (+ memory order).
A ``bytearray`` in the expected value must come back as ``bytes``.

``assert_view_matches(view, expected)`` checks what lazy access must return:
ArchivedDict / ArchivedList for containers, read-only memoryviews for bytes,
read-only arrays for ndarrays, plain values for the rest, and that
``to_python()`` of every view equals the corresponding input part.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
import struct
import uuid
from collections.abc import Mapping

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bfast_archive as bfa

# --------------------------------------------------------------------------
# scalars

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

ints = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(),  # unbounded: hypothesis also draws huge ones
    st.integers(-(1 << 300), 1 << 300),
    st.sampled_from([0, -1, 1, INT64_MAX, INT64_MIN, INT64_MAX + 1, INT64_MIN - 1,
                     1 << 64, -(1 << 64), (1 << 64) - 1, 255, 256, -128, -129,
                     10 ** 100, -(10 ** 100)]),
)


def _float_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


float_bits = st.integers(0, (1 << 64) - 1).map(_float_from_bits)  # any pattern, sNaN too
floats = st.one_of(
    st.floats(),  # includes nan, inf, -inf, -0.0, subnormals
    float_bits,
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, -math.nan, 5e-324,
                     _float_from_bits(0x7FF0000000000001),   # signalling NaN
                     _float_from_bits(0xFFF8000000000123)]),  # negative NaN with payload
)

any_char = st.one_of(
    st.characters(),
    st.integers(0, 0x10FFFF).map(chr),  # every code point, lone surrogates included
    st.sampled_from(["\ud800", "\udfff", "\udbff", "\x00", "\uffff", "\U0010ffff", "é"]),
)
texts = st.text(any_char, max_size=24)

binaries = st.binary(max_size=24)
# Payloads of at least 64 KiB take the writer's "separate piece, no copy" path.
big_binaries = st.integers(1 << 16, (1 << 16) + 300).flatmap(
    lambda n: st.binary(min_size=16, max_size=16).map(lambda seed: (seed * (n // 16 + 1))[:n]))

fixed_offsets = st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59, seconds=-59),
                              max_value=dt.timedelta(hours=23, minutes=59, seconds=59))
timezones = st.one_of(
    st.just(dt.timezone.utc),
    st.builds(dt.timezone, fixed_offsets),
    st.builds(dt.timezone, fixed_offsets, st.text(any_char, min_size=1, max_size=10)),
    st.sampled_from([dt.timezone(dt.timedelta(0), "X"), dt.timezone(dt.timedelta(hours=1), "CET"),
                     dt.timezone(dt.timedelta(hours=-5, microseconds=7))]),
)
opt_tz = st.one_of(st.none(), timezones)
folds = st.integers(0, 1)

datetimes = st.builds(lambda d, tz, fold: d.replace(tzinfo=tz, fold=fold),
                      st.datetimes(), opt_tz, folds)
times = st.builds(lambda t, tz, fold: t.replace(tzinfo=tz, fold=fold), st.times(), opt_tz, folds)
dates = st.dates()
timedeltas = st.timedeltas()
uuids = st.one_of(st.uuids(allow_nil=True),
                  st.integers(0, (1 << 128) - 1).map(lambda i: uuid.UUID(int=i)))

_DECIMAL_SPECIALS = ["0", "-0", "0E-10", "-0.000", "1E+999999", "-1E-999999", "NaN", "-NaN",
                     "NaN123", "sNaN", "-sNaN12", "Infinity", "-Infinity", "1.000",
                     "-0.00E+5", "123456789012345678901234567890.123456789"]
hashable_decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(
        lambda d: decimal.Decimal(str(d).replace("sNaN", "NaN"))),  # sNaN is unhashable
    st.sampled_from([d for d in _DECIMAL_SPECIALS if "sNaN" not in d]).map(decimal.Decimal),
)
# A signalling NaN cannot be hashed, so it only appears outside sets.
decimals = st.one_of(hashable_decimals,
                     st.sampled_from(_DECIMAL_SPECIALS).map(decimal.Decimal))
complexes = st.one_of(st.complex_numbers(), st.builds(complex, floats, floats))

# --------------------------------------------------------------------------
# NumPy dtypes, scalars, arrays

DT_UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "10ms", "3D"]
NUMERIC_CODES = ["b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8",
                 "f2", "f4", "f8", "c8", "c16"]


def _with_order(code: str) -> st.SearchStrategy[np.dtype]:
    if np.dtype(code).itemsize == 1 or code.startswith("|"):
        return st.just(np.dtype(code))
    return st.sampled_from([np.dtype("<" + code), np.dtype(">" + code)])


numeric_dtypes = st.sampled_from(NUMERIC_CODES).flatmap(_with_order)
time_dtypes = st.builds(lambda kind, unit: f"{kind}8[{unit}]",
                        st.sampled_from(["M", "m"]), st.sampled_from(DT_UNITS)).flatmap(_with_order)
bytes_dtypes = st.integers(1, 9).map(lambda n: np.dtype(f"S{n}"))
unicode_dtypes = st.integers(1, 5).flatmap(lambda n: _with_order(f"U{n}"))
simple_dtypes = st.one_of(numeric_dtypes, time_dtypes, bytes_dtypes, unicode_dtypes)


def _structured(draw_fields, padded: bool, aligned: bool) -> np.dtype:
    names = [f"f{i}" for i in range(len(draw_fields))]
    dtype = np.dtype(list(zip(names, draw_fields)), align=aligned)
    if padded:  # explicit offsets with holes and a larger itemsize
        offsets, pos = [], 3
        for f in draw_fields:
            offsets.append(pos)
            pos += np.dtype(f).itemsize + 2
        dtype = np.dtype({"names": names, "formats": draw_fields, "offsets": offsets,
                          "itemsize": pos + 5})
    return dtype


_field = st.one_of(
    numeric_dtypes, time_dtypes, bytes_dtypes,
    st.tuples(numeric_dtypes, st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)),
)
_flat_struct = st.builds(_structured, st.lists(_field, min_size=1, max_size=4),
                         st.booleans(), st.booleans())
structured_dtypes = st.one_of(
    _flat_struct,
    # one level of nesting: a structured field inside a structured dtype
    st.builds(lambda inner, other: np.dtype([("inner", inner), ("x", other)]),
              _flat_struct, numeric_dtypes),
)
array_dtypes = st.one_of(simple_dtypes, structured_dtypes)


@st.composite
def array_contents(draw, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """A C-ordered array of ``dtype`` and ``shape`` with arbitrary bit patterns
    (NaN payloads, NaT, padding bytes ...), or valid code points for ``U``.
    The bytes come from a drawn seed or a repeated drawn pattern, so big
    arrays cost hypothesis little."""
    n = math.prod(shape)
    nbytes = n * dtype.itemsize
    if draw(st.booleans()):
        raw = np.random.default_rng(draw(st.integers(0, 2 ** 32))).bytes(nbytes)
    else:
        pattern = draw(st.binary(min_size=1, max_size=24))
        raw = (pattern * (nbytes // len(pattern) + 1))[:nbytes]
    if dtype.kind == "U":
        cps = np.frombuffer(raw, "<u4") % 0x110000
        arr = cps.astype(np.dtype(dtype.byteorder + "u4")).view(dtype)
    else:
        arr = np.frombuffer(bytearray(raw), dtype=dtype)  # writable, padding bytes set
    return arr.reshape(shape)


LAYOUTS = ["C", "F", "strided", "reversed", "transposed"]


def apply_layout(arr: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout (F order, non-contiguous ...)."""
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        wide = np.zeros((arr.shape[0] * 2,) + arr.shape[1:], arr.dtype)
        wide[::2] = arr
        return wide[::2]
    if layout == "reversed" and arr.ndim:
        return np.ascontiguousarray(arr[::-1])[::-1]
    if layout == "transposed" and arr.ndim >= 2:
        return np.ascontiguousarray(arr.T).T if arr.ndim == 2 else \
            np.ascontiguousarray(np.moveaxis(arr, 0, -1)).transpose(arr.ndim - 1,
                                                                    *range(arr.ndim - 1))
    return arr


@st.composite
def arrays(draw, dtypes=array_dtypes, max_dims: int = 4, max_side: int = 4) -> np.ndarray:
    dtype = draw(dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    arr = draw(array_contents(dtype, shape))
    return apply_layout(arr, draw(st.sampled_from(LAYOUTS)))


big_arrays = st.builds(lambda n, dtype: np.arange(n).astype(dtype).reshape(-1, 4),
                       st.sampled_from([1 << 14, 1 << 15]), st.sampled_from(["<f8", ">i8", "<c16"]))


@st.composite
def numpy_scalars(draw, hashable_only: bool = False) -> np.generic:
    dtypes = simple_dtypes if hashable_only else st.one_of(simple_dtypes, structured_dtypes)
    dtype = draw(dtypes)
    return draw(array_contents(dtype, (1,)))[0]  # may be an empty np.str_ / np.bytes_


# --------------------------------------------------------------------------
# nested values

hashable_leaves = st.one_of(
    st.none(), st.booleans(), ints, floats, texts, binaries, dates, datetimes, times,
    timedeltas, uuids, hashable_decimals, complexes, numpy_scalars(hashable_only=True),
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)),
    max_leaves=6,
)

leaves = st.one_of(
    st.none(), st.booleans(), ints, floats, texts, binaries, binaries.map(bytearray),
    dates, datetimes, times, timedeltas, uuids, decimals, complexes,
    numpy_scalars(), arrays(),
)
rare_big = st.one_of(big_binaries, big_binaries.map(bytearray), big_arrays,
                     st.text(any_char, min_size=300, max_size=600))
dict_keys = st.one_of(texts, ints, binaries, st.sampled_from([1, "1", b"1", 0, "", b""]))


_COLUMN_KINDS = [ints, st.integers(INT64_MIN, INT64_MAX), floats, st.booleans(), texts,
                 st.lists(texts, max_size=3), st.none(), binaries]


@st.composite
def records(draw, inner):
    """A list of >= 4 dicts with the same str keys in the same order: the
    writer may store it column by column (a record table), which must not
    change what comes back. Columns are typed, typed with Nones, or mixed."""
    keys = draw(st.lists(texts, min_size=1, max_size=4, unique=True))
    columns = []
    for _ in keys:
        kind = draw(st.sampled_from(_COLUMN_KINDS + [inner]))
        if draw(st.booleans()):
            kind = st.one_of(kind, st.none())
        columns.append(kind)
    n = draw(st.integers(4, 10))
    rows = [{k: draw(c) for k, c in zip(keys, columns)} for _ in range(n)]
    return rows


def _containers(inner):
    return st.one_of(
        records(inner),
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(dict_keys, inner, max_size=5),
        st.sets(hashables, max_size=5),
        st.frozensets(hashables, max_size=5),
    )


values = st.recursive(st.one_of(leaves, leaves, leaves, rare_big), _containers, max_leaves=25)


# --------------------------------------------------------------------------
# equality


def _tz_key(tz) -> tuple | None:
    if tz is None:
        return None
    return type(tz), tz.utcoffset(None), tz.tzname(None)


def _fail(path: str, msg: str) -> None:
    raise AssertionError(f"at {path or 'root'}: {msg}")


_X87 = np.finfo(np.longdouble).nmant == 63 and np.dtype(np.longdouble).itemsize == 16


def _significant_bytes(a: np.ndarray) -> bytes:
    raw = np.ascontiguousarray(a)
    if _X87 and raw.dtype.type in (np.longdouble, np.clongdouble):
        # x87 extended precision: 10 value bytes per 16, the other 6 are padding
        # NumPy does not keep when it copies a scalar.
        units = raw.reshape(-1).view(np.uint8).reshape(-1, 16)
        if raw.dtype.byteorder == ">":
            return units[:, 6:].tobytes()
        return units[:, :10].tobytes()
    return raw.tobytes()


def _payload_equal(a, b) -> bool:
    """Field by field for structured data, padding bytes excluded, else bytewise."""
    if a.dtype.names is not None:
        return all(_payload_equal(np.asarray(a[n]), np.asarray(b[n])) for n in a.dtype.names)
    return _significant_bytes(a) == _significant_bytes(b)


def assert_arrays_identical(actual, expected, path: str = "") -> None:
    if type(actual) is not np.ndarray:
        _fail(path, f"expected ndarray, got {type(actual).__name__}")
    if actual.dtype != expected.dtype or actual.dtype.str != expected.dtype.str:
        _fail(path, f"dtype {actual.dtype!r} != {expected.dtype!r}")
    if actual.dtype.descr != expected.dtype.descr:
        _fail(path, f"dtype descr {actual.dtype.descr} != {expected.dtype.descr}")
    if actual.shape != expected.shape:
        _fail(path, f"shape {actual.shape} != {expected.shape}")
    if not _payload_equal(actual, expected):
        _fail(path, "array contents differ")
    # memory order: C stays C, Fortran stays Fortran, anything else comes back C
    if expected.ndim >= 2 and expected.size > 1:
        if expected.flags.f_contiguous and not expected.flags.c_contiguous:
            if not actual.flags.f_contiguous:
                _fail(path, "Fortran-ordered array did not come back Fortran-ordered")
        elif not actual.flags.c_contiguous:
            _fail(path, "array did not come back C-contiguous")


def assert_deep_equal(actual, expected, path: str = "") -> None:
    et = type(expected)
    if et is bytearray:
        if type(actual) is not bytes:
            _fail(path, f"bytearray should load as bytes, got {type(actual).__name__}")
        if actual != expected:
            _fail(path, f"{actual!r} != {expected!r}")
        return
    if type(actual) is not et:
        _fail(path, f"type {type(actual).__name__} != {et.__name__} ({actual!r:.80} vs {expected!r:.80})")
    if et is np.ndarray:
        assert_arrays_identical(actual, expected, path)
    elif isinstance(expected, np.generic):
        if actual.dtype != expected.dtype or actual.dtype.str != expected.dtype.str:
            _fail(path, f"scalar dtype {actual.dtype} != {expected.dtype}")
        if not _payload_equal(np.asarray(actual), np.asarray(expected)):
            _fail(path, f"scalar bytes differ: {actual!r} vs {expected!r}")
    elif et is float:
        if struct.pack("<d", actual) != struct.pack("<d", expected):
            _fail(path, f"float bits {actual!r} != {expected!r}")
    elif et is complex:
        if struct.pack("<dd", actual.real, actual.imag) != \
                struct.pack("<dd", expected.real, expected.imag):
            _fail(path, f"complex bits {actual!r} != {expected!r}")
    elif et is decimal.Decimal:
        if str(actual) != str(expected):
            _fail(path, f"Decimal {actual} != {expected}")
    elif et is dt.datetime or et is dt.time:
        if actual.replace(tzinfo=None, fold=0) != expected.replace(tzinfo=None, fold=0) \
                or actual.fold != expected.fold:
            _fail(path, f"{actual!r} != {expected!r}")
        if _tz_key(actual.tzinfo) != _tz_key(expected.tzinfo):
            _fail(path, f"tzinfo {actual.tzinfo!r} != {expected.tzinfo!r}")
    elif et in (list, tuple):
        if len(actual) != len(expected):
            _fail(path, f"length {len(actual)} != {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_deep_equal(a, e, f"{path}[{i}]")
    elif et is dict:
        if len(actual) != len(expected):
            _fail(path, f"dict size {len(actual)} != {len(expected)}")
        for i, ((ak, av), (ek, ev)) in enumerate(zip(actual.items(), expected.items())):
            assert_deep_equal(ak, ek, f"{path}<key #{i}>")
            assert_deep_equal(av, ev, f"{path}[{ek!r}]")
    elif et in (set, frozenset):
        if len(actual) != len(expected):
            _fail(path, f"set size {len(actual)} != {len(expected)}")
        remaining = list(actual)
        for e in expected:
            for i, a in enumerate(remaining):
                if deep_equal(a, e):
                    del remaining[i]
                    break
            else:
                _fail(path, f"member {e!r} missing from {actual!r}")
    else:  # None, bool, int, str, bytes, date, timedelta, UUID
        if actual != expected:
            _fail(path, f"{actual!r} != {expected!r}")


def deep_equal(actual, expected) -> bool:
    try:
        assert_deep_equal(actual, expected)
    except AssertionError:
        return False
    return True


def assert_view_matches(view, expected, path: str = "") -> None:
    """Lazy access returns views for containers and buffers, values for the
    rest; each view's to_python() equals the input part it stands for."""
    et = type(expected)
    if et is dict:
        assert isinstance(view, bfa.ArchivedDict) and isinstance(view, Mapping), path
        assert len(view) == len(expected), path
        keys = list(view)
        assert_deep_equal(keys, list(expected), path + "<keys>")
        for k, v in expected.items():
            assert k in view, (path, k)
            assert_view_matches(view[k], v, f"{path}[{k!r}]")
        assert_deep_equal(view.to_python(), expected, path)
    elif et in (list, tuple):
        assert isinstance(view, bfa.ArchivedList), (path, type(view))
        assert view.is_tuple == (et is tuple), path
        assert len(view) == len(expected), path
        for i, v in enumerate(expected):
            assert_view_matches(view[i], v, f"{path}[{i}]")
        if expected:
            assert_view_matches(view[-1], expected[-1], f"{path}[-1]")
        assert_deep_equal(view.to_python(), expected, path)
    elif et in (bytes, bytearray):
        assert type(view) is memoryview, (path, type(view))
        assert view.readonly, path
        assert bytes(view) == bytes(expected), path
    elif et is np.ndarray:
        assert type(view) is np.ndarray, (path, type(view))
        assert not view.flags.writeable, path
        assert_arrays_identical(view, expected, path)
    else:
        assert_deep_equal(view, expected, path)
