"""The one module that touches the compiled C core (``lib``).

Every other module gets ``ffi``/``lib`` from here. It re-exports the raw C
functions for the reader's hot path (a wrapper would cost a Python call per
path step), turns the core's negative return codes into exceptions with a
message that says what went wrong and where, and makes the ctypes prototypes
of the core functions that must run with the GIL held (``gil_function``).
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from ._bfa_core import ffi as ffi, lib as lib  # (re-exported)
from .errors import ArchiveError, BfastError, InternalError

if TYPE_CHECKING:
    from typing_extensions import Buffer

# A cffi object (``uint8_t *`` pointer, struct, buffer): cffi's compiled
# backend has no type stubs, so mypy cannot name its classes.
CData = Any

# a core built with BFA_UNCHECKED (validation compiled out, for measuring
# what the checks cost) reads no file unless the caller opts in
CHECKED_BUILD = bool(lib.bfa_build_checked())

_MESSAGES = {
    lib.BFA_E_NOTFOUND: "key not found",
    lib.BFA_E_BOUNDS: "offset or size out of bounds",
    lib.BFA_E_ALIGN: "misaligned offset",
    lib.BFA_E_TAG: "unknown or unexpected node type",
    lib.BFA_E_CORRUPT: "inconsistent node contents",
    lib.BFA_E_INDEX: "index out of range",
    lib.BFA_E_ORDER: "child node not laid out before its parent",
    lib.BFA_E_MAGIC: "not a bfast archive (bad magic bytes)",
    lib.BFA_E_VERSION: "unsupported format version",
    lib.BFA_E_FLAGS: "archive uses feature flags this reader does not know",
    lib.BFA_E_TRUNCATED: "archive is truncated",
    lib.BFA_E_HEADER: "malformed header",
    lib.BFA_E_ARG: "invalid argument to the C core",
    lib.BFA_E_CHECKSUM: "checksum mismatch",
    lib.BFA_E_LIMIT: "size beyond a safety limit (a corrupt or hostile archive)",
    lib.BFA_E_IO: "bytes of a ranged archive could not be fetched",
}

seq_get = lib.bfa_seq_get
dict_find = lib.bfa_dict_find
seq_check = lib.bfa_seq_check
dict_check = lib.bfa_dict_check
check_slot = lib.bfa_check_slot
slots_check = lib.bfa_slots_check
table_check = lib.bfa_table_check
offsets_check = lib.bfa_offsets_check
NOTFOUND = lib.BFA_E_NOTFOUND
E_INDEX = lib.BFA_E_INDEX


# memory the caller fills before anything reads it: not zero-filled first
# (its pages are first touched by whoever writes them)
alloc_uninit = ffi.new_allocator(should_clear_after_alloc=False)


def uninit_buffer(n: int) -> memoryview:
    """A new writable buffer of ``n`` bytes, not zero-filled: the caller
    writes every byte before it hands the buffer on. Backed by 2 MiB pages
    where the system allows (far fewer page faults on the first writes)."""
    block = alloc_uninit("uint8_t[]", max(n, 1))
    lib.bfa_advise_huge(block, n)
    return memoryview(ffi.buffer(block, n))


def describe(rc: int) -> str:
    """The human-readable meaning of a core return code."""
    return _MESSAGES.get(rc, f"error {rc}")


def check_internal(rc: int, what: str) -> int:
    """``rc`` if it is not an error; else ``InternalError`` naming ``what``
    (for calls whose arguments the library built itself, never file data)."""
    if rc < 0:
        raise InternalError(f"bfast_archive bug: {what} failed: {describe(rc)} ({rc})")
    return rc


# what a ranged archive's fill call (_ranged.py) failed with, per thread: the
# core returns BFA_E_IO and the reading thread raises it (archive_error)
_IO_ERRORS = threading.local()


def set_io_error(exc: BaseException) -> None:
    """Keep ``exc`` for the current thread's next BFA_E_IO."""
    _IO_ERRORS.exc = exc


def archive_error(rc: int, where: str) -> Exception:
    """An ArchiveError for return code ``rc`` met while reading ``where``;
    for BFA_E_IO, the error the fetch of a ranged archive's bytes raised
    (the client's own type, naming the URL)."""
    if rc == lib.BFA_E_IO:
        exc = getattr(_IO_ERRORS, "exc", None)
        if exc is not None:
            _IO_ERRORS.exc = None
            if isinstance(exc, Exception):
                return exc
            raise exc  # KeyboardInterrupt during a fetch
    return ArchiveError(f"{describe(rc)} ({where})")


