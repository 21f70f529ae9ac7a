"""bfa.Cache in one process: hits, misses, stats, LRU eviction, corrupt entries."""
import logging
import mmap
import os
import time

import numpy as np
import pytest

import bfast_archive as bfa


def _reaches_mmap(arr) -> bool:
    obj = arr
    for _ in range(20):
        if isinstance(obj, mmap.mmap):
            return True
        obj = getattr(obj, "base", None) if not isinstance(obj, memoryview) else obj.obj
        if obj is None:
            return False
    return False


def test_hit_miss_and_stats(tmp_path):
    cache = bfa.Cache(tmp_path / "c")
    assert (tmp_path / "c").is_dir()
    emb = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache["features:v3"] = {"ids": [1, 2, 3], "emb": emb, "name": "x"}
    hit = cache.get("features:v3")
    assert isinstance(hit, bfa.ArchivedDict)
    assert hit["ids"].to_python() == [1, 2, 3] and hit["name"] == "x"
    arr = hit["emb"]
    assert np.array_equal(arr, emb) and not arr.flags.writeable and not arr.flags.owndata
    assert _reaches_mmap(arr), "the array must be a view of the mapped entry"
    assert cache.get("nope") is None
    assert cache.get("nope", 42) == 42
    with pytest.raises(KeyError):
        cache["nope"]
    assert cache["features:v3"]["name"] == "x"
    stats = cache.stats()
    assert stats["hits"] == 2 and stats["misses"] == 3
    assert stats["entries"] == 1 and stats["bytes"] == os.path.getsize(cache.path("features:v3"))
    assert "features:v3" in cache and "nope" not in cache and 3 not in cache
    assert cache.stats()["hits"] == 2  # `in` is not counted
    assert len(cache) == 1 and list(cache) == ["features:v3"]


def test_keys_values_and_lifecycle(tmp_path):
    cache = bfa.Cache(tmp_path)
    keys = ["a", "a/b/../c", "ключ 🔑", "x" * 5000, ""]
    for i, key in enumerate(keys):
        cache[key] = i
    assert sorted(cache) == sorted(keys)
    for i, key in enumerate(keys):
        assert cache[key] == i
        name = os.path.basename(cache.path(key))
        assert len(name) == 36 and name.endswith(".bfa")
    cache["a"] = None                       # a stored None is a hit, not a miss
    assert cache["a"] is None and "a" in cache
    cache["a"] = b"bytes value"             # overwrite
    assert bytes(cache["a"]) == b"bytes value"
    del cache["a"]
    assert "a" not in cache and cache.get("a") is None
    with pytest.raises(KeyError):
        del cache["a"]
    with pytest.raises(TypeError):
        cache[3] = 1
    assert len(cache) == len(keys) - 1
    cache.clear()
    assert len(cache) == 0 and cache.stats()["bytes"] == 0


def test_scalars_and_tuples_come_back(tmp_path):
    cache = bfa.Cache(tmp_path)
    cache["f"] = 1.5
    cache["t"] = (1, "two")
    cache["l"] = list(range(100))
    assert cache["f"] == 1.5
    t = cache["t"]
    assert isinstance(t, bfa.ArchivedList) and t.is_tuple and t.to_python() == (1, "two")
    assert cache["l"][57] == 57


def test_expanduser(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = bfa.Cache("~/.cache/myapp")
    assert cache.directory == str(tmp_path / ".cache" / "myapp")
    cache["k"] = 1
    assert (tmp_path / ".cache" / "myapp").is_dir() and len(cache) == 1


def _entry_size(tmp_path) -> int:
    probe = bfa.Cache(tmp_path / "probe")
    probe["a"] = np.zeros(10_000, np.uint8)
    return os.path.getsize(probe.path("a"))


def test_lru_eviction(tmp_path):
    size = _entry_size(tmp_path)
    cache = bfa.Cache(tmp_path / "c", max_bytes=int(size * 3.5))
    for key in "abc":
        cache[key] = np.zeros(10_000, np.uint8)
    assert len(cache) == 3
    assert cache.get("a") is not None       # a is now the most recently used
    cache["d"] = np.zeros(10_000, np.uint8)  # over the limit: b, the least recent, goes
    assert sorted(cache) == ["a", "c", "d"]
    assert cache.stats()["bytes"] <= cache.max_bytes
    cache["e"] = np.zeros(10_000, np.uint8)
    assert sorted(cache) == ["a", "d", "e"]
    assert cache.stats()["evictions"] == 2


def test_entry_larger_than_max_bytes_is_kept_until_next_publish(tmp_path):
    cache = bfa.Cache(tmp_path, max_bytes=1000)
    cache["big"] = np.zeros(50_000, np.uint8)
    assert cache.get("big") is not None
    cache["small"] = 1
    assert "big" not in cache and cache["small"] == 1


def test_eviction_seen_by_other_processes_counts(tmp_path):
    """Entries written by another Cache object (another process) count too."""
    size = _entry_size(tmp_path)
    other = bfa.Cache(tmp_path / "c")
    for key in "abcd":
        other[key] = np.zeros(10_000, np.uint8)
        time.sleep(0.002)
    cache = bfa.Cache(tmp_path / "c", max_bytes=int(size * 2.5))
    cache["e"] = np.zeros(10_000, np.uint8)
    assert sorted(cache) == ["d", "e"]


def test_reader_keeps_data_when_entry_is_evicted_or_replaced(tmp_path):
    cache = bfa.Cache(tmp_path, max_bytes=1 << 20)
    cache["a"] = {"arr": np.full(100_000, 7, np.int64)}
    held = cache["a"]["arr"]
    view = cache["a"]
    for i in range(30):                      # evicts "a" many times over
        cache[f"x{i}"] = np.zeros(100_000, np.uint8)
    assert "a" not in cache
    cache["a"] = {"arr": np.full(100_000, 9, np.int64)}   # a new file under the same name
    del cache["a"]
    assert held.sum() == 7 * 100_000 and (view["arr"] == 7).all()


def _corrupt_cases():
    def garbage(path):
        with open(path, "wb") as f:
            f.write(b"\x00garbage" * 100)

    def truncated(path):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)

    def empty(path):
        open(path, "wb").close()

    def header_only(path):
        with open(path, "r+b") as f:
            f.truncate(40)

    return [garbage, truncated, empty, header_only]


