"""Lazy views: ArchivedDict is a Mapping, ArchivedList a Sequence, with the
semantics of dict and list; repr summarises without materialising; a scalar
root; big dicts; concurrent readers."""
from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import ItemsView, KeysView, Mapping, Sequence, ValuesView
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import bfast_archive as bfa
from tests.support.format_helpers import fix_checksums

ORDERED = {"zeta": 1, "alpha": 2, 3: "three", b"k": [1, 2], "mid": {"x": None}, -7: 2.5}


def view_of(value, **kw):
    return bfa.Archive.from_buffer(bfa.dumps(value), **kw).root


# --------------------------------------------------------------------------
# ArchivedDict


def test_dict_is_a_mapping_with_dict_semantics():
    d = view_of(ORDERED)
    assert isinstance(d, bfa.ArchivedDict) and isinstance(d, Mapping)
    assert len(d) == 6
    assert list(d) == list(ORDERED)  # insertion order, not sorted, not hashed
    assert d["zeta"] == 1 and d["alpha"] == 2 and d[3] == "three" and d[-7] == 2.5
    assert isinstance(d[b"k"], bfa.ArchivedList) and list(d[b"k"]) == [1, 2]
    assert isinstance(d["mid"], bfa.ArchivedDict) and d["mid"]["x"] is None
    assert d.get("alpha") == 2 and d.get("nope") is None and d.get("nope", 42) == 42
    assert "zeta" in d and 3 in d and b"k" in d
    assert "zzz" not in d and 4 not in d and b"q" not in d and None not in d
    assert d == ORDERED and ORDERED == d
    assert d != dict(ORDERED, zeta=0) and d != {"zeta": 1}
    assert dict(d.items())["alpha"] == 2


def test_dict_keys_values_items_views():
    d = view_of(ORDERED)
    keys, values, items = d.keys(), d.values(), d.items()
    assert isinstance(keys, KeysView) and isinstance(values, ValuesView)
    assert isinstance(items, ItemsView)
    assert len(keys) == len(values) == len(items) == 6
    assert list(keys) == list(ORDERED)
    got_values = list(values)
    assert got_values[:2] == [1, 2] and got_values[2] == "three" and got_values[5] == 2.5
    assert [k for k, _ in items] == list(ORDERED)
    assert "alpha" in keys and "omega" not in keys
    assert 2.5 in values and "three" in values and 99 not in values
    assert ("alpha", 2) in items and ("alpha", 3) not in items and ("nope", 1) not in items
    assert keys == set(ORDERED)  # KeysView is a Set


def test_int_str_and_bytes_keys_are_distinct():
    d = view_of({1: "int", "1": "str", b"1": "bytes", 2 ** 80: "big", -(2 ** 80): "negbig",
                 2 ** 63 - 1: "max", -(2 ** 63): "min"})
    assert d[1] == "int" and d["1"] == "str" and d[b"1"] == "bytes"
    assert d[2 ** 80] == "big" and d[-(2 ** 80)] == "negbig"
    assert d[2 ** 63 - 1] == "max" and d[-(2 ** 63)] == "min"
    for missing in (2, "2", b"2", 2 ** 81, 2 ** 63, -(2 ** 63) - 1, "", b"", 0):
        with pytest.raises(KeyError) as info:
            d[missing]
        assert info.value.args[0] == missing
        assert missing not in d and d.get(missing) is None
    assert list(d) == [1, "1", b"1", 2 ** 80, -(2 ** 80), 2 ** 63 - 1, -(2 ** 63)]


def test_bytes_keys():
    keys = [b"", b"a", b"\x00" * 8, b"\x00" * 9, bytes(range(256)), b"\xff" * 40]
    d = view_of({k: i for i, k in enumerate(keys)})
    assert [d[k] for k in keys] == list(range(len(keys)))
    assert list(d) == keys and all(type(k) is bytes for k in d)
    with pytest.raises(KeyError):
        d[b"\x00" * 7]


