"""dump() under crashes and full disks, with real processes.

- SIGKILL at random moments: a writer process is killed while it dumps a
  32 MB value (array + records, each carrying its version number in
  several places) over the previous version. After every kill the file at
  the path must be a whole archive that verifies and holds the old version
  or, if the kill came after the rename, the new one; never a mix. Stray
  temporary files must be recognisable (``.NAME.PID.RANDOM.bfa-tmp`` in the
  same directory) and nothing else may appear. 150 forked trials (plain
  and LZ4, delays spread over the measured dump time) plus 12 trials of
  freshly started interpreters; the test prints trials, old/new and
  corrupt counts (run with -s).
- The next dump to a path removes stray temporary files of dead writers
  (docs/SECURITY.md, promise 4), without touching the temporary file of a
  writer still alive.
- RLIMIT_FSIZE (SIGXFSZ ignored, so write() fails with EFBIG): a limit hit
  at any point of the dump -- header, nodes, directory, the last byte --
  raises OSError, leaves the old file byte-identical and no temporary
  file; plain and compressed.
- A full filesystem (a 256 KiB tmpfs; needs root, skipped otherwise):
  OSError (ENOSPC), old file intact, no temporary file.
"""
from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

import bfast_archive as bfa

STRAY = re.compile(r"^\.data\.bfa\..+\.bfa-tmp$")

# A value whose version shows in several places: header-side scalars, the
# array payload (first and last element), the records and a trailing scalar.
VALUE = """
import numpy as np
def value(v, n=4_000_000, rows=20_000):
    return {"version": v, "arr": np.full(n, float(v)),
            "records": [{"v": v, "name": f"r{i}-{v}", "x": i} for i in range(rows)],
            "tail": ("end", v)}
def version_of(arch):
    v = arch["version"]
    arr = arch["arr"]
    recs = arch["records"]
    seen = {v, int(arr[0]), int(arr[-1]), int(arr[len(arr) // 2]), recs[0]["v"],
            recs[-1]["v"], int(recs[-1]["name"].rsplit("-", 1)[1]), arch["tail"][1]}
    if len(seen) != 1 or len(arr) != 4_000_000 or len(recs) != 20_000:
        raise AssertionError(f"mixed versions {seen}")
    return v
"""

KILL_TRIALS = textwrap.dedent("""
    import json, os, random, re, signal, sys, time
    import bfast_archive as bfa
    """) + VALUE + textwrap.dedent("""
    d, trials = sys.argv[1], int(sys.argv[2])
    path = os.path.join(d, "data.bfa")
    stray = re.compile(r"^\\.data\\.bfa\\..+\\.bfa-tmp$")
    rng = random.Random(5)
    versions = {v: value(v) for v in range(4)}
    bfa.dump(versions[0], path)
    k = 0
    timing = {}
    for comp in (None, "lz4"):
        t = time.perf_counter()
        bfa.dump(versions[0], os.path.join(d, "calibrate.bfa"), compression=comp)
        timing[comp] = time.perf_counter() - t
        os.unlink(os.path.join(d, "calibrate.bfa"))
    out = {"trials": 0, "old": 0, "new": 0, "corrupt": 0, "problems": [], "strays": 0,
           "dump_seconds": timing}
    for trial in range(trials):
        comp = None if trial % 3 else "lz4"
        new = (k + 1) % 4
        delay = rng.uniform(0, 1.3 * timing[comp])
        pid = os.fork()
        if pid == 0:
            try:
                bfa.dump(versions[new], path, compression=comp)
            finally:
                os._exit(0)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        out["trials"] += 1
        try:
            with bfa.Archive.open(path, verify=True) as arch:
                got = version_of(arch)
            if got == k:
                out["old"] += 1
            elif got == new:
                out["new"] += 1
                k = new
            else:
                raise AssertionError(f"version {got}, expected {k} or {new}")
        except Exception as exc:
            out["corrupt"] += 1
            out["problems"].append(f"trial {trial} ({comp}, {delay:.4f}s): {exc!r}")
            bfa.dump(versions[k], path)
        others = [f for f in os.listdir(d) if f != "data.bfa"]
        bad = [f for f in others if not stray.match(f)]
        if bad:
            out["problems"].append(f"trial {trial}: unexpected files {bad}")
        out["strays"] = len(others)
    print(json.dumps(out))
""")

