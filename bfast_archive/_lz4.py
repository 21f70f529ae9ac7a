"""LZ4 block compression from the ``lz4`` package, for the C core.

The C core takes LZ4's compress/decompress functions as pointers, so a range
of chunks is (de)compressed in one GIL-free call straight into a caller's
buffer. The pointers come from the ``lz4`` package's own compiled library
(``lz4.block._block``), which exports the LZ4 API. Imported only when a
compressed archive is written or read.
"""
from __future__ import annotations

from cffi import FFI

from ._bfa_core import ffi

_abi = FFI()
_abi.cdef("""
int LZ4_compress_fast(const char *src, char *dst, int src_size, int dst_cap, int acceleration);
int LZ4_decompress_safe(const char *src, char *dst, int src_size, int dst_cap);
""")


def _load():
    try:
        import lz4.block._block as block
    except ImportError as exc:  # pragma: no cover - lz4 is a dependency
        raise ImportError("compressed archives need the 'lz4' package: pip install lz4") from exc
    lib = _abi.dlopen(block.__file__)
    compress = ffi.cast("bfa_lz4_compress_fn",
                        int(_abi.cast("uintptr_t", _abi.addressof(lib, "LZ4_compress_fast"))))
    decompress = ffi.cast("bfa_lz4_decompress_fn",
                          int(_abi.cast("uintptr_t", _abi.addressof(lib, "LZ4_decompress_safe"))))
    return lib, compress, decompress


_lib, COMPRESS, DECOMPRESS = _load()