def test_string_keys_with_any_code_point():
    keys = ["", "é", "\ud800", "\udfff\ud800", "\U0010ffff", "\x00", "a" * 8, "a" * 9, "日本語"]
    d = view_of({k: i for i, k in enumerate(keys)})
    assert [d[k] for k in keys] == list(range(len(keys)))
    assert list(d) == keys


def test_missing_key_raises_key_error():
    d = view_of({"a": 1})
    with pytest.raises(KeyError) as info:
        d["b"]
    assert info.value.args == ("b",)
    with pytest.raises(KeyError):
        view_of({})["a"]
    assert view_of({}).get("a", 5) == 5


def test_numpy_integer_keys_look_up_their_value():
    d = view_of({0: "zero", 5: "five"})
    assert d[np.int64(5)] == "five"
    assert d.get(np.int32(7)) is None      # 7 is missing: not "zero"
    assert np.uint8(9) not in d


def test_dict_view_equality_with_nested_values():
    value = {"a": [1, 2, {"b": (3, 4)}], "c": {"d": "e"}, "f": b"bytes"}
    assert view_of(value) == value


# --------------------------------------------------------------------------
# ArchivedList (generic layout and the record-table layout)

LISTS = {
    "generic": [0, "one", 2.0, None, [4], {"five": 5}, b"six", 7],
    # same-keyed dicts may be stored column by column; still an ArchivedList
    "records": [{"id": i, "name": f"n{i}", "score": i / 2} for i in range(8)],
}


@pytest.mark.parametrize("kind", LISTS)
def test_list_is_a_sequence_with_list_semantics(kind):
    items = LISTS[kind]
    lst = view_of(items)
    n = len(items)
    assert isinstance(lst, bfa.ArchivedList) and isinstance(lst, Sequence)
    assert len(lst) == n and not lst.is_tuple
    for i in range(-n, n):
        got = lst[i]
        assert (got.to_python() if hasattr(got, "to_python") else
                (bytes(got) if isinstance(got, memoryview) else got)) == items[i]
    for bad in (n, -n - 1, 2 ** 63, -(2 ** 63) - 1, 2 ** 70, -(2 ** 70)):
        with pytest.raises(IndexError):
            lst[bad]
    for index_type in (np.int64, np.int32, np.uint8, np.intp):
        assert lst[index_type(1)] == lst[1]
    assert lst[np.int64(-1)] == lst[n - 1]
    for bad in ("1", 1.0, None, (1,)):
        with pytest.raises(TypeError):
            lst[bad]
    assert lst.to_python() == items and type(lst.to_python()) is list
    assert lst == items


@pytest.mark.parametrize("kind", LISTS)
def test_list_slices_return_lists(kind):
    items = LISTS[kind]
    lst = view_of(items)
    plain = lambda xs: [x.to_python() if hasattr(x, "to_python") else
                        bytes(x) if isinstance(x, memoryview) else x for x in xs]
    for s in (slice(None), slice(1, 3), slice(-3, None), slice(None, None, 2),
              slice(None, None, -1), slice(5, 1, -2), slice(100, 200), slice(-100, 2)):
        got = lst[s]
        assert type(got) is list
        assert plain(got) == items[s], s


@pytest.mark.parametrize("kind", LISTS)
def test_list_iteration_and_sequence_mixins(kind):
    items = LISTS[kind]
    lst = view_of(items)
    as_plain = [x.to_python() if hasattr(x, "to_python") else
                bytes(x) if isinstance(x, memoryview) else x for x in lst]
    assert as_plain == items
    assert len(list(reversed(lst))) == len(items)
    assert items[1] in lst and lst.index(items[1]) == 1 and lst.count(items[1]) == 1