def buffer_pointer(source: Buffer) -> tuple[CData, CData]:
    """``(owner, pointer)``: a ``uint8_t *`` over a buffer-protocol object,
    no copy. ``owner`` holds the buffer export; pass it to ``release``.

    For a memoryview the export is taken from the object underneath it, with
    the pointer offset to the view's first byte: a cffi buffer exported from a
    memoryview crashes CPython when both are left in cyclic garbage at exit.

    The pointer itself keeps the export alive (for an offset pointer, through
    ``ffi.gc``): a reader that holds only the pointer during a C call (which
    runs with the GIL released) reads mapped memory even if ``close()`` in
    another thread drops every other reference meanwhile.
    """
    if isinstance(source, memoryview) and source.obj is not None:
        owner = ffi.from_buffer("uint8_t[]", source.obj)
        probe = ffi.from_buffer("uint8_t[]", source)
        offset = int(ffi.cast("uintptr_t", probe)) - int(ffi.cast("uintptr_t", owner))
        ffi.release(probe)
        if 0 <= offset and offset + source.nbytes <= len(owner):
            if offset == 0:
                return owner, owner
            # owner + offset alone would not own the buffer: the destructor
            # (a no-op) holds ``owner`` for as long as the pointer lives
            return owner, ffi.gc(owner + offset, lambda _ptr, _owner=owner: None)
        ffi.release(owner)
    owner = ffi.from_buffer("uint8_t[]", source)
    return owner, owner


def release(pointer: CData) -> None:
    ffi.release(pointer)


def parse_header(pointer: CData, length: int) -> CData:
    """Parse and check the header; returns the filled ``bfa_header`` struct."""
    if not CHECKED_BUILD and os.environ.get("BFA_ALLOW_UNCHECKED") != "1":
        raise BfastError("this build of the bfast_archive C core has its validation compiled "
                         "out (BFA_UNCHECKED): a damaged file can crash it. Reinstall without "
                         "BFA_UNCHECKED, or set BFA_ALLOW_UNCHECKED=1 to read with it anyway")
    header = ffi.new("bfa_header *")
    rc = lib.bfa_parse_header(pointer, length, header)
    if rc < 0:
        if rc == lib.BFA_E_TRUNCATED:
            declared = int.from_bytes(bytes(ffi.buffer(pointer, 24)[16:24]), "little") \
                if length >= 24 else None
            size = f"header says {declared} bytes, " if declared is not None else ""
            raise ArchiveError(f"archive is truncated ({size}buffer has {length} bytes)")
        if rc == lib.BFA_E_VERSION:
            raise ArchiveError(
                f"unsupported format version {header.version_major}.{header.version_minor} "
                f"(this reader reads {lib.BFA_VERSION_MAJOR}.x)")
        if rc == lib.BFA_E_FLAGS:
            raise ArchiveError(f"archive uses feature flags this reader does not know "
                               f"(0x{header.flags:08x})")
        if rc == lib.BFA_E_CHECKSUM:
            raise ArchiveError("header checksum mismatch: the first 64 bytes are corrupt")
        raise archive_error(rc, "header" if rc in (lib.BFA_E_MAGIC, lib.BFA_E_HEADER)
                            else "root slot at offset 24")
    return header


def build_dict_index(segment: bytearray, seg_base: int, node_off: int) -> None:
    """Fill the hash index of the dict node at ``node_off`` inside ``segment``."""
    with ffi.from_buffer("uint8_t[]", segment, require_writable=True) as seg:
        check_internal(lib.bfa_dict_build_index(seg, len(segment), seg_base, node_off),
                       "dict index build")


# name -> (ctypes function, or False where unavailable); filled on first use
_FUNCS: dict[str, Any] = {}
_OBJECTS = ("py_object", "py_object")


def gil_function(name: str, args: tuple[str, ...] = _OBJECTS, python_api: bool = False) -> Any:
    """The C function ``name`` of the core's library (or of the CPython API)
    returning a new reference, taking ``args`` (ctypes type names)."""
    fn = _FUNCS.get(name)
    if fn is None:
        try:
            import ctypes

            from ._bfa_core import __file__ as core_path

            # a prototype of our own (setting restype on ctypes.pythonapi's
            # shared function objects would change them for every other user)
            proto = ctypes.PYFUNCTYPE(ctypes.py_object, *[getattr(ctypes, a) for a in args])
            library = ctypes.pythonapi if python_api else ctypes.PyDLL(core_path)
            fn = proto((name, library))
        except (ImportError, OSError, AttributeError):
            fn = False
        _FUNCS[name] = fn
    return fn
