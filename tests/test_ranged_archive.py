"""Archive.open(url): archives read by byte range.

The image of a ranged archive is filled block by block as reads need it; a
byte read before it arrived would be a wrong value. The property tests open
archives with tiny blocks and an image pre-filled with garbage (``poison``):
every lazy read and copy-out must still give exactly what was dumped. The
server tests count the requests and bytes that real reads cost.
"""
import gc
import threading

import fsspec
import numpy as np
import pandas as pd
import pydantic
import pytest
from hypothesis import given, settings, strategies as st

import bfast_archive as bfa
from bfast_archive._ranged import open_ranged
from bfast_archive.archive import Archive
from tests.support.strategies import (assert_arrays_identical, assert_deep_equal, assert_view_matches,
                                      records, values)

_names = iter(range(10**9))


def _memory_url(data: bytes) -> str:
    url = f"memory://ranged/{next(_names)}.bfa"
    with fsspec.open(url, "wb") as f:
        f.write(data)
    return url


def _poisoned(url: str, block: int = 512, **kw) -> Archive:
    """The archive at ``url`` over an image of garbage bytes, 512 B blocks,
    a 512 B tail: almost every read must fetch first."""
    return Archive._open_source(open_ranged(url, block=block, tail=512, poison=0xA5, **kw))


def _plain_view(v):
    """A ranged view's value through lazy access only (no to_python)."""
    if isinstance(v, bfa.ArchivedDict):
        return {k: _plain_view(v[k]) for k in v}
    if isinstance(v, bfa.ArchivedList):
        items = [_plain_view(v[i]) for i in range(len(v))]
        return tuple(items) if v.is_tuple else items
    if isinstance(v, memoryview):
        return bytes(v)
    return v


@settings(max_examples=60)
@given(values, st.sampled_from([None, "lz4"]))
def test_lazy_reads_of_a_ranged_archive_give_exactly_what_was_dumped(value, compression):
    url = _memory_url(bfa.dumps({"v": value}, compression=compression))
    with _poisoned(url) as arch:
        assert_view_matches(arch["v"], value)
    with _poisoned(url) as arch:
        assert_deep_equal(arch.to_python(), {"v": value})


@settings(max_examples=40)
@given(st.lists(records(values), min_size=1, max_size=3))
def test_table_cells_rows_and_columns_of_a_ranged_archive(tables):
    data = bfa.dumps(tables)
    url = _memory_url(data)
    with _poisoned(url) as arch:  # cells first, one by one, nothing fetched ahead
        for t, rows in zip(arch.root, tables):
            for i, row in enumerate(rows):
                for k, v in row.items():
                    got = t[i][k]
                    if isinstance(got, bfa.ArchivedList):
                        got = got.to_python()
                    elif isinstance(got, bfa.ArchivedDict):
                        got = got.to_python()
                    elif isinstance(got, memoryview):
                        got = bytes(got)
                    assert_deep_equal(got, v, f"[{i}][{k!r}]")
    local = bfa.Archive.from_buffer(data)
    with _poisoned(url) as arch:  # whole columns, as a local archive gives them
        for t, want_t, rows in zip(arch.root, local.root, tables):
            if isinstance(t, bfa.ArchivedTable):
                for k in rows[0]:
                    got, want = t.column(k), want_t.column(k)
                    assert type(got) is type(want)
                    if isinstance(want, np.ma.MaskedArray):
                        assert_arrays_identical(got.mask, want.mask)
                        assert_arrays_identical(got.data, want.data)
                    elif isinstance(want, np.ndarray):
                        assert_arrays_identical(got, want)
                    else:
                        assert_deep_equal(got, want)


