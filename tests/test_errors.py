"""Every error class, with its message: damaged or hostile archive bytes raise
ArchiveError (a ValueError) saying what and where; unsupported input raises
UnsupportedTypeError (a TypeError) naming the type and its path; cycles and
too-deep nesting raise ValueError, never RecursionError; random damage never
produces anything but a value or one of the documented errors."""
from __future__ import annotations

import datetime as dt
import enum
import os
import struct
import zoneinfo
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bfast_archive as bfa
from tests.support.format_helpers import (F_CHECKSUMS, F_COMPRESSED, fix_checksums,
                                          header_checksum_ok, read_header, rebuild_dict_index,
                                          rewrite_header, without_checksums)

SMALL = {"a": [1, "hello, world! (long enough)", b"x" * 20], "n": np.arange(3.0), "t": (None, True)}


@pytest.fixture(params=["default", "plain"])
def small(request):
    """A small archive as dumps() writes it, and re-framed as a plain archive
    without the checksum directory (flags 0): readers accept both."""
    data = bfa.dumps(SMALL)
    if request.param == "plain":
        data = without_checksums(data)
        assert bfa.loads(data)["a"][0] == 1
    return data


def test_error_classes():
    assert issubclass(bfa.ArchiveError, ValueError) and issubclass(bfa.ArchiveError, bfa.BfastError)
    assert issubclass(bfa.UnsupportedTypeError, TypeError)
    assert issubclass(bfa.UnsupportedTypeError, bfa.BfastError)


# --------------------------------------------------------------------------
# header (every rewrite keeps the header checksum valid, so each test reaches
# the check it is about)


@pytest.mark.parametrize("magic", [b"\x89BFB\r\n\x1a\n", b"PK\x03\x04\x00\x00\x00\x00",
                                   b"\x00" * 8, b"\x89BFA\r\n\x1a\r"])
def test_bad_magic(small, magic):
    with pytest.raises(bfa.ArchiveError, match="magic"):
        bfa.loads(rewrite_header(small, magic=magic))


def test_bad_magic_file_names_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"just some text, certainly not an archive " * 4)
    with pytest.raises(bfa.ArchiveError, match="magic") as info:
        bfa.Archive.open(path)
    assert "notes.txt" in str(info.value)


@pytest.mark.parametrize("major", [0, 2, 0xFFFF])
def test_unknown_major_version(small, major):
    with pytest.raises(bfa.ArchiveError, match=rf"version {major}\.0"):
        bfa.loads(rewrite_header(small, major=major))


def test_newer_minor_version_is_accepted(small):
    # docs/format/layout.md, "Header": "A 1.x reader MUST accept any version_minor"
    assert bfa.loads(rewrite_header(small, minor=7))["a"][0] == 1


@pytest.mark.parametrize("bit", [0x8000_0000, 0x0100_0000, 0x4])
def test_unknown_flags(small, bit):
    flags = read_header(small)["flags"] | bit
    with pytest.raises(bfa.ArchiveError, match=f"flags.*0x{flags:08x}"):
        bfa.loads(rewrite_header(small, flags=flags))


def test_header_checksum_mismatch():
    data = bfa.dumps(SMALL)
    assert read_header(data)["flags"] & F_CHECKSUMS and header_checksum_ok(data)
    h = read_header(data)
    bad = rewrite_header(data, root_payload=h["root_payload"] + 8, fix_checksum=False)
    with pytest.raises(bfa.ArchiveError, match="checksum"):
        bfa.loads(bad)


def _malformed(data: bytes, case: str) -> bytes:
    h = read_header(data)
    plain = not h["flags"]
    if case == "file size below header":
        return rewrite_header(data, file_size=8)
    if case == "nodes_end zero":
        return rewrite_header(data, nodes_end=0)
    if case == "nodes_end inside header":
        return rewrite_header(data, nodes_end=32)
    if case == "nodes_end misaligned":
        return rewrite_header(data, nodes_end=h["nodes_end"] - 4)
    if case == "nodes_end past file size":
        return rewrite_header(data, nodes_end=h["file_size"] + 8)
    if case == "reserved bytes set":   # (with checksums these bytes are the checksum)
        return rewrite_header(data, reserved=1) if plain else \
            rewrite_header(data, flags=F_COMPRESSED)  # compressed without checksums
    if case == "sections_off misplaced":
        return rewrite_header(data, sections_off=8 if plain else h["nodes_end"] - 8)
    assert case == "sections_off misaligned"
    return rewrite_header(data, sections_off=h["file_size"] - 4 if plain else
                          h["sections_off"] + 4)


