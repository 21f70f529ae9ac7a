"""A core built with BFA_UNCHECKED (validation compiled out, only to measure
what the checks cost) refuses to read files unless the caller opts in with
BFA_ALLOW_UNCHECKED=1. Builds such a core into a scratch copy of the package."""
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

BUILD = textwrap.dedent("""
    import sys
    from cffi import FFI
    sys.path.insert(0, sys.argv[1])
    import build_ffi
    ffi = FFI()
    ffi.cdef(build_ffi._cdef_from_header())
    cflags, ldflags = build_ffi._compile_args()
    ffi.set_source("bfast_archive._bfa_core", '#include "bfa.h"',
                   sources=[str(build_ffi.CSRC / name) for name in build_ffi.SOURCES],
                   include_dirs=[str(build_ffi.CSRC)],
                   extra_compile_args=cflags + ["-O0"], extra_link_args=ldflags)
    print(ffi.compile(tmpdir=sys.argv[2]))
""")

CHILD = textwrap.dedent("""
    import bfast_archive as bfa
    from bfast_archive import _native
    assert not _native.CHECKED_BUILD
    blob = bfa.dumps({"a": [1, 2, 3]})
    try:
        value = bfa.loads(blob)
    except bfa.BfastError as exc:
        print("refused:", exc)
    else:
        print("read:", value)
""")


@pytest.fixture(scope="module")
def unchecked_package(tmp_path_factory) -> pathlib.Path:
    dest = tmp_path_factory.mktemp("unchecked")
    shutil.copytree(ROOT / "bfast_archive", dest / "bfast_archive",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "*.pyc"))
    env = dict(os.environ, BFA_UNCHECKED="1")
    env.pop("BFA_SANITIZE", None)
    done = subprocess.run([sys.executable, "-c", BUILD, str(ROOT), str(dest / "build")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    so = pathlib.Path(done.stdout.strip().splitlines()[-1])
    shutil.copy2(so, dest / "bfast_archive" / so.name)
    return dest


def _child(package: pathlib.Path, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "BFA_ALLOW_UNCHECKED"}
    env.update(PYTHONPATH=str(package), **extra)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=package,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_unchecked_core_refuses_to_read_files(unchecked_package):
    out = _child(unchecked_package)
    assert out.startswith("refused:") and "BFA_UNCHECKED" in out


def test_unchecked_core_reads_when_the_caller_opts_in(unchecked_package):
    assert _child(unchecked_package, BFA_ALLOW_UNCHECKED="1").strip() == "read: {'a': [1, 2, 3]}"


def test_normal_build_is_checked():
    from bfast_archive import _native

    assert _native.CHECKED_BUILD
