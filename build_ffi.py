"""cffi builder (API mode) for the bfast_archive C core.

The cdef is read from the real header, csrc/bfa.h, between its BFA_CDEF
markers, so the declarations cannot drift from the C code.

    python build_ffi.py          # builds bfast_archive/_bfa_core*.so in place

Set BFA_SANITIZE=1 to build with AddressSanitizer and UndefinedBehaviorSanitizer
(run Python with LD_PRELOAD of libasan then; see docs/SECURITY.md).

Set BFA_UNCHECKED=1 to build with the read path's validation compiled out
(the BFA_UNCHECKED macro, csrc/bfa_internal.h): only to measure what the
checks cost (benchmarks/bench_checked.py builds it into a scratch copy of the
package), never to read files with: a damaged archive can crash that build,
so such a core refuses to open any file unless BFA_ALLOW_UNCHECKED=1 is set
when it runs (bfa_build_checked(), bfast_archive/_native.py).
"""
import os
import pathlib
import re

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
CSRC = HERE / "csrc"
SOURCES = ["read.c", "read_sparse.c", "sparse.c", "layout.c", "checksum.c", "chunks.c", "memory.c",
           "pytable.c", "pyencode.c", "pydecode.c", "files.c"]


def _cdef_from_header() -> str:
    text = (CSRC / "bfa.h").read_text()
    match = re.search(r"/\* BFA_CDEF_BEGIN \*/(.*?)/\* BFA_CDEF_END \*/", text, re.S)
    if match is None:
        raise RuntimeError("csrc/bfa.h lacks the BFA_CDEF_BEGIN/END markers")
    return re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S)


def _compile_args() -> tuple[list[str], list[str]]:
    cflags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"]
    ldflags: list[str] = []
    if os.environ.get("BFA_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
               "-fno-omit-frame-pointer", "-O1", "-g"]
        cflags += san
        ldflags += san
    if os.environ.get("BFA_UNCHECKED"):
        cflags.append("-DBFA_UNCHECKED")
    return cflags, ldflags


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header())
# the fill function of ranged images (sparse.c), written in Python (_ranged.py)
ffibuilder.cdef('extern "Python" int bfa_py_fill(void *, uint64_t, uint64_t);')
_cflags, _ldflags = _compile_args()
ffibuilder.set_source(
    "bfast_archive._bfa_core",
    '#include "bfa.h"',
    sources=[str(pathlib.Path("csrc") / name) for name in SOURCES],
    include_dirs=["csrc"],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
)

if __name__ == "__main__":
    os.chdir(HERE)
    ffibuilder.compile(verbose=True)