@pytest.mark.parametrize("case", ["file size below header", "nodes_end zero",
                                  "nodes_end inside header", "nodes_end misaligned",
                                  "nodes_end past file size", "reserved bytes set",
                                  "sections_off misplaced", "sections_off misaligned"])
def test_malformed_header_fields(small, case):
    with pytest.raises(bfa.ArchiveError, match="malformed header"):
        bfa.loads(_malformed(small, case))


def test_declared_size_beyond_buffer_is_truncation(small):
    with pytest.raises(bfa.ArchiveError, match="truncated") as info:
        bfa.loads(rewrite_header(small, file_size=len(small) + 64))
    assert str(len(small)) in str(info.value)


def test_every_truncation_raises_archive_error(small):
    for k in range(len(small)):
        with pytest.raises(bfa.ArchiveError, match="truncated"):
            bfa.loads(small[:k])
        with pytest.raises(bfa.ArchiveError, match="truncated"):
            bfa.Archive.from_buffer(memoryview(small)[:k])


@pytest.mark.parametrize("cut", [0, 1, 63, 64, 65, -8, -1])
def test_truncated_file_raises_archive_error_naming_the_file(tmp_path, small, cut):
    path = tmp_path / "cut.bfa"
    path.write_bytes(small[:cut])
    with pytest.raises(bfa.ArchiveError, match="truncated") as info:
        bfa.Archive.open(path)
    assert "cut.bfa" in str(info.value)
    with pytest.raises(bfa.ArchiveError):
        bfa.load(path)


def test_trailing_bytes_after_the_archive_are_ignored(small):
    assert bfa.loads(small + b"\xff" * 100)["a"][0] == 1


def test_missing_file_and_non_buffers():
    with pytest.raises(FileNotFoundError):
        bfa.Archive.open("/nonexistent/dir/x.bfa")
    with pytest.raises(FileNotFoundError):
        bfa.load("/nonexistent/dir/x.bfa")
    for not_a_buffer in ("text", 42, None, [1, 2]):
        with pytest.raises(TypeError):
            bfa.Archive.from_buffer(not_a_buffer)


def test_empty_file_is_an_archive_error(tmp_path):
    path = tmp_path / "empty.bfa"
    path.write_bytes(b"")
    with pytest.raises(bfa.ArchiveError, match="truncated"):
        bfa.Archive.open(path)


# --------------------------------------------------------------------------
# node-level damage


@pytest.mark.parametrize("payload,pattern", [
    (10 ** 6, "bounds|before its parent"),
    (2 ** 64 - 8, "bounds|before its parent"),
    (8, "bounds|before its parent"),  # points into the header
    (None, "misaligned"),             # real offset + 4
])
def test_out_of_bounds_root(small, payload, pattern):
    off = read_header(small)["root_payload"]
    bad = rewrite_header(small, root_payload=off + 4 if payload is None else payload)
    with pytest.raises(bfa.ArchiveError, match=pattern) as info:
        bfa.loads(bad)
    assert "24" in str(info.value) or "root" in str(info.value)


def test_unknown_root_tag(small):
    w0 = read_header(small)["root_word"]
    with pytest.raises(bfa.ArchiveError, match="type|tag"):
        bfa.loads(rewrite_header(small, root_word=(w0 & ~0xFF) | 0x7F))


def test_root_count_mismatch(small):
    w0 = read_header(small)["root_word"]
    with pytest.raises(bfa.ArchiveError):   # a dict with one key more than stored
        bfa.loads(rewrite_header(small, root_word=w0 + (1 << 8)))


def _retag_first_item(data: bytes, tag: int) -> bytes:
    """``data`` (an archive whose root is a list) with the tag of item 0 replaced."""
    out = bytearray(data)
    item0 = read_header(data)["root_payload"] + 8
    w0 = struct.unpack_from("<Q", out, item0)[0]
    struct.pack_into("<Q", out, item0, (w0 & ~0xFF) | tag)
    return bytes(out)


@pytest.mark.parametrize("framing", ["default", "plain"])
@pytest.mark.parametrize("tag", [24, 31, 47, 0x7F, 0xFF])  # 24: compressed-payload bytes
def test_unknown_or_misplaced_tags_are_archive_errors(framing, tag):
    data = bfa.dumps([b"x" * 20, 1])
    if framing == "plain":
        data = without_checksums(data)
    bad = _retag_first_item(data, tag)
    with pytest.raises(bfa.ArchiveError):
        bfa.loads(bad)
    arch = bfa.Archive.from_buffer(bad)
    assert arch[1] == 1
    with pytest.raises(bfa.ArchiveError):
        arch[0]


