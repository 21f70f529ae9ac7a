"""dump's temporary files: created with the umask applied by the kernel
(the process umask is never changed, so other threads' files keep theirs),
locked by their writer while they exist, stray exactly when unlocked -- one
policy for ``dump`` and ``Cache`` (docs/CONCEPTS.md, "Lifetime": "Temporary
files: one rule")."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import _tempfiles


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_dump_never_touches_the_process_umask(tmp_path, umask_027, monkeypatch):
    def no_umask(mask):
        raise AssertionError("os.umask called: another thread's file would get mask 0")

    monkeypatch.setattr(os, "umask", no_umask)
    bfa.dump({"a": 1}, tmp_path / "new.bfa")
    assert os.stat(tmp_path / "new.bfa").st_mode & 0o777 == 0o640


def test_replaced_file_keeps_its_mode(tmp_path, umask_027):
    path = tmp_path / "p.bfa"
    bfa.dump({"a": 1}, path)
    path.chmod(0o604)
    bfa.dump({"a": 2}, path)
    assert os.stat(path).st_mode & 0o777 == 0o604


def test_other_threads_files_keep_the_umask_while_dumps_run(tmp_path, umask_027):
    stop = threading.Event()
    modes: set = set()
    other = tmp_path / "other"
    other.mkdir()

    def create_files():
        i = 0
        while not stop.is_set():
            p = other / f"f{i}"
            with open(p, "w"):
                pass
            modes.add(os.stat(p).st_mode & 0o777)
            os.unlink(p)
            i += 1

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    thread = threading.Thread(target=create_files)
    thread.start()
    try:
        for i in range(300):
            bfa.dump({"i": i}, tmp_path / f"d{i}.bfa", fsync=False)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old_interval)
    assert modes == {0o640}
    assert {os.stat(tmp_path / f"d{i}.bfa").st_mode & 0o777 for i in range(300)} == {0o640}


def _pause_in_dump(monkeypatch, seen: list):
    """Make dump's fsync report the temporary file's path while it is written."""
    real = os.fsync

    def fsync(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        if not _tempfiles.remove_if_stray(seen[-1]):
            seen.append("kept")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_writers_temporary_file_is_locked_while_written(tmp_path, monkeypatch):
    seen: list = []
    _pause_in_dump(monkeypatch, seen)
    bfa.dump({"a": 1}, tmp_path / "x.bfa")
    assert seen[0].endswith(".bfa-tmp") and seen[1] == "kept"
    assert bfa.load(tmp_path / "x.bfa") == {"a": 1}


def test_an_unlocked_temporary_file_is_stray_whatever_its_age(tmp_path):
    stray = tmp_path / ".x.bfa.123.abc.bfa-tmp"
    stray.write_bytes(b"left by a killed writer")
    assert _tempfiles.remove_if_stray(str(stray))
    assert not stray.exists()


def test_a_locked_temporary_file_is_not_stray(tmp_path):
    live = tmp_path / ".x.bfa.123.abc.bfa-tmp"
    live.write_bytes(b"in progress")
    with open(live, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        assert not _tempfiles.remove_if_stray(str(live))
        bfa.dump({"a": 1}, tmp_path / "x.bfa")  # dump's own cleanup leaves it too
    assert live.exists()


_KILLED_CACHE_WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    import bfast_archive as bfa
    real_fsync = os.fsync
    def stop(fd):               # the temporary file is written whole: wait to be killed
        print("written", flush=True)
        sys.stdin.readline()
    os.fsync = stop
    bfa.Cache(sys.argv[1])["big"] = np.zeros(4_000_000)
""")


def _writer(directory) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_CACHE_WRITER, str(directory)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    return proc


def _end(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stdin.close()


def _temporaries(directory) -> list:
    return [n for n in os.listdir(directory) if n.endswith(".bfa-tmp")]


def test_cache_counts_a_live_writers_temporary_file(tmp_path):
    cache = bfa.Cache(tmp_path)
    cache["small"] = 1
    proc = _writer(tmp_path)
    try:
        stats = cache.stats()
        assert stats["temp_files"] == 1 and stats["temp_bytes"] > 32_000_000
        assert stats["bytes"] == stats["temp_bytes"] + os.path.getsize(cache.path("small"))
        cache.clear()
        assert len(_temporaries(tmp_path)) == 1  # in progress: left alone
    finally:
        _end(proc)


def test_cache_removes_a_sigkilled_writers_temporary_file_at_once(tmp_path):
    cache = bfa.Cache(tmp_path)
    _end(_writer(tmp_path))  # SIGKILL mid-publish
    assert len(_temporaries(tmp_path)) == 1
    stats = cache.stats()
    assert stats["temp_files"] == 0 and stats["bytes"] == 0
    assert _temporaries(tmp_path) == []


def test_cache_clear_removes_a_sigkilled_writers_temporary_file(tmp_path):
    cache = bfa.Cache(tmp_path)
    _end(_writer(tmp_path))
    cache.clear()
    assert os.listdir(tmp_path) == []


def test_eviction_counts_live_temporary_files(tmp_path):
    cache = bfa.Cache(tmp_path, max_bytes=40_500_000)
    cache["a"] = np.zeros(100_000)
    cache["b"] = np.zeros(1_000_000)
    proc = _writer(tmp_path)  # 32 MB in progress: "a" and "b" no longer both fit beside it
    try:
        cache.evict()
        assert "a" not in cache and "b" in cache
    finally:
        _end(proc)
    cache.evict()  # the killed writer's file is stray now: removed, not counted
    assert cache.stats()["temp_files"] == 0 and _temporaries(tmp_path) == []
