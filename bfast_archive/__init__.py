"""bfast_archive: a zero-copy archive format for Python.

    import bfast_archive as bfa
    bfa.dump({"meta": {...}, "users": [...], "emb": array}, "cache.bfa")
    with bfa.Archive.open("cache.bfa") as arch:     # O(1): maps the file
        arch["users"][50_000]["name"]               # touches a few pages
        arch["emb"]                                 # ndarray view, no copy

Importing this package loads neither NumPy nor any optional dependency;
NumPy is imported on the first array read or written.
"""
from __future__ import annotations

import os
from typing import Any

from .errors import ArchiveError, BfastError, UnsupportedTypeError
from .reader import Archive, ArchivedDict, ArchivedList
from .writer import dump, dumps

__version__ = "0.1.0"
__all__ = ["Archive", "ArchivedDict", "ArchivedList", "ArchiveError", "BfastError",
           "UnsupportedTypeError", "dump", "dumps", "load", "loads"]


def load(path: str | os.PathLike) -> Any:
    """Read the whole archive at ``path`` into plain Python objects, independent
    of the file (arrays as owned copies, bytes as ``bytes``). Cost: proportional
    to the archive; for random access use ``Archive.open``."""
    with Archive.open(path) as arch:
        return arch.to_python()


def loads(buffer: Any) -> Any:
    """Like ``load``, from any buffer-protocol object (bytes, bytearray, mmap...)."""
    with Archive.from_buffer(buffer) as arch:
        return arch.to_python()


# The cache (bfast_archive/cache.py) loads on first use: `bfa.Cache`, `bfa.memoize`.
_LAZY = {"Cache": "cache", "memoize": "cache"}
__all__ += list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