@pytest.mark.parametrize("damage", _corrupt_cases(), ids=lambda f: f.__name__)
def test_corrupt_entry_is_a_miss_removed_and_logged(tmp_path, caplog, damage):
    cache = bfa.Cache(tmp_path)
    cache["k"] = {"arr": np.arange(10_000), "s": "value"}
    path = cache.path("k")
    damage(path)
    with caplog.at_level(logging.WARNING, logger="bfast_archive.cache"):
        assert cache.get("k") is None
    assert not os.path.exists(path)
    assert any(r.name == "bfast_archive.cache" and "corrupt" in r.getMessage()
               for r in caplog.records)
    stats = cache.stats()
    assert stats["misses"] == 1 and stats["hits"] == 0 and stats["corrupt"] == 1
    cache["k"] = 5                           # and the key works again
    assert cache["k"] == 5


def test_foreign_archive_under_an_entry_name_is_a_miss(tmp_path, caplog):
    cache = bfa.Cache(tmp_path)
    bfa.dump({"something": "else"}, cache.path("k"))
    with caplog.at_level(logging.WARNING, logger="bfast_archive.cache"):
        assert cache.get("k") is None
    assert not os.path.exists(cache.path("k"))
    bfa.dump({"key": "other key", "value": 1}, cache.path("k"))  # another key's entry
    assert cache.get("k") is None


def test_other_files_are_ignored_and_stray_temporaries_removed(tmp_path):
    """A temporary file whose writer holds its flock is live; an unlocked one
    (its writer is gone) is stray and removed, however recent."""
    import fcntl

    cache = bfa.Cache(tmp_path)
    cache["k"] = 1
    (tmp_path / "README").write_text("not an entry")
    live = tmp_path / ".abc.bfa.x1.bfa-tmp"
    stray = tmp_path / ".abc.bfa.x2.bfa-tmp"
    live.write_bytes(b"in progress")
    stray.write_bytes(b"abandoned")
    with open(live, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        assert len(cache) == 1 and list(cache) == ["k"]
        assert cache.stats()["entries"] == 1
        assert live.exists() and not stray.exists()
        cache.clear()
        assert (tmp_path / "README").exists() and live.exists()


def test_hits_do_not_leak_file_descriptors(tmp_path):
    cache = bfa.Cache(tmp_path)
    cache["k"] = 1
    cache["arr"] = np.zeros(10)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(500):
        assert cache["k"] == 1
        cache["arr"].sum()
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_lazy_exports_keep_import_cheap():
    import subprocess
    import sys

    code = ("import sys, bfast_archive as bfa; a = 'numpy' in sys.modules; "
            "c = 'bfast_archive.cache' in sys.modules; bfa.Cache; bfa.memoize; "
            "print(a, c, 'numpy' in sys.modules, 'Cache' in bfa.__all__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False", "False", "True"]


def test_repeated_hits_hand_out_independent_objects(tmp_path):
    cache = bfa.Cache(tmp_path)
    cache["arr"] = np.arange(12)
    cache["set"] = {1, 2, 3}
    cache["blob"] = b"x" * 100
    a = cache["arr"]
    a.shape = (3, 4)                 # a caller reshaping its array in place
    assert cache["arr"].shape == (12,) and np.shares_memory(a, cache["arr"])
    s = cache["set"]
    s.add(4)                          # sets are plain (mutable) values
    assert cache["set"] == {1, 2, 3}
    m = cache["blob"]
    m.release()                       # a caller releasing its memoryview
    assert bytes(cache["blob"]) == b"x" * 100


def test_open_entries_are_bounded(tmp_path):
    cache = bfa.Cache(tmp_path)
    for i in range(200):
        cache[f"k{i}"] = np.zeros(4)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(200):
        assert cache[f"k{i}"].shape == (4,)
    assert len(os.listdir("/proc/self/fd")) <= before + 70
