"""Archive.open keeps the mapping of an unchanged file for the next open
(bfast_archive/_mappings.py): same bytes, fewer system calls, never a stale
or short mapping."""
from __future__ import annotations

import gc
import mmap
import os

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import _mappings
from tests.support.mapping_helpers import base_chain_end, file_mappings


def mappings_of(path) -> int:
    return len(file_mappings(path))


@pytest.fixture(autouse=True)
def no_kept_mappings():
    bfa.release_mappings()
    yield
    bfa.release_mappings()


def test_second_open_of_an_unchanged_file_reuses_the_mapping(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"x": np.arange(1000), "name": "one"}, path)
    with bfa.Archive.open(path) as a:
        first = base_chain_end(a["x"])
    with bfa.Archive.open(path) as b:
        assert base_chain_end(b["x"]) is first
        assert isinstance(first, mmap.mmap)
        assert b["name"] == "one"
    assert mappings_of(path) == 1


def test_a_replaced_file_gets_a_new_mapping_and_the_old_one_goes(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"x": np.arange(1000), "v": 1}, path)
    with bfa.Archive.open(path) as a:
        old = base_chain_end(a["x"])
        assert a["v"] == 1
    del old
    bfa.dump({"x": np.arange(1000) * 2, "v": 2}, path)  # same size, new inode
    with bfa.Archive.open(path) as b:
        assert b["v"] == 2 and int(b["x"][3]) == 6
    gc.collect()
    assert mappings_of(path) == 1  # the replaced file's mapping was dropped


def test_a_file_whose_size_changed_in_place_is_mapped_again(tmp_path):
    path = tmp_path / "a.bfa"
    small, big = bfa.dumps({"v": "a"}), bfa.dumps({"v": "b" * 5000})
    path.write_bytes(big)
    with bfa.Archive.open(path) as a:
        assert a["v"] == "b" * 5000
    with open(path, "r+b") as f:  # rewritten in place: same inode, shorter
        f.write(small)
        f.truncate(len(small))
    with bfa.Archive.open(path) as b:  # the kept mapping is past the end now
        assert b["v"] == "a" and b.nbytes == len(small)


def test_parsed_state_is_not_reused_after_the_file_is_touched(tmp_path):
    path = tmp_path / "a.bfa"
    # the same values in another order: same size, other offsets
    one = bfa.dumps({"s": "x" * 300, "users": [{"id": i, "name": f"u{i}"} for i in range(50)]})
    two = next(b for b in (bfa.dumps({"users": [{"id": i, "name": f"v{i}"} for i in range(50)],
                                      "s": "x" * n}) for n in range(200, 400))
               if len(b) == len(one))
    path.write_bytes(one)
    with bfa.Archive.open(path) as a:
        assert a["users"][7]["name"] == "u7"  # the root's slot for "users" is remembered
    with open(path, "r+b") as f:  # same size, same inode, new bytes
        f.write(two)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new mtime, always
    with bfa.Archive.open(path) as b:
        assert b["users"][7]["name"] == "v7"
        assert b.verify() > 0


def test_open_costs_no_new_mapping_per_call(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"x": np.arange(100)}, path)
    archives = [bfa.Archive.open(path) for _ in range(20)]
    assert mappings_of(path) == 1
    for a in archives:
        assert int(a["x"][99]) == 99
        a.close()


def test_load_does_not_keep_a_mapping(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"x": np.arange(100)}, path)
    assert np.array_equal(bfa.load(path)["x"], np.arange(100))
    gc.collect()
    assert mappings_of(path) == 0


def test_at_most_max_idle_mappings_are_kept(tmp_path):
    paths = []
    for i in range(_mappings.MAX_IDLE_MAPPINGS + 5):
        p = tmp_path / f"f{i}.bfa"
        bfa.dump({"i": i}, p)
        paths.append(p)
        with bfa.Archive.open(p) as a:
            assert a["i"] == i
    gc.collect()
    kept = sum(mappings_of(p) for p in paths)
    assert kept == _mappings.MAX_IDLE_MAPPINGS
    assert all(mappings_of(p) == 0 for p in paths[:5])  # the least recently used went
    assert bfa.release_mappings() == _mappings.MAX_IDLE_MAPPINGS
    gc.collect()
    assert sum(mappings_of(p) for p in paths) == 0


def test_a_file_that_does_not_parse_is_not_kept(tmp_path):
    path = tmp_path / "bad.bfa"
    data = bytearray(bfa.dumps({"v": 1}))
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(bfa.ArchiveError, match="bad.bfa"):
        bfa.Archive.open(path)
    gc.collect()
    assert mappings_of(path) == 0


def test_deleted_file_is_freed_by_release_mappings(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"x": np.arange(10_000)}, path)
    with bfa.Archive.open(path) as a:
        assert int(a["x"][5]) == 5
    os.remove(path)
    assert mappings_of(path) == 1  # "(deleted)": its blocks are still held
    assert bfa.release_mappings() == 1
    gc.collect()
    assert mappings_of(path) == 0


def test_missing_and_short_files_give_the_same_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        bfa.Archive.open(tmp_path / "nope.bfa")
    short = tmp_path / "short.bfa"
    short.write_bytes(b"\x89BFA")
    with pytest.raises(bfa.ArchiveError, match="truncated"):
        bfa.Archive.open(short)


