"""Record tables as data frames: Arrow columns over the archive's bytes.

``ArchivedTable.to_arrow()`` builds a ``pyarrow.Table`` whose buffers are the
archive's own bytes wherever the layouts agree (docs/CONCEPTS.md, "Tables as
data frames"):

- INT64 and FLOAT64 values: zero-copy (``int64`` / ``double``).
- STR: the column's u64 offsets (from 0) and UTF-8 blob are exactly Arrow's
  ``large_string`` layout: zero-copy. The offsets are checked in C and the
  blob's UTF-8 by Arrow's full validation, once per column and archive.
- STRLIST: row starts, string offsets and blob are ``large_list<large_string>``:
  zero-copy.
- Null masks (a byte per row, 1 = None) become Arrow validity bitmaps (a bit
  per row, 1 = valid): an O(n / 8) copy. BOOL values are bit-packed likewise.
- DATETIME (µs since 0001-01-01) becomes ``timestamp[us]`` (µs since 1970):
  an O(n) copy.
- SLOTS columns (cells of mixed or nested types) are refused with an
  ``UnsupportedTypeError`` naming the column.

pyarrow, pandas and polars are imported on first use only; a missing one
raises ImportError naming the package and the ``frames`` extra.
"""
from __future__ import annotations

import importlib
from typing import Any

from . import format as F
from .errors import ArchiveError, UnsupportedTypeError

_EXTRA = "pip install bfast-archive[frames]"
_UNIX_EPOCH_MICROS = 62_135_596_800_000_000  # 1970-01-01 counted from 0001-01-01
_MAX_MICROS = 315_537_897_599_999_999       # 9999-12-31 23:59:59.999999


def require(name: str) -> Any:
    """Import the optional package ``name`` (pyarrow, pandas, polars), or an
    ImportError that names it and the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{name} is needed for data frames and is not installed: "
                          f"{_EXTRA}") from exc


def _np() -> Any:
    import numpy

    return numpy


def _validity(pa: Any, mv: memoryview, at: int, n: int, where: str) -> tuple[Any, int]:
    """(Arrow validity bitmap, null count) of the null mask at ``at``: checked
    to hold only 0 and 1, then bit-packed (an O(n / 8) copy)."""
    np = _np()
    mask = np.frombuffer(mv, np.uint8, n, at)
    if n and mask.max() > 1:
        raise ArchiveError(f"null mask at offset {at} of column {where!r} holds bytes "
                           f"other than 0 and 1")
    nulls = int(np.count_nonzero(mask))
    return pa.py_buffer(np.packbits(mask == 0, bitorder="little")), nulls


def _strings_checked(arch: Any, offsets_at: int, count: int, blob_len: int, where: str) -> None:
    """The C check of a string offsets region (from 0, non-decreasing, within
    the blob) and that it ends at the blob's length."""
    from ._native import archive_error, offsets_check

    rc = offsets_check(arch._ptr, arch._size, offsets_at, count + 1, blob_len)
    if rc < 0:
        raise archive_error(rc, f"string offsets at offset {offsets_at} of column {where!r}")
    end = offsets_at + 8 * count
    last = int.from_bytes(arch._mv[end:end + 8], "little")
    if last != blob_len:
        raise ArchiveError(f"string offsets at offset {offsets_at} of column {where!r} end at "
                           f"{last}, the blob holds {blob_len} bytes")


def _utf8_checked(arr: Any, blob: memoryview, where: str) -> None:
    """Arrow's full validation (UTF-8 of every string, offsets): O(bytes), no
    copy. A lone surrogate (allowed in the format, as Python's
    ``surrogatepass``) has no Arrow form: refused, not returned."""
    try:
        arr.validate(full=True)
    except Exception:
        try:
            bytes(blob).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise ArchiveError(f"invalid UTF-8 in the string blob of column {where!r}") from None
        raise UnsupportedTypeError(f"column {where!r} holds a lone surrogate, which Arrow "
                                   f"strings cannot hold", path=where) from None