def test_out_of_bounds_child_offset_is_caught_where_it_is_read():
    marker = b"0123456789abcdef-marker"
    data = bytearray(bfa.dumps([marker.decode(), 42]))
    # the list's first slot: tag STR | len << 8, then the payload offset
    root_off = read_header(bytes(data))["root_payload"]
    first_slot = root_off + 8
    struct.pack_into("<Q", data, first_slot + 8, 10 ** 9)
    arch = bfa.Archive.from_buffer(bytes(data))   # opening validates only the header
    assert arch.root[1] == 42                     # the undamaged item still reads
    with pytest.raises(bfa.ArchiveError, match="offset"):
        arch.root[0]
    with pytest.raises(bfa.ArchiveError):
        arch.to_python()


def test_invalid_utf8_in_a_string():
    marker = "a long string payload: ünïcödé ok"
    data = bfa.dumps({"k": marker, "other": 1})
    enc = marker.encode()
    pos = data.index(enc)
    bad = fix_checksums(data[:pos + 3] + b"\xff" + data[pos + 4:])
    arch = bfa.Archive.from_buffer(bad)
    assert arch["other"] == 1
    with pytest.raises(bfa.ArchiveError, match="UTF-8") as info:
        arch["k"]
    assert str(pos) in str(info.value)  # says where
    with pytest.raises(bfa.ArchiveError, match="UTF-8"):
        bfa.loads(bad)


def test_invalid_utf8_in_a_key():
    key = "a key long enough to live outside the slot"
    data = bfa.dumps({key: 1, "other": 2})
    pos = data.index(key.encode())
    bad = data[:pos] + b"\xc3\x28" + data[pos + 2:]
    # keep the hash index consistent with the damaged key bytes, so that only
    # the UTF-8 check can catch it
    bad = fix_checksums(rebuild_dict_index(bad, read_header(bad)["root_payload"]))
    arch = bfa.Archive.from_buffer(bad)
    assert arch["other"] == 2
    with pytest.raises(bfa.ArchiveError, match="UTF-8"):
        list(arch.root)
    with pytest.raises(bfa.ArchiveError, match="UTF-8"):
        bfa.loads(bad)


def test_damaged_key_without_index_update_is_caught():
    key = "a key long enough to live outside the slot"
    data = bfa.dumps({key: 1})
    pos = data.index(key.encode())
    with pytest.raises(bfa.ArchiveError):
        bfa.loads(data[:pos] + b"\xc3\x28" + data[pos + 2:])


@pytest.mark.parametrize("value", [np.zeros(3, "<f8"), np.zeros((2, 2), "<f8"), np.float64(1.5)],
                         ids=["array", "2d-array", "scalar"])
def test_object_dtype_descriptor_is_refused(value):
    data = bfa.dumps({"v": value})
    assert data.count(b"<f8") == 1
    bad = fix_checksums(data.replace(b"<f8", b"|O8"))
    arch = bfa.Archive.from_buffer(bad)
    with pytest.raises(bfa.ArchiveError, match="object"):
        arch["v"]
    with pytest.raises(bfa.ArchiveError, match="object"):
        bfa.loads(bad)


def test_invalid_dtype_descriptor():
    data = bfa.dumps({"v": np.zeros(3, "<f8")})
    bad = fix_checksums(data.replace(b"<f8", b"<q!"))
    with pytest.raises(bfa.ArchiveError, match="dtype"):
        bfa.loads(bad)


@pytest.mark.parametrize("descr", [b",f8", b"(,8", b"(1,"])
@pytest.mark.parametrize("where", ["array", "scalar"])
def test_dtype_descriptor_parse_errors_are_archive_errors(descr, where):
    value = np.zeros(3, "<f8") if where == "array" else np.float64(2.5)
    data = bfa.dumps({"v": value})
    assert len(descr) == 3 and data.count(b"<f8") == 1
    bad = fix_checksums(data.replace(b"<f8", descr))   # same length: only the descriptor changes
    with pytest.raises(bfa.ArchiveError, match="dtype"):
        bfa.loads(bad)