@pytest.mark.parametrize("rows", [3, 4, 40])  # 4 and more may be stored as a record table
def test_list_cells_of_record_rows_are_views(rows):
    users = view_of([{"name": f"u{i}", "tags": ["a", "b"]} for i in range(rows)])
    tags = users[1]["tags"]
    assert isinstance(tags, bfa.ArchivedList) and not tags.is_tuple
    assert tags.to_python() == ["a", "b"] and list(tags) == ["a", "b"]


def test_record_rows_are_dict_views():
    users = view_of([{"id": i, "name": f"u{i}", "score": i / 2, "ok": i % 2 == 0,
                      "misc": [i, "x"] if i else None} for i in range(6)])
    row = users[2]
    assert isinstance(row, bfa.ArchivedDict) and isinstance(row, Mapping)
    assert list(row) == ["id", "name", "score", "ok", "misc"] and len(row) == 5
    assert row["id"] == 2 and row["name"] == "u2" and row["score"] == 1.0 and row["ok"] is True
    assert isinstance(row["misc"], bfa.ArchivedList) and row["misc"].to_python() == [2, "x"]
    assert users[0]["misc"] is None
    assert row.get("nope") is None and "nope" not in row and "id" in row
    with pytest.raises(KeyError):
        row["nope"]
    assert row == {"id": 2, "name": "u2", "score": 1.0, "ok": True, "misc": [2, "x"]}
    assert row.to_python() == {"id": 2, "name": "u2", "score": 1.0, "ok": True, "misc": [2, "x"]}
    assert repr(row) == "<ArchivedDict 5 keys: 'id', 'name', 'score', 'ok', 'misc'>"


def test_tuples_report_is_tuple_and_come_back_as_tuples():
    t = view_of((1, (2, 3), [4, (5,)]))
    assert isinstance(t, bfa.ArchivedList) and t.is_tuple
    assert t.to_python() == (1, (2, 3), [4, (5,)]) and type(t.to_python()) is tuple
    assert t[1].is_tuple and not t[2].is_tuple and t[2][1].is_tuple
    assert type(t[2].to_python()) is list and type(t[2].to_python()[1]) is tuple
    assert repr(view_of((1, 2))) == "<ArchivedList tuple, 2 items>"


@pytest.mark.parametrize("value", [[1, [2, 3], "x"], (1, (2, 3), "x"),
                                   [{"id": i, "name": f"n{i}"} for i in range(70)]])
def test_list_view_equality_is_that_of_the_value_copied_out(value):
    view = view_of(value)
    other_kind = list(value) if isinstance(value, tuple) else tuple(value)
    assert view == value and value == view and view == view_of(value)
    assert view != other_kind and view != view_of(other_kind)
    assert view != value[:-1] and view != view_of(value[:-1])
    changed = [*value[:-1], "changed"]
    assert view != (tuple(changed) if isinstance(value, tuple) else changed)
    assert (view == {"a": 1}) is False and view.__eq__(3) is NotImplemented


def test_list_view_against_another_length_or_kind_is_unequal_without_reading(monkeypatch):
    """O(1): the lengths and the list/tuple kinds are known without copying anything out."""
    view, tup = view_of(list(range(1000))), view_of(tuple(range(1000)))

    def refuse(self):
        raise AssertionError("copied out")

    monkeypatch.setattr(bfa.ArchivedList, "to_python", refuse)
    assert view != [] and view != list(range(999)) and view != tuple(range(1000))
    assert view != tup and view != view_of([1])
    with pytest.raises(AssertionError, match="copied out"):
        view == list(range(1000))  # noqa: B015 - same length and kind: compared value by value


def test_list_view_equality_with_a_list_subclass_asks_it():
    class Always(list):
        def __eq__(self, other):
            return True

    assert view_of([1, 2]) == Always()  # Python asks the subclass first; no shortcut decides for it


# --------------------------------------------------------------------------
# repr


