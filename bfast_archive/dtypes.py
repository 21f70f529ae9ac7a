"""NumPy dtypes to and from the archive's dtype descriptor (docs/FORMAT.md,
"dtype descriptor"). Imported only when an array or NumPy scalar is met.

A simple dtype is its ``dtype.str`` (``<f4``, ``|b1``, ``<M8[ns]``, ``|S5``);
a structured or subarray dtype is a JSON object (``{"names", "formats",
"offsets", "itemsize"}`` or ``{"base", "shape"}``), formats nested the same way.
Object dtypes are refused both ways.
"""
from __future__ import annotations

import json
import warnings
from functools import lru_cache

import numpy as np

from .errors import ArchiveError


def _descr_obj(dt: np.dtype):
    if dt.fields is not None:
        names = list(dt.names)
        return {"names": names,
                "formats": [_descr_obj(dt.fields[n][0]) for n in names],
                "offsets": [dt.fields[n][1] for n in names],
                "itemsize": dt.itemsize}
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"base": _descr_obj(base), "shape": list(shape)}
    return dt.str


def dtype_to_descr(dt: np.dtype) -> str:
    """The descriptor string the archive stores for ``dt``."""
    obj = _descr_obj(dt)
    return obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))


def _dtype_from_obj(obj) -> np.dtype:
    if isinstance(obj, str):
        return np.dtype(obj)
    if isinstance(obj, dict) and set(obj) == {"base", "shape"}:
        shape = obj["shape"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise ValueError("bad subarray shape")
        return np.dtype((_dtype_from_obj(obj["base"]), tuple(shape)))
    if isinstance(obj, dict) and set(obj) == {"names", "formats", "offsets", "itemsize"}:
        names, formats, offsets = obj["names"], obj["formats"], obj["offsets"]
        if not (isinstance(names, list) and isinstance(formats, list)
                and isinstance(offsets, list) and len(names) == len(formats) == len(offsets)
                and all(isinstance(n, str) for n in names)
                and all(type(o) is int and o >= 0 for o in offsets)
                and type(obj["itemsize"]) is int and obj["itemsize"] > 0):
            raise ValueError("bad structured dtype")
        return np.dtype({"names": names, "formats": [_dtype_from_obj(f) for f in formats],
                         "offsets": offsets, "itemsize": obj["itemsize"]})
    raise ValueError("unknown descriptor form")


@lru_cache(maxsize=1024)
def descr_to_dtype(descr: bytes) -> np.dtype:
    """Parse a stored descriptor; raises ArchiveError for anything invalid,
    including object dtypes (their bytes would be raw pointers)."""
    try:
        text = descr.decode("ascii")
        obj = json.loads(text) if text.startswith("{") else text
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a deprecated spelling is not a valid descriptor
            dt = _dtype_from_obj(obj)
    except Exception as exc:  # NumPy's parser is a black box (it even raises SyntaxError)
        raise ArchiveError(f"invalid dtype descriptor {descr[:80]!r}: {exc}") from None
    if dt.hasobject:
        raise ArchiveError(f"dtype descriptor {descr[:80]!r} names an object dtype")
    if dt.itemsize == 0:
        raise ArchiveError(f"dtype descriptor {descr[:80]!r} has zero item size")
    return dt