def _structured_descriptor_archive():
    """An archive of a structured array whose JSON descriptor is long enough
    to be overwritten in place by another one (JSON allows trailing spaces)."""
    long_name = "a_rather_long_field_name_to_make_room"
    data = bfa.dumps(np.zeros(2, [(long_name, "<f8"), ("b", "<f8")]))
    start = data.index(b'{"names"')
    end = data.index(b"}", start) + 1
    return data, start, end


@pytest.mark.parametrize("field", ["offsets", "itemsize"])
def test_structured_descriptor_with_huge_numbers(field):
    data, start, end = _structured_descriptor_archive()
    huge = '{"names":["a"],"formats":["<f8"],"offsets":[%s],"itemsize":%s}' % (
        ("99999999999999999999", "16") if field == "offsets" else ("0", "99999999999999999999"))
    assert len(huge) <= end - start
    bad = fix_checksums(data[:start] + huge.ljust(end - start).encode() + data[end:])
    with pytest.raises(bfa.ArchiveError, match="dtype"):
        bfa.loads(bad)


def test_structured_descriptor_rewritten_in_place_is_read():
    """Control for the test above: the in-place rewrite itself is sound."""
    data, start, end = _structured_descriptor_archive()
    other = '{"names":["x","y"],"formats":["<i8","<f8"],"offsets":[0,8],"itemsize":16}'
    bad = fix_checksums(data[:start] + other.ljust(end - start).encode() + data[end:])
    back = bfa.loads(bad)
    assert back.dtype.names == ("x", "y") and back.shape == (2,)


@pytest.mark.parametrize("shape", [(0, 2 ** 64 - 1), (2 ** 63, 0), (0, 2 ** 62)])
def test_absurd_empty_shapes_are_archive_errors(shape):
    data = bytearray(bfa.dumps(np.zeros((0, 3), "<f8")))
    off = read_header(bytes(data))["root_payload"]
    _, _, ndim, _, dlen = struct.unpack_from("<QQIIQ", data, off)
    assert ndim == 2
    shape_at = off + 32 + dlen + (-dlen % 8)
    struct.pack_into("<QQ", data, shape_at, *shape)
    with pytest.raises(bfa.ArchiveError):
        bfa.loads(bytes(data))


# --------------------------------------------------------------------------
# writer: unsupported input


class Custom:
    pass


class Colour(enum.IntEnum):
    RED = 1


UNSUPPORTED = [
    (object(), "object"),
    (Custom(), "Custom"),
    (range(3), "range"),
    (len, "builtin_function_or_method"),
    (Colour.RED, "Colour"),            # an int subclass would come back as a plain int
    (OrderedDict(a=1), "OrderedDict"),
    (np.ma.masked_array([1, 2]), "MaskedArray"),
    (Ellipsis, "ellipsis"),
]


@pytest.mark.parametrize("value,type_name", UNSUPPORTED, ids=lambda v: type(v).__name__)
def test_unsupported_type_names_type_and_path(value, type_name):
    doc = {"users": [{}, {}, {"ok": 1, "bad": value}]}
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps(doc)
    assert type_name in str(info.value)
    assert info.value.path == "users[2]['bad']"
    assert "users[2]['bad']" in str(info.value)
    assert info.value.value is value


def test_unsupported_value_at_the_root():
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps(object())
    assert "object" in str(info.value)


def test_unsupported_path_through_tuples_and_nested_dicts():
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps({"a": {"b": [0, (1, Custom())]}})
    assert info.value.path == "a['b'][1][1]"
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps([{1: [Custom()]}])
    assert info.value.path == "[0][1][0]"


def test_object_arrays_are_unsupported():
    with pytest.raises(bfa.UnsupportedTypeError, match="object") as info:
        bfa.dumps({"x": [np.array([1, None], dtype=object)]})
    assert info.value.path == "x[0]"
    with pytest.raises(bfa.UnsupportedTypeError):
        bfa.dumps(np.zeros(2, [("a", "<i4"), ("o", "O")]))