def test_repr_summarises():
    data = {"meta": {"name": "run-7"}, "users": [{"id": 1}], "emb": np.zeros(3), "blob": b"."}
    assert repr(view_of(data)) == "<ArchivedDict 4 keys: 'meta', 'users', 'emb', 'blob'>"
    assert repr(view_of([1, 2, 3])) == "<ArchivedList 3 items>"
    assert repr(view_of([1])) == "<ArchivedList 1 item>"
    assert repr(view_of({"a": 1})) == "<ArchivedDict 1 key: 'a'>"
    assert repr(view_of({})) == "<ArchivedDict 0 keys>"
    many = repr(view_of({f"k{i}": i for i in range(1000)}))
    assert many.startswith("<ArchivedDict 1000 keys: 'k0', 'k1', ") and len(many) < 200


def _corrupt_strings(data: bytes, marker: bytes) -> bytes:
    """Overwrite every occurrence of ``marker`` with invalid UTF-8."""
    assert marker in data
    return data.replace(marker, b"\xff" * len(marker))


def test_repr_does_not_materialise_values():
    marker = b"payload-payload-payload!"
    value = {"a": marker.decode(), "b": [marker.decode()] * 3, "c": 1}
    data = fix_checksums(_corrupt_strings(bfa.dumps(value), marker))
    root = bfa.Archive.from_buffer(data).root
    assert repr(root) == "<ArchivedDict 3 keys: 'a', 'b', 'c'>"
    assert repr(root["b"]) == "<ArchivedList 3 items>"
    with pytest.raises(bfa.ArchiveError, match="UTF-8"):
        root["a"]
    with pytest.raises(bfa.ArchiveError, match="UTF-8"):
        root["b"].to_python()
    assert root["c"] == 1


# --------------------------------------------------------------------------
# scale


def test_dict_with_a_million_int_keys():
    n = 1_000_000
    d = view_of({i * 7: i for i in range(n)})
    assert len(d) == n
    assert all(d[i * 7] == i for i in range(n))
    for missing in (1, 8, 7 * n, -7, 2 ** 40):
        assert missing not in d
    keys = iter(d)
    assert [next(keys) for _ in range(5)] == [0, 7, 14, 21, 28]
    assert repr(d).startswith("<ArchivedDict 1000000 keys: 0, 7, 14")


def test_list_with_millions_of_items():
    n = 2_000_000
    lst = view_of(list(range(0, 3 * n, 3)))
    assert len(lst) == n
    assert lst[0] == 0 and lst[-1] == 3 * (n - 1) and lst[n // 2] == 3 * (n // 2)
    assert lst[-n] == 0
    with pytest.raises(IndexError):
        lst[n]
    assert lst[n - 5:] == [3 * i for i in range(n - 5, n)]


def test_dict_with_many_str_keys():
    n = 200_000
    d = view_of({f"key-{i:x}": i for i in range(n)})
    assert all(d[f"key-{i:x}"] == i for i in range(n))
    assert all(f"key-{i:x}" not in d for i in range(n, n + 2000))


# --------------------------------------------------------------------------
# non-container root


@pytest.mark.parametrize("value", [42, "text", 1.5, None, True, 2 ** 100, b"bytes"])
def test_scalar_root(value):
    arch = bfa.Archive.from_buffer(bfa.dumps(value))
    root = arch.root
    assert (bytes(root) if isinstance(root, memoryview) else root) == value
    with pytest.raises(TypeError):
        arch[0]
    with pytest.raises(TypeError):
        arch["key"]


def test_array_root():
    arch = bfa.Archive.from_buffer(bfa.dumps(np.arange(5)))
    assert np.array_equal(arch.root, np.arange(5))
    with pytest.raises(TypeError):
        arch["key"]


def test_archive_getitem_is_root_getitem():
    arch = bfa.Archive.from_buffer(bfa.dumps({"a": [1, 2], "b": 2}))
    assert arch["b"] == 2 and list(arch["a"]) == [1, 2]
    with pytest.raises(KeyError):
        arch["c"]
    lst = bfa.Archive.from_buffer(bfa.dumps([10, 20, 30]))
    assert lst[-1] == 30 and lst[0] == 10
    with pytest.raises(IndexError):
        lst[3]


# --------------------------------------------------------------------------
# threads


def test_eight_threads_read_one_archive(tmp_path):
    users = [{"id": i, "name": f"user-{i}", "tags": ["a", str(i)]} for i in range(5000)]
    mixed = [{"id": i} if i % 2 else {"id": i, "extra": [i] * 3} for i in range(2000)]
    data = {"users": users, "mixed": mixed, "lookup": {f"k{i}": i for i in range(5000)},
            "arr": np.arange(10_000, dtype=np.int64)}
    path = tmp_path / "t.bfa"
    bfa.dump(data, path)
    with bfa.Archive.open(path) as arch:
        def worker(seed: int) -> int:
            rng = random.Random(seed)
            checked = 0
            for _ in range(1500):
                i = rng.randrange(5000)
                assert arch["users"][i]["name"] == f"user-{i}"
                assert list(arch["users"][i]["tags"]) == ["a", str(i)]
                assert arch["lookup"][f"k{i}"] == i
                j = rng.randrange(2000)
                assert arch["mixed"][j].to_python() == mixed[j]
                assert int(arch["arr"][i]) == i
                checked += 1
            assert arch["mixed"].to_python() == mixed
            return checked

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(worker, range(8)))
    assert results == [1500] * 8


