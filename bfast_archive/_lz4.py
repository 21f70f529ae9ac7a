"""LZ4 block compression for the C core, from the first source that works.

The C core takes LZ4's ``LZ4_compress_fast`` / ``LZ4_decompress_safe`` as
function pointers, so a range of chunks is (de)compressed in one GIL-free
call straight into a caller's buffer. Where the pointers come from, in order:

1. ``package``: the ``lz4`` package's compiled module (``lz4.block._block``)
   happens to export the LZ4 API. Fastest, but not a promised interface, so
   each symbol is looked up and any failure moves on.
2. ``system``: the system's ``liblz4.so.1`` (the library's stable ABI).
3. ``python``: the ``lz4.block`` Python API, wrapped in cffi callbacks. The
   same bytes as the other two (LZ4's block format is deterministic for a
   given acceleration), but each chunk takes the GIL, so chunks no longer
   run in parallel.

``BFA_LZ4_SOURCE`` (a comma-separated list of the names above) restricts the
order, for tests and for ruling a source out. If none works, importing this
module raises ``ImportError`` naming the package to install. Imported only
when a compressed archive is written or read.
"""
from __future__ import annotations

import ctypes.util
import os
from typing import Any, Callable

from cffi import FFI

from ._native import ffi

SOURCES = ("package", "system", "python")

_abi = FFI()
_abi.cdef("""
int LZ4_compress_fast(const char *src, char *dst, int src_size, int dst_cap, int acceleration);
int LZ4_decompress_safe(const char *src, char *dst, int src_size, int dst_cap);
""")


def _pointers(lib: Any) -> tuple[Any, Any]:
    """The two functions of a dlopened LZ4 library as the core's pointer types."""
    def cast(ctype: str, name: str) -> Any:
        return ffi.cast(ctype, int(_abi.cast("uintptr_t", _abi.addressof(lib, name))))

    return (cast("bfa_lz4_compress_fn", "LZ4_compress_fast"),
            cast("bfa_lz4_decompress_fn", "LZ4_decompress_safe"))


def _from_package() -> tuple[Any, Any, Any]:
    import lz4.block._block as block

    lib = _abi.dlopen(block.__file__)
    return (lib, *_pointers(lib))


def _from_system() -> tuple[Any, Any, Any]:
    name = ctypes.util.find_library("lz4") or "liblz4.so.1"
    lib = _abi.dlopen(name)
    return (lib, *_pointers(lib))


def _from_python() -> tuple[Any, Any, Any]:
    import lz4.block

    compress_block, decompress_block = lz4.block.compress, lz4.block.decompress

    def compress(src: Any, dst: Any, src_size: int, dst_cap: int, acceleration: int) -> int:
        try:
            out = compress_block(ffi.buffer(src, src_size), mode="fast",
                                 acceleration=acceleration, store_size=False)
        except Exception:  # noqa: BLE001 - C sees a failed chunk, as from LZ4 itself
            return 0
        if len(out) > dst_cap:
            return 0
        ffi.memmove(dst, out, len(out))
        return len(out)

    def decompress(src: Any, dst: Any, src_size: int, dst_cap: int) -> int:
        try:
            out = decompress_block(ffi.buffer(src, src_size), uncompressed_size=dst_cap)
        except Exception:  # noqa: BLE001 - corrupt input: a negative count, as LZ4 returns
            return -1
        if len(out) > dst_cap:
            return -1
        ffi.memmove(dst, out, len(out))
        return len(out)

    # the callbacks must stay alive as long as the pointers: held in the tuple
    callbacks = (ffi.callback("bfa_lz4_compress_fn", compress, error=0),
                 ffi.callback("bfa_lz4_decompress_fn", decompress, error=-1))
    return (callbacks, *callbacks)


_LOADERS: dict[str, Callable[[], tuple[Any, Any, Any]]] = {
    "package": _from_package, "system": _from_system, "python": _from_python}


def load(order: tuple[str, ...] = SOURCES) -> tuple[str, Any, Any, Any]:
    """``(source, keepalive, compress, decompress)`` from the first source in
    ``order`` that loads; ``ImportError`` naming what to install if none does."""
    failures = []
    for source in order:
        loader = _LOADERS.get(source)
        if loader is None:
            raise ImportError(f"unknown LZ4 source {source!r}; known: {', '.join(SOURCES)}")
        try:
            return (source, *loader())
        except (ImportError, OSError, AttributeError, TypeError) as exc:
            failures.append(f"{source}: {exc}")
    raise ImportError("compressed archives need LZ4: pip install lz4 (or install the system's "
                      "liblz4); tried " + "; ".join(failures or ["nothing"]))


def _order_from_env() -> tuple[str, ...]:
    chosen = os.environ.get("BFA_LZ4_SOURCE", "").strip()
    return tuple(s.strip() for s in chosen.split(",") if s.strip()) if chosen else SOURCES


SOURCE, _keepalive, COMPRESS, DECOMPRESS = load(_order_from_env())