@given(st.randoms(use_true_random=False), st.integers(200, 600))
@settings(max_examples=10)
def test_lookups_in_a_big_dict_of_a_ranged_archive(rnd, n):
    d = {f"key-{rnd.random()!r}"[:rnd.randint(4, 30)]: rnd.randint(-9, 9) for _ in range(n)}
    d.update({rnd.randint(-10**6, 10**6): "int key" for _ in range(n // 4)})
    url = _memory_url(bfa.dumps({"d": d}))
    with _poisoned(url) as arch:
        view = arch["d"]
        for k, v in d.items():
            assert view[k] == v
        with pytest.raises(KeyError):
            view["\x00not a key"]


def test_arrays_of_a_ranged_archive_are_owned_and_rows_fetch_alone():
    emb = np.arange(64 * 1024, dtype=np.float32).reshape(-1, 64)
    url = _memory_url(bfa.dumps({"emb": emb, "small": np.arange(3)}))
    with _poisoned(url) as arch:
        handle = arch.array("emb")
        row = handle[700]
        assert np.array_equal(row, emb[700])
        assert np.array_equal(handle[10:20], emb[10:20])
        whole = arch["emb"]
        assert np.array_equal(whole, emb) and not whole.flags.writeable
        image = arch._snap.image
        # owned: not a view of the image (which holds only what nodes needed)
        assert not np.shares_memory(whole, np.frombuffer(image.buffer(), np.uint8))
        assert image.fetched < emb.nbytes // 4


def test_ranged_views_refuse_reads_after_close():
    url = _memory_url(bfa.dumps({"users": [{"id": i, "name": f"u{i}"} for i in range(100)]}))
    arch = _poisoned(url)
    users = arch["users"]
    arch.close()
    with pytest.raises(bfa.ArchiveError, match="closed"):
        users[5]["name"]
    del arch, users
    gc.collect()


def test_threads_reading_one_ranged_archive_agree():
    rows = [{"id": i, "name": f"user-{i:06d}", "tags": [str(i)] * (i % 3)} for i in range(3000)]
    url = _memory_url(bfa.dumps({"users": rows}))
    arch = _poisoned(url)
    errors = []

    def reader(start):
        try:
            users = arch["users"]
            for i in range(start, 3000, 7):
                assert users[i]["name"] == rows[i]["name"]
                assert list(users[i]["tags"]) == rows[i]["tags"]
        except BaseException as exc:  # pragma: no cover (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    arch.close()


def test_open_url_names_the_url_in_errors():
    url = _memory_url(b"not an archive at all, just bytes" * 4)
    with pytest.raises(bfa.ArchiveError, match="memory://ranged/"):
        bfa.Archive.open(url)


def test_open_url_with_model_gives_typed_views():
    class User(pydantic.BaseModel):
        id: int
        name: str

    users = [User(id=i, name=f"n{i}") for i in range(50)]
    url = _memory_url(bfa.dumps(users))
    with bfa.Archive.open(url, model=list[User]) as arch:
        assert arch.root[7].name == "n7"
        assert arch.to_model() == users


def _every_column_kind(n):
    import datetime as dt
    import decimal

    base = dt.datetime(2024, 1, 1)
    return [{"id": i, "score": None if i % 7 == 0 else i / 3, "flag": i % 2 == 0,
             "name": None if i % 11 == 0 else f"name-{i}-" + "é" * (i % 4),
             "tags": [f"t{j}" for j in range(i % 4)], "when": base + dt.timedelta(seconds=i),
             "blob": bytes([i % 256]) * (i % 5), "price": decimal.Decimal(i) / 4,
             "nested": {"k": i, "s": str(i)}} for i in range(n)]


def test_every_column_kind_read_cell_by_cell_from_a_ranged_archive():
    rows = _every_column_kind(2500)
    data = bfa.dumps({"rows": rows})
    url = _memory_url(data)
    order = np.random.default_rng(7).permutation(len(rows))
    with _poisoned(url) as arch:
        table = arch["rows"]
        assert isinstance(table, bfa.ArchivedTable)
        for i in order[:600]:
            for k, v in rows[i].items():
                got = table[int(i)][k]
                if isinstance(got, (bfa.ArchivedList, bfa.ArchivedDict)):
                    got = got.to_python()
                elif isinstance(got, memoryview):
                    got = bytes(got)
                assert_deep_equal(got, v, f"[{i}][{k!r}]")
    with _poisoned(url) as arch:
        local = bfa.Archive.from_buffer(data)
        for k in rows[0]:
            got, want = arch["rows"].column(k), local["rows"].column(k)
            if isinstance(want, np.ndarray):
                assert_arrays_identical(np.asarray(got), np.asarray(want))
            else:
                assert_deep_equal(got, want)


def test_data_frames_from_a_ranged_archive():
    df = pd.DataFrame({"id": np.arange(3000), "x": np.linspace(0, 1, 3000),
                       "name": [f"n{i}" for i in range(3000)],
                       "cat": pd.Categorical([f"c{i % 5}" for i in range(3000)]),
                       "ts": pd.date_range("2024-01-01", periods=3000, freq="s", tz="UTC")})
    url = _memory_url(bfa.dumps({"df": df}))
    with _poisoned(url) as arch:
        got = arch["df"].to_pandas()
        pd.testing.assert_frame_equal(got, df, check_exact=True)
    with _poisoned(url) as arch:
        pd.testing.assert_frame_equal(arch.to_python()["df"], df, check_exact=True)


def _golden_names():
    from tests.support.hostile import golden

    return sorted(golden())


@settings(max_examples=150)
@given(st.sampled_from(_golden_names()), st.data())
def test_mutated_archives_read_by_range_fail_as_local_ones_do(name, data):
    """A damaged archive read by range raises only the documented errors,
    and what lazy reads give agrees with the same bytes read locally."""
    from tests.support.hostile import Walker, flip_bit, golden, guard, refresh_checksums, same

    blob = golden()[name]
    pos = data.draw(st.integers(0, len(blob) - 1))
    mutated = flip_bit(blob, pos, data.draw(st.integers(0, 7)))
    if data.draw(st.booleans()):
        ok, fixed = guard(refresh_checksums, mutated)
        mutated = fixed if ok else mutated
    ok_local, local = guard(lambda: bfa.Archive.from_buffer(mutated))
    ok_remote, arch = guard(lambda: _poisoned(_memory_url(bytes(mutated))))
    if not ok_local:
        # a local open decodes a compressed archive's nodes, a ranged one
        # decodes each chunk when a read needs it: the damage shows then,
        # unless the reads took the nodes from the tail copy (format 1.2),
        # whose checksums passed: then they are the undamaged values, and
        # verify() still reports the damaged original
        if ok_remote:
            with arch:
                ok, value = guard(arch.to_python)
                if ok:
                    assert same(value, bfa.loads(blob))
                    assert not guard(arch.verify)[0]
        return
    if not ok_remote:
        # a ranged open reads the nodes' last chunks from the tail copy, which a
        # local open never reads: damage there shows in a local verify() too
        assert isinstance(arch, bfa.ArchiveError) and "the tail copy of payload 0" in str(arch)
        with local:
            assert not guard(local.verify)[0]
        return
    with arch, local:
        ok_l, want = Walker(local, 300).plain(local.root) if guard(lambda: local.root)[0] \
            else (False, None)
        ok_r, root = guard(lambda: arch.root)
        if ok_r:
            ok_r, got = Walker(arch, 300).plain(root)
            Walker(arch, 300).visit(root)
        if ok_l and ok_r:
            assert same(got, want)


class _Nodes:
    """A stand-in FileLayer: payload 0 of ``size`` bytes in ``chunk`` chunks,
    stored in ``stored`` bytes."""

    def __init__(self, size, chunk, stored=1 << 30):
        self.size, self.chunk, self.stored = size, chunk, stored

    def stored_bytes(self, index):
        return self.stored

    def _entry(self, index):
        return self.size, self.chunk, 0, -(-self.size // self.chunk)

    def chunk_size(self, index):
        return self.chunk


def test_nodes_image_fills_are_widened_to_whole_chunks_and_merged():
    from bfast_archive._ranged import _Structure

    s = _Structure(_Nodes(10 * 4096 + 3000, 4096), bytes(64), "memory://x")
    assert s.cover([(0, 10)]) == [(0, 10)]  # the header alone: no chunk
    assert s.cover([(64 + 4096 + 5, 10)]) == [(64 + 4096, 4096)]
    # two ranges in one chunk and one in the next: one range of two chunks
    assert s.cover([(64 + 5, 1), (64 + 100, 1), (64 + 4096, 1)]) == [(64, 8192)]
    assert s.cover([(60, 10)]) == [(60, 4 + 4096)]  # header bytes as asked, then chunk 0


def test_a_short_last_chunk_of_nodes_comes_with_the_one_before_it():
    from bfast_archive._ranged import _Structure

    short = _Structure(_Nodes(10 * 4096 + 100, 4096), bytes(64), "memory://x")
    assert short.cover([(short.size - 8, 8)]) == [(64 + 9 * 4096, 4096 + 100)]
    long = _Structure(_Nodes(10 * 4096 + 3000, 4096), bytes(64), "memory://x")
    assert long.cover([(long.size - 8, 8)]) == [(64 + 10 * 4096, 3000)]


def test_nodes_stored_in_at_most_128_kib_are_fetched_whole_by_the_first_read():
    from bfast_archive._ranged import _Structure

    small = _Structure(_Nodes(100 * 4096, 4096, stored=128 << 10), bytes(64), "memory://x")
    assert small.cover([(64 + 5 * 4096, 8)]) == [(64, 100 * 4096)]
    assert small.cover([(0, 8)]) == [(0, 8)]  # the header alone: no chunk
    big = _Structure(_Nodes(100 * 4096, 4096, stored=(128 << 10) + 1), bytes(64), "memory://x")
    assert big.cover([(64 + 5 * 4096, 8)]) == [(64 + 5 * 4096, 4096)]
