"""bench_core's workloads with every peer issue 7 lists, for the suite (benchmarks/run.py).

Run (from the repository root):

    python -m benchmarks.suite_core                  # full, about 6 minutes on 2 cores
    python -m benchmarks.suite_core --quick          # CI smoke run, well under a minute
    python -m benchmarks.suite_core --out core.json  # raw samples, medians and targets as JSON
    python -m benchmarks.suite_core --nocache 3      # also 3 cold children per peer after
                                                     # dropping the page cache (root only)

It is bench_core.py (same workloads, metrics, method, targets and tables; see
its docstring) with four more peers, each on the workloads it can hold:

  orjson    records only: JSON, no arrays or bytes; load = orjson.loads of the file
  msgpack   records and mixed: msgpack-python, arrays as bench_core encodes them for
            msgspec ({"__nd__": [dtype, shape], "data": raw bytes})
  joblib    every workload: joblib.dump (one file); full load = joblib.load; open+read =
            joblib.load(mmap_mode="r"), which maps the arrays and unpickles the rest
  bfast-py  records only: B-FAST (bfast-py on PyPI) BFast().encode_packed(obj, False);
            full load = decode_packed; open+read = decode_lazy over the file's bytes.
            bfast-py 1.10 stores a NumPy array as its str() (a lossy, truncated
            text), so it cannot hold the arrays or mixed workloads.

bench_core.py itself is unchanged on the command line: its peers stay its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _util as U  # noqa: E402
from benchmarks import bench_core as C  # noqa: E402

EXTRA_DISTS = ("orjson", "msgpack", "joblib", "bfast-py")


# --- orjson ------------------------------------------------------------------------


def write_orjson(obj, path):
    import orjson

    with open(path, "wb") as f:
        f.write(orjson.dumps(obj))


def dumps_orjson(obj):
    import orjson

    return orjson.dumps(obj)


def load_orjson(path):
    import orjson

    with open(path, "rb") as f:
        return orjson.loads(f.read())


# --- msgpack -----------------------------------------------------------------------


def dumps_msgpack(obj):
    import msgpack

    return msgpack.packb(obj, default=U.msgspec_enc_hook)


def write_msgpack(obj, path):
    with open(path, "wb") as f:
        f.write(dumps_msgpack(obj))


def load_msgpack(path):
    import msgpack

    with open(path, "rb") as f:
        return U.msgspec_restore_arrays(msgpack.unpackb(f.read()))


# --- joblib --------------------------------------------------------------------------


def write_joblib(obj, path):
    import joblib

    joblib.dump(obj, path)


def load_joblib(path):
    import joblib

    return joblib.load(path)


# --- bfast-py --------------------------------------------------------------------------

_BFASTPY = None


def _bfastpy():
    global _BFASTPY
    if _BFASTPY is None:
        import b_fast

        _BFASTPY = b_fast.BFast()
    return _BFASTPY


def dumps_bfastpy(obj):
    return _bfastpy().encode_packed(obj, False)  # compress is a required argument in 1.10


def write_bfastpy(obj, path):
    with open(path, "wb") as f:
        f.write(dumps_bfastpy(obj))


def load_bfastpy(path):
    with open(path, "rb") as f:
        return _bfastpy().decode_packed(f.read(), decompress=False)


def _importable(module: str) -> str | None:
    try:
        __import__(module)
        return None
    except Exception as exc:  # a missing or broken peer is skipped and said so
        return f"{type(exc).__name__}: {exc}"


EXTRA_PEERS = (
    ("orjson", C.Peer("orjson", frozenset({"records"}), write_orjson, load_orjson, dumps_orjson)),
    ("msgpack", C.Peer("msgpack", frozenset({"records", "mixed"}), write_msgpack, load_msgpack, dumps_msgpack)),
    ("joblib", C.Peer("joblib", C.ALL_KINDS, write_joblib, load_joblib)),
    ("b_fast", C.Peer("bfast-py", frozenset({"records"}), write_bfastpy, load_bfastpy, dumps_bfastpy)),
)


def peers() -> tuple[list, dict]:
    """bench_core's peers plus the extra ones that import here; and why any did not."""
    out, skipped = list(C.PEERS), {}
    for module, peer in EXTRA_PEERS:
        problem = _importable(module)
        if problem:
            skipped[peer.name] = problem
        else:
            out.append(peer)
    return out, skipped


# CI smoke run: bench_core's quick sizes, fewer repeats (the whole suite's --quick must stay under 2 minutes)
QUICK = replace(
    C.QUICK, cold_repeats=1, slow_repeats=2, fast_repeats=3, big_array_bytes=32 * C.MiB, lazy_accesses=5_000
)


def run(quick: bool, nocache: int = 0) -> dict:
    cfg, mode = (QUICK, "quick") if quick else (C.FULL, "full")
    cfg = replace(cfg, nocache_repeats=nocache)
    all_peers, skipped = peers()
    for name, problem in skipped.items():
        print(f"NOTE    : peer {name} skipped ({problem})")
    report = C.run(cfg, mode, peers=all_peers)
    versions = report["machine"]["versions"]
    for dist in EXTRA_DISTS:
        versions.setdefault(dist, U.machine_info((dist,))["versions"][dist])
    report["skipped_peers"] = skipped
    report["peer_notes"] = {
        "bfast-py": "records only: bfast-py 1.10 encodes a NumPy array as its str() (lossy, truncated)",
        "orjson": "records only: JSON holds no arrays or bytes",
        "msgpack": "records and mixed; arrays as {'__nd__': [dtype, shape], 'data': bin}",
        "joblib": "open+read = joblib.load(mmap_mode='r'): arrays mapped, the rest unpickled",
    }
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads and fewer repeats")
    parser.add_argument("--out", metavar="FILE.json", help="write the report as JSON")
    parser.add_argument(
        "--nocache", type=int, default=0, metavar="N", help="N cold children per peer after dropping the page cache"
    )
    args = parser.parse_args(argv)
    if args.nocache and not U.drop_page_cache():
        print("NOTE    : cannot drop the page cache here (needs root); --nocache ignored")
        args.nocache = 0
    report = run(args.quick, args.nocache)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
        C.log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
