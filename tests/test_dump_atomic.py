"""bfa.dump: returns the file size; replaces an existing file atomically
(temporary file in the same directory, fsync, os.replace); on any failure the
existing file is untouched and no temporary file is left behind."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import bfast_archive as bfa


def listing(d) -> list[str]:
    return sorted(os.listdir(d))


def snapshot(path) -> tuple:
    st = os.stat(path)
    return pathlib.Path(path).read_bytes(), st.st_ino, st.st_mtime_ns, st.st_size


@pytest.mark.parametrize("value", [None, 1, {"a": [1, 2, 3]}, b"x" * 100_000,
                                   {"arr": np.arange(50_000.0), "s": "text" * 1000}],
                         ids=["none", "int", "dict", "big-bytes", "array"])
def test_dump_returns_the_file_size(tmp_path, value):
    path = tmp_path / "v.bfa"
    size = bfa.dump(value, path)
    assert size == os.path.getsize(path) == len(bfa.dumps(value))
    assert path.read_bytes() == bfa.dumps(value)
    assert listing(tmp_path) == ["v.bfa"]


def test_dump_replaces_an_existing_file_atomically(tmp_path):
    path = tmp_path / "data.bfa"
    old = {"tag": "old", "arr": np.full(100_000, 1.0)}
    bfa.dump(old, path)
    old_bytes, old_ino, _, _ = snapshot(path)
    reader = bfa.Archive.open(path)       # a reader with the old file mapped
    old_arr = reader["arr"]
    with open(path, "rb") as fd:
        bfa.dump({"tag": "new", "arr": np.full(50_000, 2.0)}, path)
        assert fd.read() == old_bytes      # the old inode was replaced, not rewritten
    assert os.stat(path).st_ino != old_ino
    assert reader["tag"] == "old" and old_arr.sum() == 100_000.0  # the mapping is intact
    reader.close()
    new = bfa.load(path)
    assert new["tag"] == "new" and new["arr"].sum() == 100_000.0
    assert listing(tmp_path) == ["data.bfa"]


def test_concurrent_readers_see_a_whole_old_or_a_whole_new_file(tmp_path):
    path = tmp_path / "live.bfa"
    versions = [{"tag": t, "arr": np.full(1_000_000, float(i))} for i, t in enumerate("ab")]
    bfa.dump(versions[0], path)
    stop = threading.Event()
    seen, problems, reads = set(), [], [0]

    def read_loop():
        while not stop.is_set():
            try:
                with bfa.Archive.open(path) as arch:
                    tag = arch["tag"]
                    arr = arch["arr"]
                    expected = float("ab".index(tag))
                    if not (arr[0] == arr[-1] == expected and len(arr) == 1_000_000):
                        problems.append(f"inconsistent {tag}: {arr[0]}, {arr[-1]}")
                    seen.add(tag)
                    reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is a finding
                problems.append(repr(exc))

    t = threading.Thread(target=read_loop)
    t.start()
    try:
        i = 0
        deadline = time.monotonic() + 10
        # keep replacing the file until the reader has seen both versions a few times
        while (len(seen) < 2 or reads[0] < 20) and time.monotonic() < deadline:
            i += 1
            bfa.dump(versions[i % 2], path)
    finally:
        stop.set()
        t.join()
    assert problems == []
    assert seen == {"a", "b"} and listing(tmp_path) == ["live.bfa"]


class Unsupported:
    pass


def _cycle():
    a = []
    a.append([a])
    return a


def _too_deep():
    root = cur = []
    for _ in range(5000):
        cur.append([])
        cur = cur[0]
    return root


FAILING = {
    "unsupported": lambda: {"a": Unsupported()},
    "unsupported-after-big-array": lambda: {"big": np.zeros(1_000_000), "bad": [Unsupported()]},
    "object-array": lambda: np.array([None, 1], dtype=object),
    "bool-key": lambda: {True: 1},
    "cycle": _cycle,
    "too-deep": _too_deep,
}


@pytest.mark.parametrize("case", FAILING)
def test_failing_dump_leaves_the_existing_file_untouched(tmp_path, case):
    path = tmp_path / "keep.bfa"
    bfa.dump({"precious": [1, 2, 3]}, path)
    before = snapshot(path)
    with pytest.raises((bfa.UnsupportedTypeError, ValueError)):
        bfa.dump(FAILING[case](), path)
    assert snapshot(path) == before
    assert bfa.load(path) == {"precious": [1, 2, 3]}
    assert listing(tmp_path) == ["keep.bfa"]


def test_failing_dump_to_a_new_path_creates_nothing(tmp_path):
    with pytest.raises(bfa.UnsupportedTypeError):
        bfa.dump([Unsupported()], tmp_path / "new.bfa")
    assert listing(tmp_path) == []


_WRITE_FAILS = textwrap.dedent("""
    import os, resource, signal, sys
    import numpy as np
    import bfast_archive as bfa
    path = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
    try:
        bfa.dump({"big": np.ones(1_000_000)}, path)   # 8 MB > the 1 MiB limit
    except OSError as exc:
        print("OSError", exc.errno)
    else:
        print("no error")
