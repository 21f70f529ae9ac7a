"""Archived arrays: decoding ndarray nodes, and ``ArrayHandle``, a lazy
handle on one archived array (``arch.array(key)``)."""
from __future__ import annotations

import operator
from typing import Any

from . import format as F
from ._snapshot import Snapshot, claim, closed
from .errors import ArchiveError

_NDH = F.NDARRAY_HEADER.unpack_from
TRACK_MIN = 64  # shorter payloads shared many times expand at most 4-fold: not tracked
BAD_CODE_POINT = "'U' data holds a code point above U+10FFFF"


_NP: Any = None  # numpy, once imported by _numpy()


def _numpy() -> Any:
    global _NP
    if _NP is None:
        import numpy

        _NP = numpy
    return _NP


def has_text(dt: Any) -> bool:
    """Does dtype ``dt`` hold 'U' (UCS-4) data, itself or in a field?"""
    dt = dt.base  # the item dtype of a subarray dtype
    if dt.names:
        return any(has_text(dt.fields[name][0]) for name in dt.names)
    return bool(dt.kind == "U")


def bad_code_point(arr: Any) -> bool:
    """Does the 'U' data of ``arr`` (its dtype's or its fields') hold a code
    point above U+10FFFF? NumPy turns such an element into a str that
    CPython cannot represent (SystemError, then or later), so each place
    that makes Python objects of elements checks them first. O(arr.nbytes):
    called on the elements being converted, never on a whole array view."""
    dt = arr.dtype
    if dt.names:
        return any(bad_code_point(arr[name]) for name in dt.names)
    if dt.kind != "U" or dt.itemsize == 0 or arr.size == 0:
        return False
    np = _numpy()
    codes = np.ascontiguousarray(arr).reshape(-1).view(dt.str[0] + "u4")
    return bool(codes.max() > 0x10FFFF)


def array_meta(s: Snapshot, off: int) -> tuple[Any, ...]:
    """(dtype, shape, order, data offset or payload number, nbytes, external)
    of the checked ndarray node at ``off``; parsed once per archive."""
    meta = s.tables.get(("array", off))
    if meta is None:
        meta = s.tables[("array", off)] = _parse_array_meta(s.raw, off)
    return meta


def _parse_array_meta(raw: Any, off: int) -> tuple[Any, ...]:
    from .dtypes import descr_to_dtype

    data_off, nbytes, ndim, flags, dlen = _NDH(raw, off)
    descr_at = off + F.NDARRAY_HEADER.size
    dt = descr_to_dtype(bytes(raw[descr_at:descr_at + dlen]))
    if dt.subdtype is not None:
        raise ArchiveError(f"ndarray at offset {off}: a subarray dtype {dt} cannot be an "
                           f"array's own dtype")
    shape_at = descr_at + dlen + (-dlen % 8)
    shape = tuple(F.U64.unpack_from(raw, shape_at + 8 * i)[0] for i in range(ndim))
    count = 1
    for d in shape:
        count *= d
    if count * dt.itemsize != nbytes:
        raise ArchiveError(f"ndarray at offset {off}: shape {shape} of {dt} needs "
                           f"{count * dt.itemsize} bytes, node says {nbytes}")
    order = "F" if flags & F.NDARRAY_FORTRAN else "C"
    return dt, shape, order, data_off, nbytes, bool(flags & F.NDARRAY_EXTERNAL)


def _shape_array(np: Any, flat: Any, shape: tuple[Any, ...], order: str) -> Any:
    if order == "F":
        return flat.reshape(shape[::-1]).T
    return flat.reshape(shape) if len(shape) != 1 else flat


