"""The byte-source interface under an Archive (bfast_archive/_source.py) and
the snapshot an open archive reads through (bfast_archive/_snapshot.py)."""
import threading

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive._source import ByteSource, CallerBuffer, MappedFile


@pytest.fixture
def archive_bytes():
    return bfa.dumps({"users": [{"id": i, "name": f"u{i}"} for i in range(100)],
                      "emb": np.arange(32.0)})


def test_both_sources_read_the_same_ranges(tmp_path, archive_bytes):
    path = tmp_path / "a.bfa"
    path.write_bytes(archive_bytes)
    for source in (MappedFile(path), CallerBuffer(archive_bytes)):
        assert source.size == len(archive_bytes)
        assert bytes(source.read(0, 64)) == archive_bytes[:64]
        assert bytes(source.read(len(archive_bytes) - 5, 5)) == archive_bytes[-5:]
        assert bytes(source.read(10, 0)) == b""


@pytest.mark.parametrize("off,n", [(-1, 4), (0, -1), (1, 10**9)])
def test_a_range_outside_the_archive_is_an_archive_error(archive_bytes, off, n):
    with pytest.raises(bfa.ArchiveError, match="outside the archive"):
        CallerBuffer(archive_bytes).read(off, n)


def test_an_archive_is_made_from_a_byte_source(archive_bytes):
    arch = bfa.Archive(CallerBuffer(archive_bytes))
    assert arch["users"][7]["name"] == "u7"
    with pytest.raises(TypeError, match="Archive.open"):
        bfa.Archive(archive_bytes)


def test_a_source_that_cannot_be_read_in_place_is_refused_by_name(archive_bytes):
    class Ranged(ByteSource):
        name, size = "ranged://x", len(archive_bytes)

        def read(self, off, n):
            return memoryview(archive_bytes)[off:off + n]

    with pytest.raises(bfa.ArchiveError, match="ranged://x"):
        bfa.Archive(Ranged())


def test_close_drops_the_snapshot_and_views_see_it(archive_bytes):
    arch = bfa.Archive.from_buffer(archive_bytes)
    users = arch["users"]
    snap = arch._snap
    arch.close()
    assert arch._snap is None and arch.closed
    with pytest.raises(bfa.ArchiveError, match="closed"):
        users[0]
    # the snapshot itself still holds valid buffers: a read that took it first finishes
    assert bytes(snap.mv[:4]) == archive_bytes[:4]


def test_a_walk_shares_the_buffers_and_tracks_on_its_own(archive_bytes):
    arch = bfa.Archive.from_buffer(archive_bytes)
    snap = arch._snap
    walk = snap.walk(arch)
    assert walk.mv is snap.mv and walk.ptr is snap.ptr and walk.tables is snap.tables
    assert 123 not in snap.seen
    walk.seen.add(123)
    assert 123 not in snap.seen and 123 not in snap.walk(arch).seen


def test_reads_racing_close_from_many_threads_give_values_or_closed(archive_bytes):
    for _ in range(20):
        arch = bfa.Archive.from_buffer(archive_bytes)
        errors = []

        def read():
            try:
                for i in range(200):
                    assert arch["users"][i % 100]["id"] == i % 100
            except bfa.ArchiveError as exc:
                if "closed" not in str(exc):
                    errors.append(exc)
            except BaseException as exc:  # anything else is a bug
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        arch.close()
        for t in threads:
            t.join()
        assert errors == []


def test_a_walk_copies_every_buffer_field_of_its_snapshot(archive_bytes):
    from bfast_archive._snapshot import Snapshot

    arch = bfa.Archive.from_buffer(archive_bytes)
    snap = arch._snap
    walk = snap.walk(arch, check=True, models={})
    state = {"seen", "models", "check", "arch"}
    for name in set(Snapshot.__slots__) - state:
        assert getattr(walk, name) is getattr(snap, name), name
    assert (walk.check, walk.models, walk.arch) == (True, {}, arch)


def test_lazy_none_and_bools_need_no_walk(archive_bytes):
    arch = bfa.Archive.from_buffer(bfa.dumps({"n": None, "t": True, "f": False}))
    assert (arch["n"], arch["t"], arch["f"]) == (None, True, False)
    assert type(arch["t"]) is bool