""")


def test_dump_failing_while_writing_leaves_the_existing_file_untouched(tmp_path):
    path = tmp_path / "keep.bfa"
    bfa.dump({"precious": "yes"}, path)
    before = snapshot(path)
    out = subprocess.run([sys.executable, "-c", _WRITE_FAILS, str(path)], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["OSError", "27"]  # EFBIG
    assert snapshot(path) == before
    assert listing(tmp_path) == ["keep.bfa"]


def test_dump_fsyncs_a_temporary_file_in_the_same_directory_then_renames(tmp_path, monkeypatch):
    path = tmp_path / "d.bfa"
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    bfa.dump({"x": 1}, path)
    monkeypatch.undo()
    replaces = [e for e in events if e[0] == "replace"]
    assert len(replaces) == 1
    _, tmp, dst = replaces[0]
    assert os.path.abspath(dst) == str(path)
    assert os.path.dirname(os.path.abspath(tmp)) == str(tmp_path)  # same directory
    assert tmp != str(path)
    fsynced_before = [e[1] for e in events[:events.index(replaces[0])] if e[0] == "fsync"]
    assert os.path.abspath(tmp) in fsynced_before                  # data flushed first
    assert listing(tmp_path) == ["d.bfa"]


def test_dump_into_a_missing_directory_raises_os_error(tmp_path):
    with pytest.raises(OSError):
        bfa.dump({"a": 1}, tmp_path / "no" / "such" / "dir" / "x.bfa")
    assert listing(tmp_path) == []


def test_dump_onto_a_directory_raises_os_error_and_cleans_up(tmp_path):
    target = tmp_path / "adir"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(OSError):
        bfa.dump({"a": 1}, target)
    assert listing(tmp_path) == ["adir"] and listing(target) == ["inside"]


class CustomPath:
    def __init__(self, p):
        self.p = p

    def __fspath__(self):
        return str(self.p)


@pytest.mark.parametrize("kind", ["str", "pathlib", "custom-pathlike", "relative"])
def test_str_and_pathlike_paths(tmp_path, monkeypatch, kind):
    value = {"k": [1, "two", 3.0]}
    if kind == "relative":
        monkeypatch.chdir(tmp_path)
        path = "rel.bfa"
    else:
        path = {"str": str(tmp_path / "p.bfa"), "pathlib": tmp_path / "p.bfa",
                "custom-pathlike": CustomPath(tmp_path / "p.bfa")}[kind]
    size = bfa.dump(value, path)
    assert size == os.path.getsize(os.fspath(path))
    assert bfa.load(path) == value
    with bfa.Archive.open(path) as arch:
        assert arch["k"][1] == "two"
    assert len(listing(tmp_path)) == 1


def test_dumped_file_gets_normal_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "perm.bfa"
        bfa.dump({"a": 1}, path)
        assert os.stat(path).st_mode & 0o777 == 0o644
        path.chmod(0o644)
        bfa.dump({"a": 2}, path)
        assert os.stat(path).st_mode & 0o777 == 0o644
    finally:
        os.umask(old_umask)


def test_dump_of_a_big_archive_drops_the_cache_of_the_file_it_replaces(tmp_path, monkeypatch):
    from bfast_archive import writer

    path = tmp_path / "big.bfa"
    bfa.dump({"old": 1}, path)
    old_inode = os.stat(path).st_ino
    dropped = []
    fadvise = os.posix_fadvise
    monkeypatch.setattr(writer, "_DROP_CACHE_MIN", 0)
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, advice: dropped.append(
        (os.fstat(fd).st_ino, advice)) or fadvise(fd, off, n, advice))
    bfa.dump({"new": 2}, path)
    assert dropped == [(old_inode, os.POSIX_FADV_DONTNEED)]
    assert bfa.load(path) == {"new": 2}


def test_dump_over_a_fifo_neither_waits_on_it_nor_drops_a_cache(tmp_path, monkeypatch):
    from bfast_archive import writer

    path = tmp_path / "fifo"
    os.mkfifo(path)
    monkeypatch.setattr(writer, "_DROP_CACHE_MIN", 0)
    done = []
    worker = threading.Thread(target=lambda: done.append(bfa.dump({"a": 1}, path)), daemon=True)
    worker.start()
    worker.join(10)
    assert done and bfa.load(path) == {"a": 1}