_DEEP_RACE = textwrap.dedent("""
    # Thread A starts a deep walk (the library raises the recursion limit),
    # thread B starts one while A is inside (sees the raised limit, keeps it),
    # A finishes (puts the limit back) while B is 600 levels deep.
    import sys, threading
    import bfast_archive as bfa

    MODE = sys.argv[1]
    deep = []
    cur = deep
    for _ in range(900):
        nxt = []
        cur.append(nxt)
        cur = nxt
    arch = bfa.Archive.from_buffer(bfa.dumps(deep))
    run = arch.to_python if MODE == "read" else (lambda: bfa.dumps(deep))
    target = "mat" if MODE == "read" else "value"
    a_inside, b_started, b_deep, a_done = (threading.Event() for _ in range(4))

    def tracer(pauses):
        count = 0
        def trace(frame, event, arg):
            nonlocal count
            if event == "call" and frame.f_code.co_name == target:
                count += 1
                if count in pauses:
                    signal, wait_for = pauses[count]
                    signal.set()
                    if wait_for is not None:
                        wait_for.wait(5)
            return None
        return trace

    errors = []
    def thread(pauses, done=None):
        sys.settrace(tracer(pauses))
        try:
            run()
        except BaseException as exc:
            errors.append(repr(exc)[:80])
        finally:
            sys.settrace(None)
            if done is not None:
                done.set()

    a = threading.Thread(target=thread, args=({1: (a_inside, b_started)}, a_done))
    b = threading.Thread(target=thread, args=({1: (b_started, None), 600: (b_deep, a_done)},))
    a.start()
    a_inside.wait(5)
    b.start()
    a.join()
    b.join()
    # the interleaving really happened (else the walk functions were renamed)
    print("engaged:", a_inside.is_set() and b_started.is_set() and b_deep.is_set())
    print("errors:", errors)
""")


@pytest.mark.parametrize("mode", ["read", "write"])
def test_concurrent_deep_walks_do_not_break_each_other(tmp_path, mode):
    proc = subprocess.run([sys.executable, "-c", _DEEP_RACE, mode], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["engaged: True", "errors: []"], proc.stdout


def test_deep_walks_in_parallel_threads_without_overlap_work():
    """Control for the test above: the same deep data read by threads one at a time."""
    deep = []
    cur = deep
    for _ in range(900):
        nxt = []
        cur.append(nxt)
        cur = nxt
    arch = bfa.Archive.from_buffer(bfa.dumps(deep))
    lock = threading.Lock()
    errors = []

    def work():
        with lock:
            try:
                out = arch.to_python()
                assert len(out) == 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
