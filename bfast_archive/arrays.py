"""ArrayHandle: a lazy handle on one archived array (``arch.array(key)``)."""
from __future__ import annotations

import operator
from typing import Any

from .errors import ArchiveError


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

    def __init__(self, arch: Any, off: int) -> None:
        from .reader import _array_meta, has_text

        self._arch = arch
        self._off = off
        (self.dtype, self.shape, self._order, self._data, self._nbytes,
         self._external) = _array_meta(arch, off)
        self._text = has_text(self.dtype)  # 'U' data: elements are checked as they are read

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def _full(self) -> Any:
        from .reader import _closed, _ndarray

        if self._arch._ptr is None:
            raise _closed()
        return _ndarray(self._arch, self._off, copy=False)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        arr = self._full()
        if dtype is not None and arr.dtype != dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def __getitem__(self, index: Any) -> Any:
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) and index else \
            (index, ())
        layer = self._arch._file
        cached = self._external and getattr(layer, "compressed", False) and \
            self._data in layer.cache
        if not self._external or cached or self._order == "F" or not self.shape:
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
            from .reader import _BAD_CODE_POINT, bad_code_point

            key = index if type(index) is tuple else (index,)
            # a trailing Ellipsis makes NumPy give a 0-d view where it would
            # give a scalar (field names and an Ellipsis already there: arrays)
            if not any(k is Ellipsis or isinstance(k, str) for k in key):
                element = arr[key + (Ellipsis,)]
                if element.ndim == 0 and bad_code_point(element):
                    raise ArchiveError(f"ndarray at offset {self._off}: {_BAD_CODE_POINT}")
        try:
            return arr[index]
        except SystemError as exc:  # NumPy refusing a str it cannot build
            raise ArchiveError(f"ndarray at offset {self._off}: {exc}") from None

    def _rows(self, lo: int, hi: int) -> Any:
        """Rows [lo, hi) decoded from just the chunks that hold them (a copy)."""
        import numpy as np

        from .reader import _closed

        arch = self._arch
        if arch._ptr is None:
            raise _closed()
        row_bytes = self._nbytes // self.shape[0] if self.shape[0] else 0
        from .reader import _payloads

        buf = _payloads(arch).payload_range(self._data, self._nbytes, lo * row_bytes,
                                       hi * row_bytes, arch._threads())
        try:
            flat = np.frombuffer(buf, self.dtype, (hi - lo) * row_bytes // self.dtype.itemsize)
            arr = flat.reshape((hi - lo,) + self.shape[1:])
        except ValueError as exc:
            raise ArchiveError(f"ndarray at offset {self._off}: {exc}") from None
        if self._text:  # decoded for this call: checked whole, as cheap as the decode
            from .reader import _BAD_CODE_POINT, bad_code_point

            if bad_code_point(arr):
                raise ArchiveError(f"ndarray at offset {self._off}: {_BAD_CODE_POINT}")
        arr.flags.writeable = False
        return arr

    def __repr__(self) -> str:
        kind = "compressed" if self._external else "in place"
        return f"<ArrayHandle shape={self.shape} dtype={self.dtype} {kind}>"
