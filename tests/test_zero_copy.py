"""Zero-copy reads: arrays and bytes handed out by Archive.open / from_buffer
are views of the mapping / the caller's buffer, read-only, 64-byte aligned;
they outlive close(); load() instead returns owned copies independent of the
file."""
from __future__ import annotations

import gc
import mmap
import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bfast_archive as bfa
from tests.support.mapping_helpers import base_chain_end, file_mappings

DATA = {
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "i8": np.arange(-5, 5, dtype=np.int8),
    "big": np.arange(100_000, dtype=">i8"),  # >= 64 KiB: written as a separate piece
    "struct": np.array([(1, b"ab"), (2, b"cd")], [("a", "<i4"), ("b", "S3")]),
    "zero_d": np.array(3.5),
    "nested": {"deep": [np.ones((2, 2), np.complex128)]},
    "blob": b"x" * 1000,
    "bigblob": bytes(range(256)) * 400,
    "short": b"abc",
    "from_bytearray": bytearray(b"y" * 50),
    "users": [{"id": i, "name": f"user-{i}"} for i in range(20)],
}
ARRAY_KEYS = ["f32", "fortran", "i8", "big", "struct", "zero_d"]
BYTES_KEYS = ["blob", "bigblob", "short", "from_bytearray"]


@pytest.fixture
def archive_path(tmp_path):
    path = tmp_path / "data.bfa"
    bfa.dump(DATA, path)
    return path


def address(obj) -> int:
    if isinstance(obj, memoryview):
        obj = np.frombuffer(obj, np.uint8)
    return obj.__array_interface__["data"][0]


def in_ranges(ptr: int, nbytes: int, ranges) -> bool:
    return any(lo <= ptr and ptr + nbytes <= hi for lo, hi in ranges)


def get(arch, key):
    return arch["nested"]["deep"][0] if key == "nested" else arch[key]


# --------------------------------------------------------------------------
# Archive.open


@pytest.mark.parametrize("key", ARRAY_KEYS + ["nested"])
def test_open_arrays_are_readonly_views_of_the_mapping(archive_path, key):
    expected = DATA["nested"]["deep"][0] if key == "nested" else DATA[key]
    with bfa.Archive.open(archive_path) as arch:
        arr = get(arch, key)
        assert type(arr) is np.ndarray
        assert arr.dtype == expected.dtype and arr.shape == expected.shape
        assert np.array_equal(arr, expected)
        # memory: inside this process's mapping of the file, and the base chain ends at it
        mapped = file_mappings(archive_path)
        assert mapped, "the archive is not memory-mapped"
        assert in_ranges(address(arr), arr.nbytes, mapped)
        owner = base_chain_end(arr)
        assert isinstance(owner, mmap.mmap)
        assert np.shares_memory(arr, np.frombuffer(owner, np.uint8))
        # read-only, and it cannot be made writeable
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr.flags.writeable = True
        with pytest.raises(ValueError):
            arr[...] = 0
        # array payloads are 64-byte aligned (the mapping starts on a page)
        assert address(arr) % 64 == 0
        assert arr.flags.aligned


def test_open_fortran_array_is_a_fortran_view(archive_path):
    with bfa.Archive.open(archive_path) as arch:
        arr = arch["fortran"]
        assert arr.flags.f_contiguous and not arr.flags.c_contiguous
        assert in_ranges(address(arr), arr.nbytes, file_mappings(archive_path))


@pytest.mark.parametrize("key", BYTES_KEYS)
def test_open_bytes_are_readonly_memoryviews_of_the_mapping(archive_path, key):
    with bfa.Archive.open(archive_path) as arch:
        mv = arch[key]
        assert type(mv) is memoryview and mv.readonly
        assert mv.tobytes() == bytes(DATA[key])
        assert in_ranges(address(mv), mv.nbytes, file_mappings(archive_path))
        with pytest.raises(TypeError):
            mv[0] = 1


def test_open_reads_nothing_into_process_memory(archive_path):
    """Values come from the mapping: lazy reads allocate (almost) nothing."""
    with bfa.Archive.open(archive_path) as arch:
        arch["big"], arch["bigblob"]  # warm-up: imports, caches
        tracemalloc.start()
        try:
            big = arch["big"]
            blob = arch["bigblob"]
            total = int(big[-1]) + blob[-1]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total == 99_999 + 255
    assert peak < 64 * 1024  # the array is 800 KB, the blob 100 KB


# --------------------------------------------------------------------------
# Archive.from_buffer


@pytest.fixture(scope="module")
def archive_bytes():
    return bfa.dumps(DATA)


