"""Where LZ4 comes from: the lz4 package's compiled module, the system's
liblz4, or the lz4.block Python API. Each source, forced in a fresh process
through BFA_LZ4_SOURCE, writes the same bytes and reads them back; with
none available, compression raises an ImportError naming the package."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import bfast_archive as bfa

ROOT = pathlib.Path(__file__).resolve().parent.parent

# random-ish but compressible data: several chunks, some stored raw, some LZ4
SCRIPT = r"""
import sys, numpy as np
{block}
import bfast_archive as bfa
from bfast_archive import _lz4
rng = np.random.default_rng(5)
data = {{"a": np.repeat(rng.integers(0, 50, 40_000), 8).astype(np.int32),
        "noise": rng.integers(0, 2**63, 5_000, dtype=np.uint64),
        "rows": [{{"id": i, "name": f"user-{{i}}"}} for i in range(3_000)]}}
blob = bfa.dumps(data, compression="lz4", chunk_size=1 << 16)
back = bfa.loads(blob)
assert np.array_equal(back["a"], data["a"]) and np.array_equal(back["noise"], data["noise"])
assert back["rows"] == data["rows"]
sys.stdout.write(_lz4.SOURCE + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(blob)
"""


def _run(source: str, block: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, BFA_LZ4_SOURCE=source)
    return subprocess.run([sys.executable, "-c", SCRIPT.format(block=block)], cwd=ROOT,
                          env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def reference() -> bytes:
    done = _run("package")
    assert done.returncode == 0, done.stderr.decode()
    source, blob = done.stdout.split(b"\n", 1)
    assert source == b"package"
    return blob


def test_system_library_writes_the_same_bytes(reference):
    done = _run("system")
    assert done.returncode == 0, done.stderr.decode()
    used, blob = done.stdout.split(b"\n", 1)
    assert used == b"system"
    assert blob == reference


def test_python_api_writes_archives_any_source_reads(reference):
    # lz4.block.compress may pick other matches than LZ4_compress_fast (a
    # valid LZ4 block all the same): the archive differs in bytes, not in value
    done = _run("python")
    assert done.returncode == 0, done.stderr.decode()
    used, blob = done.stdout.split(b"\n", 1)
    assert used == b"python"
    ours, theirs = bfa.loads(blob), bfa.loads(reference)
    assert np.array_equal(ours["a"], theirs["a"]) and ours["rows"] == theirs["rows"]
    assert np.array_equal(ours["noise"], theirs["noise"])
    assert bfa.Archive.from_buffer(blob, verify=True).compressed


def test_without_the_package_module_the_system_library_is_used():
    done = _run("package,system,python", block="sys.modules['lz4.block._block'] = None")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.split(b"\n", 1)[0] == b"system"


def test_with_no_source_compression_raises_import_error_naming_lz4():
    block = "sys.modules['lz4'] = None; sys.modules['lz4.block'] = None"
    done = _run("package,python", block=block)
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "ImportError" in err and "pip install lz4" in err


def test_python_source_reports_a_corrupt_chunk_as_archive_error():
    from bfast_archive import _lz4

    _, keep, compress, decompress = _lz4.load(("python",))
    data = np.tile(np.arange(1000, dtype=np.int64), 50)
    src = bfa._lz4.ffi.from_buffer(data)
    dst = bytearray(len(data.tobytes()))
    n = compress(src, bfa._lz4.ffi.from_buffer(dst), len(dst), len(dst), 1)
    assert 0 < n < len(dst)
    packed = bytes(dst[:n])
    out = bytearray(len(dst))
    assert decompress(packed, bfa._lz4.ffi.from_buffer(out), n, len(out)) == len(out)
    assert bytes(out) == data.tobytes()
    broken = packed[: n // 2]
    assert decompress(broken, bfa._lz4.ffi.from_buffer(out), len(broken), len(out)) < 0


def test_unknown_source_is_refused():
    from bfast_archive import _lz4

    with pytest.raises(ImportError, match="unknown LZ4 source"):
        _lz4.load(("zstd",))