def test_reopens_share_one_snapshot_and_a_close_closes_only_its_archive(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"users": [{"id": i, "name": f"u{i}"} for i in range(20)], "x": np.arange(10)}, path)
    a = bfa.Archive.open(path)
    users = a["users"]
    b = bfa.Archive.open(path)
    assert b._snap is a._snap  # the kept mapping's snapshot: nothing made again
    assert (b.nbytes, b._root_tag, b._root_off) == (a.nbytes, a._root_tag, a._root_off)
    b_users = b["users"]
    b.close()
    assert b.closed and not a.closed
    with pytest.raises(bfa.ArchiveError, match="closed"):
        b_users[3]
    assert users[3]["name"] == "u3" and int(a["x"][9]) == 9
    a.close()
    with pytest.raises(bfa.ArchiveError, match="closed"):
        users[3]
    with bfa.Archive.open(path) as c:  # both closed: the next open reads as the first did
        assert c["users"][19]["name"] == "u19"


def test_other_open_options_get_their_own_snapshot(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"v": [[1, [2]]]}, path)
    with bfa.Archive.open(path) as a, bfa.Archive.open(path, max_depth=2) as b, \
            bfa.Archive.open(path, threads=1) as c:
        assert b._snap is not a._snap and b._snap.max_depth == 2
        assert c._snap is not a._snap and c._snap.threads == 1
        assert a.to_python() == {"v": [[1, [2]]]}
        with pytest.raises(bfa.ArchiveError, match="max_depth=2"):
            b.to_python()
        # the snapshot remembered for the path follows the last options used
        with bfa.Archive.open(path, threads=1) as d:
            assert d._snap is c._snap


def test_a_compressed_archive_gets_a_snapshot_per_open(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"x": np.arange(100_000), "s": "text"}, path, compression="lz4")
    with bfa.Archive.open(path) as a, bfa.Archive.open(path) as b:
        assert a.compressed and a._snap is not b._snap  # each holds its own payload cache
        assert int(a["x"][99_999]) == 99_999 and b["s"] == "text"


def test_a_touched_file_gets_a_new_snapshot(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"v": 1}, path)
    with bfa.Archive.open(path) as a:
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        with bfa.Archive.open(path) as b:
            assert b._snap is not a._snap and b["v"] == 1
            assert b._ref.identity[4] == st.st_mtime_ns + 1_000_000


def test_the_c_identity_check_agrees_with_os_stat(tmp_path):
    if not _mappings._C_STAT:
        pytest.skip("this platform's core has no stat(2): os.stat alone is used")
    path = tmp_path / "a.bfa"
    bfa.dump({"v": 1}, path)
    ident = _mappings.identity(os.stat(path))
    name, probe = _mappings._probe(str(path), ident)
    assert _mappings.file_matches(name, probe) == 1
    for field, delta in ((0, 1), (1, 1), (2, 1), (3, 1), (3, -1)):  # dev, inode, size, mtime
        other = list(ident[1:])
        other[field] += delta
        assert _mappings.file_matches(name, _mappings._probe(str(path), ("file", *other))[1]) == 0
    assert _mappings.file_matches(os.fsencode(tmp_path / "nope.bfa"), probe) == -1
    # a kept mapping's identity is what os.stat says, as pickling by reference records it
    with bfa.Archive.open(path) as a, bfa.Archive.open(path) as b:
        assert a._ref.identity == b._ref.identity == ident


def _state(arch):
    return {name: getattr(arch, name) for name in bfa.Archive.__slots__ if name != "__weakref__"}


@pytest.mark.parametrize("how", ["absolute", "relative", "home", "options"])
def test_a_reopen_from_the_kept_snapshot_is_the_archive_init_makes(tmp_path, monkeypatch, how):
    from bfast_archive._source import MappedFile

    path = tmp_path / "a.bfa"
    bfa.dump({"users": [{"id": i, "name": f"u{i}"} for i in range(5)]}, path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    given = {"absolute": str(path), "relative": "a.bfa", "home": "~/a.bfa", "options": str(path)}[how]
    options = {"model": dict, "require_zero_copy": True, "threads": 2, "max_depth": 9} \
        if how == "options" else {}
    first = bfa.Archive.open(given, **options)      # maps the file, makes the snapshot
    again = bfa.Archive.open(given, **options)      # from the kept snapshot
    made = bfa.Archive._open_source(MappedFile(given), **options)  # through __init__
    assert again._snap is first._snap is made._snap
    assert _state(again) == _state(made)
    assert again._ref == made._ref and again._ref.path == str(path)
    again.close()
    assert again.closed and not made.closed and not first.closed


def test_verify_and_subclasses_take_the_whole_open(tmp_path):
    path = tmp_path / "a.bfa"
    data = bytearray(bfa.dumps({"s": "x" * 5000, "v": 1}))
    path.write_bytes(bytes(data))
    with bfa.Archive.open(path) as a:  # the snapshot is kept
        assert a["v"] == 1

    class Mine(bfa.Archive):
        __slots__ = ("extra",)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.extra = "set"

    with Mine.open(path) as m:
        assert type(m) is Mine and m.extra == "set" and m["v"] == 1
    with open(path, "r+b") as f:  # damaged in place, same size and mtime (outside the promise)
        st = os.stat(path)
        f.seek(bytes(data).index(b"x" * 100) + 10)
        f.write(b"y")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(bfa.ArchiveError, match="a.bfa"):
        bfa.Archive.open(path, verify=True)
