"""The C code that works on Python objects, called with the GIL held:
csrc/pytable.c and csrc/pyencode.c, and one CPython API function (``new_bytes``).

That C code reads and builds Python objects (the rows' dicts, model
instances, the strings of a table column), so it must run with the GIL,
which cffi releases around every call: each function is called through a
ctypes prototype (GIL held, exceptions checked) from the same
shared library the cffi core lives in (``_native.gil_function`` makes them). ctypes is imported on first use only
(it costs ~2 ms); where it cannot be loaded every function here returns
None and its caller does the same work in Python, slower.
"""
from __future__ import annotations

from typing import Any, Sequence

from ._native import gil_function as _function

NATIVE_MIN = 64  # tables of this many rows (strings) or more go through the C here

def new_bytes(n: int) -> bytes:
    """A new ``bytes`` of ``n`` bytes whose contents are not initialised: the
    caller must write every byte before anyone else sees it (as C fills
    ``PyBytes_FromStringAndSize(NULL, n)``, which this calls; ``bytes(n)``
    would zero it, under the GIL, when the memory comes from the heap).
    ``bytes(n)`` where ctypes is missing."""
    fn = _function("PyBytes_FromStringAndSize", ("c_void_p", "c_ssize_t"), python_api=True)
    if not fn or n < 2:  # (sizes 0 and 1 are shared singletons)
        return bytes(n)
    out: bytes = fn(None, n)
    return out


# -- writing ------------------------------------------------------------------

def table_columns(rows: Sequence[Any], keys: tuple[str, ...]
                  ) -> list[tuple[Any, ...] | list[Any]] | None:
    """Per key, a converted column (tuple) or the column's cells (list);
    None if ``rows`` are not dicts with exactly ``keys`` in order, or the C
    path is unavailable. One C call; touches every row once."""
    fn = _function("bfa_py_table_columns")
    return fn(rows, keys) if fn else None


def encode_cells(cells: list[Any], ctx: tuple[Any, ...]) -> tuple[bytes, bytes, int] | None:
    """Encode ``cells[start:]`` (csrc/pyencode.c; ``ctx`` is (start, segment
    offset, kinds, datetime.timezone, in_model, room)) until a cell the C
    cannot take: (referents, slots, index of that cell or len(cells)); None
    if the C path is unavailable. One C call; O(cells' size)."""
    fn = _function("bfa_py_encode_cells")
    return fn(cells, ctx) if fn else None


# -- reading ------------------------------------------------------------------

def model_rows(new: Any, new_args: tuple[type, ...], setters: tuple[Any, ...], fields_set: set[str],
               names: tuple[str, ...], columns: list[list[Any]]) -> list[Any] | None:
    """One model instance per row of ``columns`` (lists, in ``names``
    order), built as ``models._rows_builder`` builds them; None if the C
    path is unavailable. One C call; O(rows x fields)."""
    fn = _function("bfa_py_model_rows", ("py_object",) * 6)
    return fn(new, new_args, setters, fields_set, names, columns) if fn else None


def strings(blob: bytes, offsets: bytes) -> list[str] | None:
    """The strings ``blob[o[i]:o[i+1]]`` (``offsets``: little-endian uint64,
    one more than the strings), decoded from UTF-8 with surrogatepass.
    Raises ValueError for offsets out of order or past the blob,
    UnicodeDecodeError for bad UTF-8; None if the C path is unavailable."""
    fn = _function("bfa_py_strings")
    return fn(blob, offsets) if fn else None


def groups(items: list[Any], bounds: bytes) -> list[list[Any]] | None:
    """``[items[b[i]:b[i+1]] ...]`` for little-endian uint64 ``bounds``;
    ValueError for bounds out of order or past ``items``."""
    fn = _function("bfa_py_groups")
    return fn(items, bounds) if fn else None


def rows(names: tuple[str, ...], columns: list[list[Any]]) -> list[dict[str, Any]] | None:
    """One dict ``{names[j]: columns[j][i]}`` per row."""
    fn = _function("bfa_py_rows")
    return fn(names, columns) if fn else None


def decode_slots(address: int, size: int, positions: bytes | None, start: int, count: int,
                 ctx: tuple[Any, ...]) -> tuple[list[Any], list[int], list[int]] | None:
    """The values of ``count`` checked slots of the buffer at ``address``
    (``size`` bytes): at the little-endian uint64 offsets ``positions``, or
    at ``start``, ``start + 16``, ... when it is None. Returns ``(values,
    fallbacks, claims)``: the indexes in ``fallbacks`` are cells left to the
    Python decoder (their value is None), ``claims`` the node offsets a
    copy-out claims for the others (csrc/pydecode.c); None if the C path is
    unavailable. One C call; O(count)."""
    fn = _function("bfa_py_decode_slots", ("c_void_p", "c_uint64", "py_object", "c_uint64",
                                           "c_uint64", "py_object"))
    return fn(address, size, positions, start, count, ctx) if fn else None


def model_cells(address: int, size: int, start: int, count: int) -> Any:
    """For ``count`` checked MODEL slots at ``start``, ``start + 16``, ...
    of one schema node and same-keyed dict bodies: ``(schema_off,
    key_positions, value_positions, claims)`` (csrc/pydecode.c); None if
    they are not such cells or the C path is unavailable. O(count x fields)."""
    fn = _function("bfa_py_model_cells", ("c_void_p", "c_uint64", "c_uint64", "c_uint64"))
    return fn(address, size, start, count) if fn else None
