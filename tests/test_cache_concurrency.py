"""bfa.Cache shared by several processes: atomic publishing, concurrent writers
of one key, readers holding entries while others evict or delete them."""
import subprocess
import sys
import textwrap

import numpy as np

import bfast_archive as bfa

N = 250_000  # int64 items: 2 MB per value

WRITER = textwrap.dedent("""
    import sys, time, numpy as np, bfast_archive as bfa
    cache = bfa.Cache(sys.argv[1])
    fill = int(sys.argv[2])
    value = {"fill": fill, "arr": np.full(%d, fill, np.int64)}
    deadline = time.monotonic() + float(sys.argv[3])
    n = 0
    while time.monotonic() < deadline:
        cache["shared"] = value
        n += 1
    print(n)
""" % N)

READER = textwrap.dedent("""
    import sys, time, numpy as np, bfast_archive as bfa
    cache = bfa.Cache(sys.argv[1])
    deadline = time.monotonic() + float(sys.argv[2])
    hits = misses = 0
    while time.monotonic() < deadline:
        v = cache.get("shared")
        if v is None:
            misses += 1
            continue
        fill, arr = v["fill"], v["arr"]
        assert fill in (1, 2), fill
        assert arr.shape == (%d,) and (arr == fill).all(), "partial or mixed entry"
        hits += 1
    print(hits, misses, cache.stats()["corrupt"])
""" % N)


def test_two_writers_one_key_and_readers_never_see_partial_entries(tmp_path):
    seconds = "1.5"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), fill, seconds],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for fill in ("1", "2")]
    reader = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path), seconds],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert int(out) >= 2, "each writer published several times"
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    hits, misses, corrupt = map(int, out.split())
    assert hits > 0 and corrupt == 0
    cache = bfa.Cache(tmp_path)
    assert cache["shared"]["fill"] in (1, 2)
    assert [p.name for p in tmp_path.iterdir()] == [cache.path("shared").split("/")[-1]], \
        "no temporary files left behind"


EVICTOR = textwrap.dedent("""
    import sys, numpy as np, bfast_archive as bfa
    cache = bfa.Cache(sys.argv[1], max_bytes=1 << 20)
    for i in range(10):                         # pushes "held" out
        cache[f"filler{i}"] = np.zeros(300_000, np.uint8)
    assert "held" not in cache
    cache["held"] = {"arr": np.full(200_000, -1, np.int64)}   # replaced under the same name
    cache.clear()
    print("done")
""")


def test_reader_keeps_reading_while_another_process_evicts_and_deletes(tmp_path):
    cache = bfa.Cache(tmp_path)
    original = np.arange(200_000, dtype=np.int64)
    cache["held"] = {"arr": original}
    view = cache["held"]
    arr = view["arr"]
    assert arr[:10].tolist() == list(range(10))       # touched before the eviction
    out = subprocess.run([sys.executable, "-c", EVICTOR, str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "held" not in cache and len(cache) == 0
    assert np.array_equal(arr, original)               # the whole mapping, read after
    assert np.array_equal(view["arr"], original)       # and through the dict view


MEMO = textwrap.dedent("""
    import sys, bfast_archive as bfa
    sys.path.insert(0, sys.argv[2])
    import memo_mod
    r = memo_mod.work(int(sys.argv[3]))
    print(memo_mod.work.key(int(sys.argv[3])), r["n"], memo_mod.CALLS)
""")


def test_memoize_is_shared_between_processes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "memo_mod.py").write_text(textwrap.dedent(f"""
        import bfast_archive as bfa
        CALLS = 0

        @bfa.memoize({str(tmp_path / "cache")!r})
        def work(n):
            global CALLS
            CALLS += 1
            return {{"n": n, "sq": [i * i for i in range(n)]}}
    """))

    def run(n):
        out = subprocess.run([sys.executable, "-c", MEMO, "x", str(src), str(n)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    key1, n, calls = run(7)
    assert (n, calls) == ("7", "1")
    key2, n, calls = run(7)                            # a fresh process: a hit
    assert key2 == key1 and (n, calls) == ("7", "0")
    key3, n, calls = run(8)
    assert key3 != key1 and calls == "1"


REPLACER = textwrap.dedent("""
    import sys, bfast_archive as bfa
    cache = bfa.Cache(sys.argv[1])
    if sys.argv[2] == "delete":
        del cache["k"]
    else:
        cache["k"] = {"v": sys.argv[2]}
""")


def test_a_process_with_the_entry_open_sees_replacements_and_deletions(tmp_path):
    cache = bfa.Cache(tmp_path)
    cache["k"] = {"v": "first"}
    old = cache["k"]                 # now open (mapped) in this process
    assert old["v"] == "first" and cache["k"]["v"] == "first"

    def other(arg):
        out = subprocess.run([sys.executable, "-c", REPLACER, str(tmp_path), arg],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr

    other("second")
    assert cache["k"]["v"] == "second"
    assert old["v"] == "first"        # a view held from before still reads its own file
    other("delete")
    assert cache.get("k") is None and "k" not in cache
    other("third")
    assert cache["k"]["v"] == "third"