def ndarray(s: Snapshot, off: int, copy: bool) -> Any:
    """The array of the (checked) ndarray node at ``off``: a read-only view
    of the buffer (O(1), about 1 µs), or with ``copy`` an owned array. Data
    in a compressed payload is decompressed once and cached on the archive."""
    if not copy:
        # an array in place, made once per mapping (kept in ``s.tables``, as
        # its node's metadata is): each read gets a view of it, O(1) without
        # parsing a shape or taking the buffer again; it holds no archive
        whole = s.tables.get(("view", off))
        if whole is not None:
            return whole.view()
    np = _NP or _numpy()
    meta = s.tables.get(("array", off))  # (array_meta's own first step)
    dt, shape, order, data_off, nbytes, external = meta or array_meta(s, off)
    if copy and nbytes > TRACK_MIN:
        claim(s, ("payload", data_off) if external else data_off)
    try:
        if nbytes == 0 and not external:  # (an external one still names a payload)
            arr = np.empty(shape, dt, order=order)
        elif external:
            buf, fresh = payloads(s).payload(data_off, nbytes, s.nthreads(),
                                             cache=not copy, check=copy and s.check)
            arr = _shape_array(np, np.frombuffer(buf, dt, nbytes // dt.itemsize), shape, order)
            if copy and fresh:
                return arr  # decoded for this call alone: already an owned buffer
        elif s.image is not None:  # read by byte range: fetched for this call, owned
            flat = np.frombuffer(s.image.read(data_off, nbytes), dt, nbytes // dt.itemsize)
            arr = _shape_array(np, flat, shape, order)
            if copy:
                return _shape_array(np, flat.view(np.uint8).copy().view(dt), shape, order)
        elif copy:
            # copy the bytes, then view them: NumPy's own copy of a structured
            # array leaves padding bytes uninitialised
            owned = np.frombuffer(s.mv, np.uint8, nbytes, data_off).copy()
            return _shape_array(np, owned.view(dt), shape, order)
        else:
            # read-only as it is made: ``s.mv`` is a read-only memoryview
            # (_snapshot), and NumPy never makes a writeable array over one
            whole = _shape_array(np, np.frombuffer(s.mv, dt, nbytes // dt.itemsize, data_off),
                                 shape, order)
            s.tables[("view", off)] = whole
            return whole.view()
    except (ValueError, MemoryError) as exc:
        raise ArchiveError(f"ndarray at offset {off}: {exc}") from None
    if copy:
        return arr.copy(order="K")
    arr.flags.writeable = False
    return arr


def payloads(s: Snapshot) -> Any:
    """The payload layer of a compressed archive; ArchiveError for a node
    that names a payload in an archive that has none."""
    layer = s.layer
    if layer is None or not layer.compressed:
        raise ArchiveError("a node names a compressed payload in an uncompressed archive")
    return layer


def xbytes(s: Snapshot, index: int, n: int, copy: bool) -> Any:
    """A large ``bytes`` value kept in a compressed payload."""
    layer = payloads(s)
    if copy:
        claim(s, ("payload", index))
    buf, fresh = layer.payload(index, n, s.nthreads(), cache=not copy, check=copy and s.check)
    return bytes(buf) if copy else buf


class ArrayHandle:
    """Shape, dtype and row slices of an archived array without reading it.

    ``h[a:b]`` (and ``h[i]``, and tuples whose first item is one of those)
    slices along the first axis. Uncompressed, every result is a zero-copy
    view of the archive. Compressed, a slice decompresses only the chunks
    that hold its rows (a 100-row slice of a 400 MB array touches one or two
    1 MiB chunks); ``np.asarray(h)`` or ``arch[key]`` decompresses the whole
    array once and caches it for the archive's life.
    """

    __slots__ = ("_arch", "_off", "dtype", "shape", "_order", "_data", "_nbytes", "_external",
                 "_text")
    shape: tuple[int, ...]
    _nbytes: int

    def __init__(self, arch: Any, off: int) -> None:
        snap = arch._snap
        if snap is None:
            raise closed()
        self._arch = arch
        self._off = off
        (self.dtype, self.shape, self._order, self._data, self._nbytes,
         self._external) = array_meta(snap, off)
        self._text = has_text(self.dtype)  # 'U' data: elements are checked as they are read

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def chunk_bytes(self) -> int | None:
        """The size of the compression chunks that hold the array's data (a
        slice decodes whole chunks), or None for an array stored in place."""
        s = self._arch._snap
        if s is None:
            raise closed()
        return payloads(s).chunk_size(self._data) if self._external else None

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def _full(self) -> Any:
        s = self._arch._snap
        if s is None:
            raise closed()
        return ndarray(s, self._off, copy=False)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        arr = self._full()
        if dtype is not None and arr.dtype != dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def __getitem__(self, index: Any) -> Any:
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) and index else \
            (index, ())
        s = self._arch._snap
        if s is None:
            raise closed()
        layer = s.layer
        cached = self._external and layer is not None and layer.compressed and \
            self._data in layer.cache
        ranged = s.image is not None and not self._external
        if (not self._external and not ranged) or cached or self._order == "F" or not self.shape:
            return self._pick(self._full(), index)
        n = self.shape[0]
        if isinstance(first, slice):
            rows = range(*first.indices(n))
            if not rows:
                block = self._rows(0, 0)
            else:
                lo, hi = min(rows[0], rows[-1]), max(rows[0], rows[-1]) + 1
                block = self._rows(lo, hi)[rows.start - lo::rows.step][:len(rows)]
            return block[(slice(None),) + rest] if rest else block
        try:
            i = operator.index(first)
        except TypeError:
            return self._pick(self._full(), index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {operator.index(first)} is out of bounds for axis 0 "
                             f"with size {n}")
        row = self._rows(i, i + 1)[0]
        return row[rest] if rest else row

    def _pick(self, arr: Any, index: Any) -> Any:
        """``arr[index]``. Of an array holding 'U' data, an element that NumPy
        would turn into a Python scalar (a str, or a structured np.void) has
        its code points checked first: only that element, so views and slices
        stay O(1)."""
        if self._text:
            key = index if type(index) is tuple else (index,)
            # a trailing Ellipsis makes NumPy give a 0-d view where it would
            # give a scalar (field names and an Ellipsis already there: arrays)
            if not any(k is Ellipsis or isinstance(k, str) for k in key):
                element = arr[key + (Ellipsis,)]
                if element.ndim == 0 and bad_code_point(element):
                    raise ArchiveError(f"ndarray at offset {self._off}: {BAD_CODE_POINT}")
        try:
            return arr[index]
        except SystemError as exc:  # NumPy refusing a str it cannot build
            raise ArchiveError(f"ndarray at offset {self._off}: {exc}") from None

    def _rows(self, lo: int, hi: int) -> Any:
        """Rows [lo, hi) decoded from just the chunks that hold them (a copy)."""
        np = _numpy()
        s = self._arch._snap
        if s is None:
            raise closed()
        row_bytes = self._nbytes // self.shape[0] if self.shape[0] else 0
        if self._external:
            buf = payloads(s).payload_range(self._data, self._nbytes, lo * row_bytes,
                                            hi * row_bytes, s.nthreads())
        else:  # in place in an archive read by byte range: just these rows fetched
            buf = s.image.read(self._data + lo * row_bytes, (hi - lo) * row_bytes)
        try:
            flat = np.frombuffer(buf, self.dtype, (hi - lo) * row_bytes // self.dtype.itemsize)
            arr = flat.reshape((hi - lo,) + self.shape[1:])
        except ValueError as exc:
            raise ArchiveError(f"ndarray at offset {self._off}: {exc}") from None
        if self._text:  # decoded for this call: checked whole, as cheap as the decode
            if bad_code_point(arr):
                raise ArchiveError(f"ndarray at offset {self._off}: {BAD_CODE_POINT}")
        arr.flags.writeable = False
        return arr

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by reference: its archive's (``_refs.py``) and its node's offset."""
        if self._arch._snap is None:
            raise closed()
        return ArrayHandle, (self._arch, self._off)

    def __repr__(self) -> str:
        kind = "compressed" if self._external else "in place"
        return f"<ArrayHandle shape={self.shape} dtype={self.dtype} {kind}>"
