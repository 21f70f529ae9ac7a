"""Dask collections over archives: ``bfa.dask.array`` and ``bfa.dask.dataframe``.

    import bfast_archive as bfa
    x = bfa.dask.array("data.bfa", "emb")                # dask.array, lazy
    x.sum().compute()
    df = bfa.dask.dataframe("data.bfa", "users", npartitions=8)
    df.groupby("country")["age"].mean().compute()

The graph carries references, never data: each task holds the archive's
reference (its path, the file's identity, as pickling records it,
``_refs.py``), the key of the value and a row range. A worker opens the
archive itself (kept open in a small per-process cache keyed by the
reference, checked against the file with one ``stat`` per task) and reads
its rows: ``ArrayHandle`` slices for arrays (zero-copy views of the mapped
file, or the compressed chunks holding the rows, decoded), ``column()`` for
tables. A file that changes while a graph runs makes its tasks raise
``ArchiveError`` naming it.

Sources are local paths (``file://`` URLs too) or URLs (``s3://``,
``http(s)://``, ..., with ``storage_options`` as in ``Archive.open``). The
workers must see a local file at the same path (one machine, or a shared file
system on which the device number agrees: the identity is local); a URL each
worker reads by byte range itself (the graph carries the URL, the object's
identity and the storage options), pinned to the version the graph was built
from: a replaced object makes the tasks raise ``ArchiveError``.

Needs Dask (``pip install "bfast-archive[dask]"``), imported on the first
call: ``import bfast_archive`` and ``bfa.dask`` import nothing of it.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from typing import Any

from . import format as F
from ._refs import ArchiveRef, check_unchanged, reopen
from ._urls import is_url
from .archive import Archive
from .tables import ArchivedTable
from .views import ArchivedDict, snapshot_of

TARGET_CHUNK_BYTES = 64 << 20  # a dask chunk of an uncompressed array, about
META_ROWS = 8                  # rows read to build a data frame's meta
PARTITION_ROWS = 1_000_000     # default rows per data frame partition
CACHED_ARCHIVES = 8            # open archives kept per process
Keys = tuple[Any, ...]         # a path of keys to a value

__all__ = ["array", "dataframe"]


def _require(module: str) -> Any:
    """Import ``module`` (part of Dask), or an ImportError saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f'bfa.dask needs {module} ({exc}): pip install "bfast-archive[dask]"') \
            from exc




def _ref(arch: Archive) -> ArchiveRef:
    """The reference of an archive opened from a file (what tasks carry)."""
    ref = arch._ref
    assert ref is not None  # (Archive.open gives one)
    return ref


def _keys(key: Any) -> Keys:
    """``key`` as a path of keys: a str (or any one key), or a tuple/list of them."""
    keys = tuple(key) if isinstance(key, (tuple, list)) else (key,)
    if not keys:
        raise ValueError("key must name a value: a key, or a non-empty tuple of keys")
    return keys


def _shown(keys: Keys) -> str:
    return repr(keys[0] if len(keys) == 1 else keys)


def _parent(arch: Archive, keys: Keys) -> Any:
    """The container holding the value at path ``keys``."""
    node: Any = arch
    for k in keys[:-1]:
        node = node[k]
    return node


def _at(arch: Archive, keys: Keys) -> Any:
    """The value at path ``keys``."""
    return _parent(arch, keys)[keys[-1]]


def _handle(arch: Archive, keys: Keys) -> Any:
    """The ``ArrayHandle`` of the array at path ``keys``."""
    parent = _parent(arch, keys)
    if not isinstance(parent, (Archive, ArchivedDict)):
        raise TypeError(f"the array at {_shown(keys)} must be a value of a dict, not an item "
                        f"of a {type(parent).__name__}")
    return parent.array(keys[-1])


_cache: "OrderedDict[ArchiveRef, Archive]" = OrderedDict()
_lock = threading.Lock()


def _archive(ref: ArchiveRef) -> Archive:
    """The open archive ``ref`` names, in this process: reopened once and
    kept (the last ``CACHED_ARCHIVES``); the file is checked to be the same
    on every call (one ``stat``)."""
    with _lock:
        arch = _cache.get(ref)
        if arch is not None:
            _cache.move_to_end(ref)
    if arch is not None and not arch.closed:
        if not is_url(ref.path):  # (a remote archive's reads are pinned to its version)
            check_unchanged(ref)
        return arch
    arch = reopen(ref)
    with _lock:
        _cache[ref] = arch
        while len(_cache) > CACHED_ARCHIVES:
            _cache.popitem(last=False)
    return arch