def column_to_arrow(arch: Any, info: Any, c: int, name: str) -> Any:
    """Column ``c`` of a table as a ``pyarrow.Array`` (see the module doc for
    which buffers are shared with the archive and which are copied)."""
    pa = require("pyarrow")
    np = _np()
    kind, flags, r0, r0n, r1, r1n, r2, r2n = info.cols[c]
    n = info.nrows
    mv = arch._mv
    if mv is None:
        raise ArchiveError("archive is closed")
    validity, nulls = None, 0
    if flags & F.COL_HAS_NULLS:
        validity, nulls = _validity(pa, mv, r2 if kind == F.COL_STR else r1, n, name)
    if kind == F.COL_INT64 or kind == F.COL_FLOAT64:
        typ = pa.int64() if kind == F.COL_INT64 else pa.float64()
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(mv[r0:r0 + 8 * n])], nulls)
    if kind == F.COL_BOOL:
        raw = np.frombuffer(mv, np.uint8, n, r0)
        if n and raw.max() > 1:
            raise ArchiveError(f"bool column {name!r} at offset {r0} holds bytes other than "
                               f"0 and 1")
        bits = pa.py_buffer(np.packbits(raw, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), n, [validity, bits], nulls)
    if kind == F.COL_DATETIME:
        micros = np.frombuffer(mv, "<i8", n, r0)
        if validity is not None:
            micros = np.where(np.frombuffer(mv, np.uint8, n, r1) != 0, _UNIX_EPOCH_MICROS, micros)
        if n and (micros.min() < 0 or micros.max() > _MAX_MICROS):
            raise ArchiveError(f"datetime column {name!r} at offset {r0}: value out of range")
        values = pa.py_buffer(micros - _UNIX_EPOCH_MICROS)
        return pa.Array.from_buffers(pa.timestamp("us"), n, [validity, values], nulls)
    if kind == F.COL_STR:
        checked = info.arrow_checked
        if c not in checked:
            _strings_checked(arch, r0, n, r1n, name)
        arr = pa.Array.from_buffers(pa.large_string(), n,
                                    [validity, pa.py_buffer(mv[r0:r0 + 8 * (n + 1)]),
                                     pa.py_buffer(mv[r1:r1 + r1n])], nulls)
        if c not in checked:
            _utf8_checked(arr, mv[r1:r1 + r1n], name)
            checked.add(c)
        return arr
    if kind == F.COL_STRLIST:
        m = r1n // 8 - 1
        checked = info.arrow_checked
        if c not in checked:
            _strings_checked(arch, r0, n, m, name)
            _strings_checked(arch, r1, m, r2n, name)
        items = pa.Array.from_buffers(pa.large_string(), m,
                                      [None, pa.py_buffer(mv[r1:r1 + r1n]),
                                       pa.py_buffer(mv[r2:r2 + r2n])])
        if c not in checked:
            _utf8_checked(items, mv[r2:r2 + r2n], name)
            checked.add(c)
        return pa.Array.from_buffers(pa.large_list(pa.large_string()), n,
                                     [None, pa.py_buffer(mv[r0:r0 + 8 * (n + 1)])],
                                     children=[items])
    raise UnsupportedTypeError(f"column {name!r} holds cells of mixed or nested types, "
                               f"which have no Arrow type", path=name)


def table_to_arrow(arch: Any, info: Any, names: list) -> Any:
    """The whole table as a ``pyarrow.Table``: O(columns) for zero-copy
    columns, plus the copies the module doc lists."""
    pa = require("pyarrow")
    return pa.table([column_to_arrow(arch, info, c, name) for c, name in enumerate(names)],
                    names=names)


def to_pandas(arrow_table: Any) -> Any:
    """``arrow_table`` as a pandas DataFrame (pandas copies what it needs)."""
    require("pandas")
    return arrow_table.to_pandas()


def to_polars(arrow_table: Any) -> Any:
    """``arrow_table`` as a polars DataFrame (polars copies what it needs)."""
    return require("polars").from_arrow(arrow_table)
