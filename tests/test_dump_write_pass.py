"""dump of an uncompressed archive takes its checksums in the same pass as
the write (docs/CONCEPTS.md, "Checksums and verify": writing them costs
no extra pass): the file holds exactly the bytes of dumps,
whichever way the hashing ran, and each block is hashed only once written."""
from __future__ import annotations

import os

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import _tempfiles, framing

SMALL = {"a": list(range(100)), "s": "x" * 1000}
LARGE = {"emb": np.arange(3_000_000, dtype=np.float64), "blob": b"\x07" * 200_000,
         "rows": [{"id": i, "name": f"n{i}"} for i in range(2000)]}  # 24 MB: several blocks


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("value", [SMALL, LARGE], ids=["small", "large"])
@pytest.mark.parametrize("compression", [None, "lz4"])
def test_dump_writes_the_bytes_of_dumps(tmp_path, value, threads, compression):
    path = tmp_path / "a.bfa"
    size = bfa.dump(value, path, threads=threads, compression=compression, fsync=False)
    data = path.read_bytes()
    assert size == len(data)
    assert data == bfa.dumps(value, threads=threads, compression=compression)
    with bfa.Archive.open(path) as arch:
        assert arch.verify() > 0


def test_blocks_are_hashed_after_they_are_written(tmp_path, monkeypatch):
    """Serial path: when a block is hashed, the file already holds it (the
    old writer hashed everything before the file existed)."""
    fds = []
    real_create, real_hash = _tempfiles.create, framing.hash_blocks

    def create(directory, name):
        fd, tmp = real_create(directory, name)
        fds.append(fd)
        return fd, tmp

    written_when_hashed = []

    def hash_blocks(blocks):
        for _, _, length, offset in blocks:
            written_when_hashed.append(os.lseek(fds[0], 0, os.SEEK_CUR) >= offset + length)
        return real_hash(blocks)

    monkeypatch.setattr(_tempfiles, "create", create)
    monkeypatch.setattr(framing, "hash_blocks", hash_blocks)
    bfa.dump(LARGE, tmp_path / "a.bfa", threads=1, fsync=False)
    assert len(written_when_hashed) > 5 and all(written_when_hashed)
    monkeypatch.undo()
    assert (tmp_path / "a.bfa").read_bytes() == bfa.dumps(LARGE)


def test_a_write_error_while_hashing_in_parallel_leaves_no_file(tmp_path, monkeypatch):
    def failing(blocks):
        raise OSError(5, "simulated")

    path = tmp_path / "a.bfa"
    bfa.dump({"old": 1}, path)
    monkeypatch.setattr(framing, "hash_blocks", failing)
    with pytest.raises(OSError, match="simulated"):
        bfa.dump(LARGE, path, threads=2)
    monkeypatch.undo()
    assert bfa.load(path) == {"old": 1}
    assert os.listdir(tmp_path) == ["a.bfa"]