def _source(kind: str, data: bytes, tmp_path):
    """(buffer to archive from, uint8 array over the memory that buffer exposes)."""
    if kind == "bytes":
        return data, np.frombuffer(data, np.uint8)
    if kind == "bytearray":
        ba = bytearray(data)
        return ba, np.frombuffer(ba, np.uint8)
    if kind == "memoryview":
        return memoryview(data), np.frombuffer(data, np.uint8)
    if kind == "memoryview-slice":
        padded = b"\0" * 64 + data
        return memoryview(padded)[64:], np.frombuffer(padded, np.uint8)
    if kind == "mmap":
        path = tmp_path / "src.bfa"
        path.write_bytes(data)
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return mm, np.frombuffer(mm, np.uint8)
    assert kind == "ndarray"
    arr = np.frombuffer(data, np.uint8).copy()
    return arr, arr


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "memoryview-slice",
                                  "mmap", "ndarray"])
def test_from_buffer_shares_memory_with_the_buffer(archive_bytes, tmp_path, kind):
    source, whole = _source(kind, archive_bytes, tmp_path)
    arch = bfa.Archive.from_buffer(source)
    for key in ARRAY_KEYS:
        arr = arch[key]
        assert not arr.flags.writeable and arr.flags.aligned
        assert np.shares_memory(arr, whole), key
        assert np.array_equal(arr, DATA[key])
        # aligned to 64 bytes relative to the start of the archive
        assert (address(arr) - address(whole[-len(archive_bytes):])) % 64 == 0
    for key in BYTES_KEYS:
        mv = arch[key]
        assert type(mv) is memoryview and mv.readonly
        assert np.shares_memory(np.frombuffer(mv, np.uint8), whole), key
        assert mv == bytes(DATA[key])


def test_from_buffer_copies_nothing():
    data = bfa.dumps({"a": np.zeros(4_000_000, np.float64), "b": b"z" * 8_000_000})
    for source in (data, bytearray(data), memoryview(data)):
        tracemalloc.start()
        try:
            arch = bfa.Archive.from_buffer(source)
            a, b = arch["a"], arch["b"]
            a[123], b[-1]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, f"{type(source).__name__}: {peak} bytes allocated"
        assert a.nbytes == 32_000_000 and b.nbytes == 8_000_000
        del arch, a, b


@given(st.lists(st.one_of(
    st.integers(0, 200).map(lambda n: np.arange(n, dtype=np.uint8)),
    st.integers(0, 40).map(lambda n: np.arange(n, dtype=">f8").reshape(-1, 1)),
    st.integers(0, 300).map(lambda n: b"b" * n),
    st.text(max_size=30),
    st.integers(),
), max_size=12))
def test_every_array_payload_is_64_byte_aligned(items):
    data = bfa.dumps(items)
    start = address(np.frombuffer(data, np.uint8))
    arch = bfa.Archive.from_buffer(data)
    for i, item in enumerate(items):
        got = arch[i]
        if isinstance(item, np.ndarray):
            assert np.array_equal(got, item)
            if item.size:
                assert (address(got) - start) % 64 == 0


def test_from_buffer_does_not_close_the_callers_mmap(archive_path):
    with open(archive_path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with bfa.Archive.from_buffer(mm) as arch:
        assert arch["users"][3]["name"] == "user-3"
    assert bfa.loads(mm)["users"][4]["name"] == "user-4"
    assert not mm.closed and mm[:4] == b"\x89BFA"  # still the caller's to use and close
    mm.close()


# --------------------------------------------------------------------------
# lifetime: close() / with-exit


CLOSED_USES = {
    "dict[key]": lambda v: v["d"]["x"],
    "dict[missing]": lambda v: v["d"]["nope"],
    "dict.get": lambda v: v["d"].get("x"),
    "key in dict": lambda v: "x" in v["d"],
    "iter(dict)": lambda v: list(v["d"]),
    "dict.keys": lambda v: list(v["d"].keys()),
    "dict.values": lambda v: list(v["d"].values()),
    "dict.items": lambda v: list(v["d"].items()),
    "dict == dict": lambda v: v["d"] == {"x": 1, "y": [1, 2]},
    "dict.to_python": lambda v: v["d"].to_python(),
    "list[i]": lambda v: v["l"][0],
    "list[-1]": lambda v: v["l"][-1],
    "list[slice]": lambda v: v["l"][0:2],
    "iter(list)": lambda v: list(v["l"]),
    "x in list": lambda v: 1 in v["l"],
    "list.to_python": lambda v: v["l"].to_python(),
    "row[key]": lambda v: v["row"]["name"],
    "row.get": lambda v: v["row"].get("name"),
    "iter(row)": lambda v: list(v["row"]),
    "row.values": lambda v: list(v["row"].values()),
    "row.to_python": lambda v: v["row"].to_python(),
    "table[i]": lambda v: v["table"][1],
    "iter(table)": lambda v: list(v["table"]),
    "table.to_python": lambda v: v["table"].to_python(),
    "arch.root": lambda v: v["arch"].root,
    "arch[key]": lambda v: v["arch"]["users"],
    "arch.to_python": lambda v: v["arch"].to_python(),
    "key in row": lambda v: "name" in v["row"],
}

LIFETIME_DATA = dict(DATA, generic={"d": {"x": 1, "y": [1, 2]}, "l": [1, {"a": 1}, {"b": 2}]})


@pytest.fixture(scope="module")
def lifetime_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("lifetime") / "a.bfa"
    bfa.dump(LIFETIME_DATA, path)
    return path


def _open_then_close(path, how: str):
    """Grab arrays, memoryviews and container views, then close the archive."""
    arch = bfa.Archive.open(path)

    def grab():
        got = {k: get(arch, k) for k in ARRAY_KEYS + BYTES_KEYS + ["nested"]}
        views = {"arch": arch, "d": arch["generic"]["d"], "l": arch["generic"]["l"],
                 "table": arch["users"], "row": arch["users"][2]}
        assert isinstance(views["d"], bfa.ArchivedDict) and isinstance(views["row"], bfa.ArchivedDict)
        assert isinstance(views["l"], bfa.ArchivedList) and isinstance(views["table"], bfa.ArchivedList)
        return got, views

    if how == "with":
        with arch:
            got, views = grab()
    else:
        got, views = grab()
        arch.close()
    assert arch.closed
    gc.collect()
    return got, views


@pytest.mark.parametrize("how", ["close", "with"])
def test_arrays_and_memoryviews_stay_valid_after_close(lifetime_path, how):
    got, _ = _open_then_close(lifetime_path, how)
    for key, value in got.items():
        expected = DATA["nested"]["deep"][0] if key == "nested" else DATA[key]
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, expected) and not value.flags.writeable
            assert value.dtype == expected.dtype
        else:
            assert value.tobytes() == bytes(expected)
    assert got["big"].sum() == sum(range(100_000))