@pytest.mark.parametrize("value", [
    dt.datetime(2024, 3, 31, 2, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    dt.time(12, 0, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
], ids=["datetime", "time"])
def test_zoneinfo_tz_round_trips_or_is_refused(value):
    try:
        data = bfa.dumps({"when": [value]})
    except bfa.UnsupportedTypeError as exc:
        assert "zoneinfo" in str(exc).lower() or "ZoneInfo" in str(exc)
        assert exc.path == "when[0]"
        return
    back = bfa.loads(data)["when"][0]  # if it is accepted it must round-trip exactly
    assert back == value and back.tzinfo == value.tzinfo and back.utcoffset() == value.utcoffset()


def test_custom_tzinfo_is_refused():
    class Fixed(dt.tzinfo):
        def utcoffset(self, d):
            return dt.timedelta(hours=1)

        def dst(self, d):
            return dt.timedelta(0)

        def tzname(self, d):
            return "F"

    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps({"d": dt.datetime(2020, 1, 1, tzinfo=Fixed())})
    assert info.value.path == "d"


@pytest.mark.parametrize("key,type_name", [(True, "bool"), (False, "bool"), (1.5, "float"),
                                           (None, "NoneType"), ((1, 2), "tuple"),
                                           (frozenset(), "frozenset")])
def test_unsupported_dict_keys_name_type_and_path(key, type_name):
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps({"outer": [{"fine": 1, key: 2}]})
    assert type_name in str(info.value)
    assert info.value.path.startswith("outer[0]")
    assert repr(key) in info.value.path


def test_unsupported_set_member_path():
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps({"a": {1, Custom()}})
    assert info.value.path.startswith("a[")
    assert "?" not in info.value.path
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps({"a": [frozenset({(1, Custom())})]})
    assert info.value.path.startswith("a[0][") and info.value.path.endswith("[1]")


# --------------------------------------------------------------------------
# cycles and depth


def _cycles():
    lst = [1]
    lst.append(lst)
    d = {"a": []}
    d["a"].append(d)
    t = ([],)
    t[0].append(t)
    deep = {"x": [{"y": {}}]}
    deep["x"][0]["y"]["back"] = deep["x"]
    return {"list": lst, "dict-list": d, "tuple-list": t, "deep": deep}


@pytest.mark.parametrize("name", list(_cycles()))
def test_reference_cycle_raises_value_error(name, tmp_path):
    value = _cycles()[name]
    with pytest.raises(ValueError, match="cycle"):
        bfa.dumps(value)
    with pytest.raises(ValueError, match="cycle"):
        bfa.dump(value, tmp_path / "c.bfa")
    assert list(tmp_path.iterdir()) == []


def test_shared_references_are_not_cycles():
    shared = [1, 2]
    value = {"a": shared, "b": shared, "c": [shared, shared]}
    assert bfa.loads(bfa.dumps(value)) == value


def nested_lists(depth: int):
    root = []
    cur = root
    for _ in range(depth - 1):
        nxt = []
        cur.append(nxt)
        cur = nxt
    return root


def nested_dicts(depth: int):
    root = {}
    cur = root
    for _ in range(depth - 1):
        cur["k"] = {}
        cur = cur["k"]
    return root


@pytest.mark.parametrize("make", [nested_lists, nested_dicts])
def test_too_deep_input_raises_value_error_not_recursion_error(make, tmp_path):
    value = make(100_000)
    with pytest.raises(ValueError, match="max_depth") as info:
        bfa.dumps(value)
    assert not isinstance(info.value, RecursionError)
    with pytest.raises(ValueError, match="max_depth"):
        bfa.dump(value, tmp_path / "deep.bfa")
    assert list(tmp_path.iterdir()) == []


def test_default_depth_limit_reads_what_it_writes():
    value = nested_lists(1000)
    back = bfa.loads(bfa.dumps(value))
    for _ in range(999):
        assert len(back) == 1
        back = back[0]
    assert back == []


@pytest.mark.parametrize("limit", [1, 10, 50])
def test_max_depth_is_the_same_limit_on_both_sides(limit):
    ok, too_deep = nested_lists(limit), nested_lists(limit + 1)
    data = bfa.dumps(ok, max_depth=limit)
    assert bfa.Archive.from_buffer(data, max_depth=limit).to_python() == ok
    with pytest.raises(ValueError, match="max_depth"):
        bfa.dumps(too_deep, max_depth=limit)
    deeper = bfa.dumps(too_deep)
    with pytest.raises(bfa.ArchiveError, match="max_depth"):
        bfa.Archive.from_buffer(deeper, max_depth=limit).to_python()


def test_reading_deeper_than_max_depth_raises_archive_error(tmp_path):
    data = bfa.dumps({"deep": nested_lists(300)})
    path = tmp_path / "deep.bfa"
    path.write_bytes(data)
    for arch in (bfa.Archive.from_buffer(data, max_depth=100),
                 bfa.Archive.open(path, max_depth=100)):
        with arch:
            with pytest.raises(bfa.ArchiveError, match="max_depth") as info:
                arch.to_python()
            assert not isinstance(info.value, RecursionError)
            with pytest.raises(bfa.ArchiveError, match="max_depth"):
                arch["deep"].to_python()
            # lazy walking is not recursive and not limited
            node = arch["deep"]
            for _ in range(299):
                node = node[0]
            assert len(node) == 0
    assert bfa.loads(data) == {"deep": nested_lists(300)}


# --------------------------------------------------------------------------
# random damage

CORPUS = [
    bfa.dumps(SMALL),
    bfa.dumps({"users": [{"id": i, "name": f"user-{i}", "score": i / 3, "ok": i % 2 == 0,
                          "tags": ["a", "b"][: i % 3]} for i in range(6)],
               "meta": {"k": (1, 2.5, None)}}),
    bfa.dumps([{1: "one", "1": b"one", b"1": 2 ** 70}, {frozenset({"x", 3}), 1.5},
               [dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2), "X")),
                dt.date(2020, 1, 1), dt.time(1, 2, fold=1), dt.timedelta(3, 4, 5)]]),
    bfa.dumps({"arr": np.arange(12, dtype=">i2").reshape(3, 4), "f": np.asfortranarray(np.eye(3)),
               "s": np.zeros(2, [("a", "<i4"), ("b", "S3")]), "x": np.float32(1.5),
               "t": np.datetime64("2020-01-01", "D"), "c": 1 + 2j}),
    bfa.dumps(["a long string with ünïcode", "\ud800 surrogate", b"bytes" * 10, -(2 ** 100),
               __import__("uuid").UUID(int=12345), __import__("decimal").Decimal("-1.50E+3")]),
]

