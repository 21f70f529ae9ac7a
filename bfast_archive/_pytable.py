"""The record-table fast path in C (csrc/pytable.c), called with the GIL held.

That C code reads Python objects (the rows' dicts), so it must run with the
GIL, which cffi releases around every call: it is called through a ctypes
``PYFUNCTYPE`` prototype (GIL held, exceptions checked) from the same shared
library the cffi core lives in. ctypes is imported on first use only (it
costs ~2 ms); where it cannot be loaded, the writer's Python path does the
same work, slower.
"""
from __future__ import annotations

from typing import Any

_call: Any = None


def table_columns(rows: list, keys: tuple) -> list | None:
    """Per key, a converted column (tuple) or the column's cells (list);
    None if ``rows`` are not dicts with exactly ``keys`` in order, or the C
    path is unavailable. One C call; touches every row once."""
    global _call
    call = _call
    if call is None:
        call = _call = _load()
    if call is False:
        return None
    return call(rows, keys)


_rows: Any = None


def model_rows(new: Any, new_args: tuple, setters: tuple, fields_set: set, names: tuple,
               columns: list) -> list | None:
    """One model instance per row of ``columns`` (lists, in ``names``
    order), built as ``models._rows_builder`` builds them; None if the C
    path is unavailable. One C call; O(rows x fields)."""
    global _rows
    call = _rows
    if call is None:
        call = _rows = _load("bfa_py_model_rows", 6)
    if call is False:
        return None
    return call(new, new_args, setters, fields_set, names, columns)


def _load(name: str = "bfa_py_table_columns", nargs: int = 2) -> Any:
    try:
        import ctypes

        from . import _bfa_core

        library = ctypes.PyDLL(_bfa_core.__file__)  # the already loaded module
        proto = ctypes.PYFUNCTYPE(ctypes.py_object, *[ctypes.py_object] * nargs)
        return proto((name, library))
    except (ImportError, OSError, AttributeError):
        return False
