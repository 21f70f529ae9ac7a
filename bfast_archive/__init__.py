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
from typing import TYPE_CHECKING, Any

from ._mappings import release_mappings
from ._urls import split_source as _split_source
from ._source import MappedFile as _MappedFile
from .errors import (ArchiveError, BfastError, InternalError, NestingError, SchemaMismatchError,
                     UnsupportedTypeError)
from .archive import Archive
from .tables import ArchivedTable
from .views import ArchivedDict, ArchivedList
from .writer import dump, dumps

__version__ = "0.1.0"
__all__ = ["Archive", "ArchivedDict", "ArchivedList", "ArchivedTable", "ArchiveError",
           "BfastError", "InternalError", "NestingError", "SchemaMismatchError",
           "UnsupportedTypeError", "dump", "dumps", "load", "loads", "release_mappings"]


def load(path: str | os.PathLike[str], *, model: Any = None, trusted: bool = False,
         verify: bool = True, storage_options: dict[str, Any] | None = None) -> Any:
    """Read the whole archive at ``path`` into plain Python objects, independent
    of the file (arrays as owned copies, bytes as ``bytes``). Cost: proportional
    to the archive; for random access use ``Archive.open``.

    The archive's XXH64 checksums are verified first (in C, in parallel: 1-2.5%
    of the time of a load of 100,000 records), so a damaged file raises ``ArchiveError`` naming
    it, never returns altered data; ``verify=False`` skips the checksums (the
    structural checks of every read still run).

    With ``model=M`` (a pydantic model class; or ``list[M]``, ``tuple[M, ...]``,
    ``dict[str, M]``) the result is an ``M`` instance (or that container of
    them), validated by field name, each field's stored type checked against
    the model's (an incompatible change raises SchemaMismatchError naming the
    field); ``trusted=True`` builds it without validation when the archive was
    written from the same models (every schema fingerprint matches), and
    validates otherwise.

    ``path`` may be a URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``,
    ``memory://``; ``storage_options`` go to its fsspec file system, as in
    pandas): the whole object is fetched by concurrent ranges, pinned to one
    version (``bfast_archive.remote.RemoteFile.read_all``), then decoded and
    verified as a local file; needs ``pip install "bfast-archive[remote]"``."""
    url, path = _split_source(path, storage_options)
    if url is not None:
        from .remote import RemoteFile

        with RemoteFile(url, storage_options) as remote:
            data = remote.read_all()
        with Archive.from_buffer(data) as arch:
            return _named_load(arch, url, model, trusted, verify)
    name = os.fspath(path)
    with Archive._open_source(_MappedFile(path, keep=False)) as arch:
        return _named_load(arch, name, model, trusted, verify)


def _named_load(arch: Archive, name: str, model: Any, trusted: bool, verify: bool) -> Any:
    try:
        return _load(arch, model, trusted, verify)
    except ArchiveError as exc:
        raise ArchiveError(f"{name}: {exc}") from None


def loads(buffer: Any, *, model: Any = None, trusted: bool = False,
          verify: bool = True) -> Any:
    """Like ``load``, from any buffer-protocol object (bytes, bytearray, mmap...),
    checksums verified unless ``verify=False``."""
    with Archive.from_buffer(buffer) as arch:
        return _load(arch, model, trusted, verify)


def _load(arch: Archive, model: Any, trusted: bool, verify: bool) -> Any:
    if model is not None:
        return arch.to_model(model, trusted=trusted, verify=verify)
    return arch.to_python(verify=verify)


# Loaded on first use: the cache (bfast_archive/cache.py: `bfa.Cache`, `bfa.memoize`)
# model support (bfast_archive/models.py, which imports pydantic), the array
# handle ``ArchivedDict.array`` returns (bfast_archive/arrays.py) and data frames
# (bfast_archive/frames.py, which imports pyarrow, pandas, polars when used).
_LAZY = {"Cache": "cache", "memoize": "cache", "ArrayHandle": "arrays", "ArchivedModel": "models",
         "ArchivedModelList": "models", "ArchivedFrame": "frames"}
__all__ += list(_LAZY)

if TYPE_CHECKING:  # what __getattr__ gives, for type checkers
    from .arrays import ArrayHandle
    from .cache import Cache, memoize
    from .frames import ArchivedFrame
    from .models import ArchivedModel, ArchivedModelList


# Submodules loaded on first access: ``bfa.dask`` (Dask collections over archives;
# Dask itself is imported by its functions).
_LAZY_MODULES = {"dask"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None and name not in _LAZY_MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    if module is None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