FRESH_PROCESS_WRITER = textwrap.dedent("""
    import os, sys
    import bfast_archive as bfa
    """) + VALUE + textwrap.dedent("""
    v = value(int(sys.argv[2]))
    print("dumping", flush=True)
    bfa.dump(v, sys.argv[1], compression=sys.argv[3] if len(sys.argv) > 3 else None)
    print("done", flush=True)
""")


def _version(path) -> int:
    ns: dict = {}
    exec(VALUE, ns)
    with bfa.Archive.open(path, verify=True) as arch:
        return ns["version_of"](arch)


def test_sigkill_during_dump_leaves_a_whole_old_or_new_file(tmp_path):
    proc = subprocess.run([sys.executable, "-c", KILL_TRIALS, str(tmp_path), "150"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    print(f"\nkill-during-dump: {out['trials']} trials, {out['old']} old, {out['new']} new, "
          f"{out['corrupt']} corrupt, {out['strays']} stray temporary files left; "
          f"dump takes {out['dump_seconds']}")
    assert out["corrupt"] == 0 and not out["problems"], out["problems"][:5]
    assert out["trials"] == 150
    assert out["old"] > 10 and out["new"] > 10   # kills landed before and after the rename
    assert out["strays"] <= 1   # each dump removed its dead predecessors' temporary files


def test_sigkill_of_a_fresh_interpreter_mid_dump(tmp_path):
    """The same with writers started from scratch (no fork), 12 trials."""
    path = tmp_path / "data.bfa"
    ns: dict = {}
    exec(VALUE, ns)
    bfa.dump(ns["value"](0), path)
    k, results = 0, []
    for trial in range(12):
        new = k + 1
        writer = subprocess.Popen([sys.executable, "-c", FRESH_PROCESS_WRITER, str(path),
                                   str(new)] + (["lz4"] if trial % 2 else []),
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "dumping"
        time.sleep(0.02 * trial)        # 0 .. 220 ms; a dump takes about 100 ms
        writer.kill()
        writer.wait()
        writer.stdout.close()
        got = _version(path)
        assert got in (k, new)
        results.append(got == new)
        k = got
        assert all(STRAY.match(f) for f in os.listdir(tmp_path) if f != "data.bfa")
    print(f"\nfresh-process kills: 12 trials, {sum(results)} after the rename")


_BLOCKED_WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import bfast_archive as bfa
    real_fsync = os.fsync
    paused = []
    def slow_fsync(fd):          # the temporary file is written: pause here, once
        if not paused:
            paused.append(fd)
            print("written", flush=True)
            time.sleep(float(sys.argv[2]))
        real_fsync(fd)
    os.fsync = slow_fsync
    bfa.dump({"writer": sys.argv[3], "arr": np.arange(100_000.0)}, sys.argv[1])
    print("done", flush=True)
""")


def _blocked_writer(path, seconds: float, tag: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _BLOCKED_WRITER, str(path), str(seconds),
                             tag], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_next_dump_removes_stray_temporary_files_of_dead_writers(tmp_path):
    path = tmp_path / "data.bfa"
    bfa.dump({"v": 0}, path)
    for tag in "abc":
        _kill(_blocked_writer(path, 60, tag))
    strays = [f for f in os.listdir(tmp_path) if f != "data.bfa"]
    # each new writer already removes the files of the writers killed before it
    assert 1 <= len(strays) <= 3 and all(STRAY.match(f) for f in strays)
    subprocess.run([sys.executable, "-c",
                    f"import bfast_archive as bfa; bfa.dump({{'v': 1}}, {str(path)!r})"],
                   check=True, timeout=60)
    assert bfa.load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["data.bfa"]


def test_a_live_writers_temporary_file_survives_other_dumps(tmp_path):
    """Whatever cleans strays must not remove a temporary file that a live
    writer is still filling: writer A pauses after writing its temporary
    file, B dumps to the same path twice, then A finishes and wins."""
    path = tmp_path / "data.bfa"
    bfa.dump({"writer": "first"}, path)
    a = _blocked_writer(path, 2.0, "A")
    for _ in range(2):
        subprocess.run([sys.executable, "-c",
                        f"import bfast_archive as bfa; bfa.dump({{'writer': 'B'}}, "
                        f"{str(path)!r})"], check=True, timeout=60)
        assert bfa.load(path) == {"writer": "B"}
    assert a.stdout.readline().strip() == "done"
    assert a.wait(60) == 0
    a.stdout.close()
    assert bfa.load(path)["writer"] == "A"
    assert os.listdir(tmp_path) == ["data.bfa"]


_FSIZE = textwrap.dedent("""
    import errno, json, os, resource, signal, sys
    import numpy as np
    import bfast_archive as bfa
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG from write() instead of a signal
    d = sys.argv[1]
    path = os.path.join(d, "data.bfa")
    old = {"old": True, "arr": np.arange(1000)}
    bfa.dump(old, path)
    before = open(path, "rb").read()
    inf = resource.RLIM_INFINITY
    new = {"new": list(range(5000)), "arr": np.random.default_rng(1).random(200_000),
           "blob": b"x" * 300_000}
    out = []
    for comp in (None, "lz4"):
        size = len(bfa.dumps(new, compression=comp))
        for limit in (0, 1, 63, 64, 100, 4096, size // 3, size // 2, size - 8, size - 1, size):
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, inf))
            try:
                bfa.dump(new, path, compression=comp)
                result = "ok"
            except OSError as exc:
                result = errno.errorcode.get(exc.errno, str(exc.errno))
            except BaseException as exc:
                result = "other: " + repr(exc)
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (inf, inf))
            now = open(path, "rb").read()
            intact = now == before
            if result == "ok":
                intact = bfa.load(path)["new"] == new["new"]
                bfa.dump(old, path)
                before = open(path, "rb").read()
            out.append({"compression": comp, "limit": limit, "size": size, "result": result,
                        "intact": intact, "files": sorted(os.listdir(d))})
    print(json.dumps(out))
""")


def test_file_size_limit_gives_oserror_and_keeps_the_old_file(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _FSIZE, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cases = json.loads(proc.stdout)
    assert len(cases) == 22
    for case in cases:
        assert case["files"] == ["data.bfa"], case
        assert case["intact"], case
        if case["limit"] >= case["size"]:
            assert case["result"] == "ok", case           # exactly enough room: written
        else:
            assert case["result"] == "EFBIG", case


_FULL_DISK = textwrap.dedent("""
    import errno, os, sys
    import numpy as np
    import bfast_archive as bfa
    path = os.path.join(sys.argv[1], "data.bfa")
    bfa.dump({"old": 1}, path)
    before = open(path, "rb").read()
    for comp in (None, "lz4"):
        try:
            bfa.dump({"new": np.random.default_rng(2).random(100_000)}, path, compression=comp)
            print("no error")
        except OSError as exc:
            print(errno.errorcode.get(exc.errno), open(path, "rb").read() == before,
                  sorted(os.listdir(sys.argv[1])))
""")


def test_full_filesystem_gives_oserror_and_keeps_the_old_file(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(mnt)], capture_output=True,
                              text=True, timeout=60)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines == ["ENOSPC True ['data.bfa']"] * 2, lines


def test_stray_pattern_names_the_target(tmp_path):
    """The temporary file is named after its target, in the same directory,
    so a stray is recognisable (and its target known) from its name alone."""
    path = tmp_path / "data.bfa"
    proc = _blocked_writer(path, 60, "x")
    try:
        strays = os.listdir(tmp_path)
        assert len(strays) == 1 and STRAY.match(strays[0]), strays
    finally:
        _kill(proc)
    assert not path.exists()                # nothing appears at the path until the rename
    with pytest.raises(OSError) as info:    # and no half file can be opened there
        bfa.Archive.open(path)
    assert info.value.errno == errno.ENOENT