class _ArchivedArray:
    """What a dask array's graph holds: a reference to an archived array
    (archive, key path, shape, dtype), sliced in the worker. Pickles small."""

    __slots__ = ("ref", "keys", "shape", "dtype")

    def __init__(self, ref: ArchiveRef, keys: Keys, shape: tuple[int, ...], dtype: Any) -> None:
        self.ref = ref
        self.keys = keys
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: Any) -> Any:
        return _handle(_archive(self.ref), self.keys)[index]

    def __getstate__(self) -> tuple[Any, ...]:
        return self.ref, self.keys, self.shape, self.dtype

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.ref, self.keys, self.shape, self.dtype = state

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return self.ref, self.keys

    def __repr__(self) -> str:
        return f"<archived array {self.keys!r} of {self.ref.path}>"


def _row_chunks(n: int, row_bytes: int, chunk_bytes: int | None, chunks: Any) -> tuple[int, ...]:
    """The rows of each dask chunk: ``chunks`` (an int: rows per chunk; a
    tuple: the rows of each) or the default, whole compression chunks (as
    many as fit ``TARGET_CHUNK_BYTES``) or about that many bytes."""
    if chunks is None:
        if chunk_bytes and row_bytes:
            per = max(1, TARGET_CHUNK_BYTES // chunk_bytes) * chunk_bytes  # whole chunks
            starts = {-(-at // row_bytes) for at in range(per, n * row_bytes, per)}
            bounds = sorted(starts | {0, n})  # each boundary: the first row starting in a chunk
            return tuple(b - a for a, b in zip(bounds, bounds[1:])) or (0,)
        chunks = max(1, TARGET_CHUNK_BYTES // row_bytes) if row_bytes else max(n, 1)
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        if chunks < 1:
            raise ValueError(f"chunks must be a positive number of rows, not {chunks}")
        return tuple(min(chunks, n - a) for a in range(0, n, chunks)) or (0,)
    if isinstance(chunks, (tuple, list)) and all(isinstance(c, int) and c >= 0 for c in chunks) \
            and sum(chunks) == n:
        return tuple(chunks)
    raise ValueError(f"chunks must be rows per chunk (an int) or the rows of each chunk "
                     f"(a tuple of ints adding up to {n}), not {chunks!r}")


def array(source: str | os.PathLike[str], key: Any, chunks: Any = None,
          storage_options: dict[str, Any] | None = None) -> Any:
    """A ``dask.array.Array`` over the archived array at ``key`` (a key of
    the root dict, or a tuple/list of keys for a nested one: ``("model",
    "layers", 3, "w")``; the array must be a value of a dict).

    Chunked along the first axis only: ``chunks`` is rows per chunk (an int)
    or the rows of each chunk (a tuple); by default, in a compressed archive,
    whole compression chunks (as many as fit about 64 MiB, a boundary at the
    first row that starts in a chunk), else about 64 MiB per chunk.

    Cost here: opening the archive and reading the array's node (O(1)). The
    graph holds only a reference (path, file identity, key); each worker
    opens the archive itself (once per process) and reads its rows: a
    zero-copy view of the mapped file, or the compression chunks holding
    them, decoded; for a URL, the byte ranges of those rows or chunks.
    ``source`` is a local path or a URL (``storage_options`` as in
    ``Archive.open``)."""
    da = _require("dask.array")
    np = _require("numpy")
    keys = _keys(key)
    with Archive.open(source, storage_options=storage_options) as arch:
        handle = _handle(arch, keys)
        shape, dtype, chunk_bytes = handle.shape, handle.dtype, handle.chunk_bytes
        ref = _ref(arch)
    if not shape:
        chunked: tuple[tuple[int, ...], ...] = ()
    else:
        n = shape[0]
        row_bytes = dtype.itemsize * math.prod(shape[1:])
        chunked = (_row_chunks(n, row_bytes, chunk_bytes, chunks),) + tuple((d,) for d in shape[1:])
    source_array = _ArchivedArray(ref, keys, shape, dtype)
    name = f"bfa-array-{_token(ref, keys, chunked)}"
    return da.from_array(source_array, chunks=chunked, name=name, lock=False, asarray=True,
                         fancy=False, meta=np.empty((0,) * len(shape), dtype))


def _token(*parts: Any) -> str:
    return str(_require("dask.base").tokenize(*parts))


def _column_values(values: Any, kind: int, lo: int, hi: int, pd: Any, np: Any) -> Any:
    """Rows [lo, hi) of what ``column()`` gave for a column of ``kind``, as a
    data frame column, exactly: an array as is; a masked array as pandas'
    nullable array (no NaN for a missing int); a str column as
    ``string[pyarrow]`` (what Dask makes of strings); naive datetimes as
    ``datetime64[us]``; other lists as an object column of their values."""
    index = pd.RangeIndex(lo, hi)
    if isinstance(values, list):
        dtype = pd.StringDtype("pyarrow") if kind == F.COL_STR else \
            "datetime64[us]" if kind == F.COL_DATETIME else object
        return pd.Series(values[lo:hi], dtype=dtype, index=index)
    part = values[lo:hi]
    if isinstance(part, np.ma.MaskedArray):
        nullable = {"i": pd.arrays.IntegerArray, "u": pd.arrays.IntegerArray,
                    "f": pd.arrays.FloatingArray, "b": pd.arrays.BooleanArray}.get(part.dtype.kind)
        data, mask = np.array(part.data), np.ma.getmaskarray(part).copy()
        if nullable is not None:
            return nullable(data, mask)
        values = data.astype(object)
        values[mask] = None
        return pd.Series(values, dtype=object, index=index)
    return part


def _frame(table: ArchivedTable, names: list[str], lo: int, hi: int) -> Any:
    """Rows [lo, hi) of ``table`` as a pandas DataFrame (index lo..hi-1)."""
    np, pd = _require("numpy"), _require("pandas")

    s = snapshot_of(table)
    info = table._info(s)
    data = {name: _column_values(table.column(name), info.cols[info.column_of(s, name)][0],
                                 lo, hi, pd, np) for name in names}
    return pd.DataFrame(data, index=pd.RangeIndex(lo, hi), columns=names)


def _partition(lo: int, hi: int, ref: ArchiveRef, keys: Keys, names: list[str]) -> Any:
    """One partition of ``dataframe``, read in the worker."""
    return _frame(_at(_archive(ref), keys), names, lo, hi)


def dataframe(source: str | os.PathLike[str], key: Any, npartitions: int | None = None,
              storage_options: dict[str, Any] | None = None) -> Any:
    """A ``dask.dataframe.DataFrame`` over the record table at ``key`` (a key
    of the root dict, or a tuple/list of keys), one partition per row range
    (``npartitions`` of them; default one per million rows), indexed by row
    number (divisions known).

    Each partition reads its columns with ``ArchivedTable.column()``:
    numeric and bool columns as arrays (zero-copy, sliced; with missing
    values as pandas' nullable ``Int64``/``Float64``/``boolean``), str
    columns as ``string[pyarrow]``, datetime columns as ``datetime64[us]``,
    other columns (lists, nested or mixed values) as object columns of the
    values ``column()`` gives: exact, never converted to their text (Dask's
    ``dataframe.convert-string`` is not applied). A non-numeric column is
    decoded whole and sliced in each partition (O(rows) per partition). The
    meta is built from the first rows.

    Cost here: opening the archive and reading ``META_ROWS`` rows. The graph
    holds only references (path, file identity, key, row range); each worker
    opens the archive itself. ``source`` is a local path or a URL
    (``storage_options`` as in ``Archive.open``)."""
    dd = _require("dask.dataframe")
    keys = _keys(key)
    with Archive.open(source, storage_options=storage_options) as arch:
        table = _at(arch, keys)
        if not isinstance(table, ArchivedTable):
            raise TypeError(f"the value at {_shown(keys)} is not a record table but a "
                            f"{type(table).__name__} (bfa.dump stores a list of at least "
                            f"{F.TABLE_MIN_ROWS} same-keyed dicts as a table)")
        n, columns, ref = len(table), table.columns, _ref(arch)
        meta = _frame(table, columns, 0, min(n, META_ROWS)).iloc[:0]
    if npartitions is None:
        npartitions = -(-n // PARTITION_ROWS)
    if not isinstance(npartitions, int) or npartitions < 1:
        raise ValueError(f"npartitions must be a positive int, not {npartitions!r}")
    npartitions = max(1, min(npartitions, n))
    bounds = [n * i // npartitions for i in range(npartitions + 1)]
    divisions = tuple(bounds[:-1]) + (n - 1,) if n else None
    dask = _require("dask")
    with dask.config.set({"dataframe.convert-string": False}):  # object columns stay objects
        return dd.from_map(_partition, bounds[:-1], bounds[1:], args=(ref, keys, columns),
                           meta=meta, divisions=divisions, label="bfa-table")