CORPUS += [without_checksums(data) for data in CORPUS]  # the header checks behind the checksum

ALLOWED = (bfa.ArchiveError, KeyError, IndexError, TypeError)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "byte", "word", "truncate"]))
        pos = draw(st.integers(0, len(data) - 1)) if data else 0
        if not data:
            break
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "word":
            pos -= pos % 8
            word = draw(st.one_of(st.sampled_from([0, 1, 8, 64, 2 ** 63, 2 ** 64 - 1, 2 ** 32,
                                                   len(data), max(0, len(data) - 8)]),
                                  st.integers(0, 2 ** 64 - 1)))
            data[pos:pos + 8] = struct.pack("<Q", word)[:len(data) - pos]
        else:
            del data[pos:]
    return bytes(data)


def _walk(v, budget: list) -> None:
    """Use every part of the view API on ``v`` and whatever it contains; each
    call may only return or raise one of ALLOWED (checked by _guard)."""
    budget[0] -= 1
    if budget[0] < 0:
        return
    if isinstance(v, bfa.ArchivedDict):
        _guard(lambda: repr(v))
        keys = _guard(lambda: list(v)) or []
        for k in keys:
            _guard(lambda: _walk(v[k], budget))
            _guard(lambda: k in v)
        _guard(lambda: [_walk(x, budget) for x in v.values()])
        _guard(lambda: list(v.items()))
        _guard(v.to_python)
    elif isinstance(v, bfa.ArchivedList):
        _guard(lambda: repr(v))
        n = len(v)
        for i in list(range(min(n, 20))) + [-1, n]:
            _guard(lambda: _walk(v[i], budget))
        _guard(lambda: v[::3])
        _guard(lambda: [_walk(x, budget) for x in v])
        _guard(v.to_python)
    elif isinstance(v, np.ndarray):
        v.tobytes()
    elif isinstance(v, memoryview):
        bytes(v)


def _guard(fn):
    try:
        return fn()
    except ALLOWED:
        return None


# Deterministic by default (the same damaged archives on every run, so a failure
# is reproducible and CI does not flicker); BFA_FUZZ_EXAMPLES=N runs N fresh
# random examples instead, for a longer hunt.
_FUZZ_N = int(os.environ.get("BFA_FUZZ_EXAMPLES", "0"))


@settings(max_examples=_FUZZ_N or max(300, 3 * settings.default.max_examples),
          derandomize=not _FUZZ_N, database=None if not _FUZZ_N else settings.default.database)
@given(mutated())
def test_random_damage_gives_values_or_documented_errors(data):
    try:
        bfa.loads(data)
    except ALLOWED:
        pass
    try:
        arch = bfa.Archive.from_buffer(data)
    except ALLOWED:
        return
    try:
        root = arch.root
    except ALLOWED:
        return
    _walk(root, [500])
    _guard(arch.to_python)