@pytest.mark.parametrize("how", ["close", "with"])
@pytest.mark.parametrize("use", list(CLOSED_USES))
def test_views_of_a_closed_archive_raise_archive_error(lifetime_path, how, use):
    _, views = _open_then_close(lifetime_path, how)
    with pytest.raises(bfa.ArchiveError, match="closed"):
        CLOSED_USES[use](views)


def test_close_twice_is_harmless(archive_path):
    arch = bfa.Archive.open(archive_path)
    arch.close()
    arch.close()
    assert arch.closed


def test_mapping_lives_until_the_last_view_is_gone(archive_path):
    arch = bfa.Archive.open(archive_path)
    arr, mv = arch["big"], arch["bigblob"]
    arch.close()
    del arch
    gc.collect()
    assert file_mappings(archive_path), "mapping gone while an array still uses it"
    assert int(arr[77]) == 77 and mv[1] == 1
    del arr
    gc.collect()
    assert file_mappings(archive_path), "mapping gone while a memoryview still uses it"
    assert mv.tobytes() == DATA["bigblob"]
    assert bfa.release_mappings() >= 1  # the mapping kept for the next open of the file
    assert file_mappings(archive_path), "mapping gone while a memoryview still uses it"
    del mv
    gc.collect()
    assert file_mappings(archive_path) == [], "mapping leaked after the last view went"


def test_close_then_release_mappings_unmaps_when_nothing_was_handed_out(archive_path):
    arch = bfa.Archive.open(archive_path)
    assert arch["users"][5]["name"] == "user-5"
    assert file_mappings(archive_path)
    arch.close()
    assert len(file_mappings(archive_path)) == 1  # kept for the next open
    assert bfa.release_mappings() >= 1
    assert file_mappings(archive_path) == []
    assert bfa.release_mappings() == 0


# --------------------------------------------------------------------------
# load(): owned copies


def test_load_returns_owned_writeable_copies_independent_of_the_file(archive_path):
    bfa.release_mappings()
    loaded = bfa.load(archive_path)
    assert file_mappings(archive_path) == [], "load() left the file mapped"
    os.remove(archive_path)
    gc.collect()
    for key in ARRAY_KEYS:
        arr = loaded[key]
        assert type(arr) is np.ndarray and arr.flags.writeable
        assert not isinstance(base_chain_end(arr), mmap.mmap)
        assert np.array_equal(arr, DATA[key]) and arr.dtype == DATA[key].dtype
    for key in BYTES_KEYS:
        assert type(loaded[key]) is bytes and loaded[key] == bytes(DATA[key])
    assert loaded["fortran"].flags.f_contiguous
    loaded["f32"][0, 0] = 42.0  # writeable, and the change stays local
    assert loaded["f32"][0, 0] == 42.0
    assert loaded["users"] == DATA["users"]


def test_to_python_of_views_copies(archive_path):
    with bfa.Archive.open(archive_path) as arch:
        nested = arch["nested"].to_python()
    arr = nested["deep"][0]
    assert arr.flags.writeable and not isinstance(base_chain_end(arr), mmap.mmap)
    arr[0, 0] = 5
    assert arr[0, 0] == 5
