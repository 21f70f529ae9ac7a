"""NumPy dtypes to and from the archive's dtype descriptor (docs/format/nodes.md,
"dtype descriptor"). Imported only when an array or NumPy scalar is met.

A simple dtype is its ``dtype.str`` (``<f4``, ``|b1``, ``<M8[ns]``, ``|S5``);
a structured or subarray dtype is a JSON object (``{"names", "formats",
"offsets", "itemsize"}``, with ``"titles"`` and ``"aligned"`` when used, or
``{"base", "shape"}``), formats nested the same way; a dtype with metadata is
``{"dtype", "metadata"}`` (metadata that is not JSON data is refused). Object
dtypes are refused both ways.
"""
from __future__ import annotations

import json
import math
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ArchiveError, UnsupportedTypeError

if TYPE_CHECKING:
    from typing import TypeAlias

    # a descriptor before JSON encoding: a dtype's ``str``, or a JSON object
    Descr: TypeAlias = str | dict[str, Any]


def _descr_obj(dt: np.dtype) -> Descr:
    obj = _form(dt)
    if dt.metadata is None:
        return obj
    meta = dict(dt.metadata)
    if not _json_exact(meta):  # it would not come back as it is
        raise UnsupportedTypeError(f"dtype {dt} carries metadata {meta!r:.200} that is not JSON "
                                   f"data (dicts with str keys, lists, str, int, finite "
                                   f"float, bool, None)")
    return {"dtype": obj, "metadata": meta}  # format 1.1


def _json_exact(v: Any) -> bool:
    """Does ``v`` survive ``json.loads(json.dumps(v))`` with its exact types?"""
    t = type(v)
    if v is None or t is str or t is bool or t is int:
        return True
    if t is float:
        return math.isfinite(v)
    if t is list:
        return all(_json_exact(x) for x in v)
    if t is dict:
        return all(type(k) is str and _json_exact(x) for k, x in v.items())
    return False


def _form(dt: np.dtype) -> Descr:
    """The descriptor object of ``dt`` apart from its metadata."""
    fields = dt.fields
    if fields is not None:
        names = list(dt.names or ())  # (not None with fields)
        obj: dict[str, Any] = {"names": names,
                               "formats": [_descr_obj(fields[n][0]) for n in names],
                               "offsets": [fields[n][1] for n in names],
                               "itemsize": dt.itemsize}
        titles = [f[2] if len(f) > 2 else None for f in map(fields.__getitem__, names)]
        if any(t is not None for t in titles):  # format 1.1
            if not all(t is None or type(t) is str for t in titles):
                raise UnsupportedTypeError(f"structured dtype {dt} has a field title that is "
                                           f"not a str")
            obj["titles"] = titles
        if dt.isalignedstruct:  # format 1.1
            obj["aligned"] = True
        return obj
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"base": _descr_obj(base), "shape": list(shape)}
    text: str = dt.str  # (numpy's stubs leave ``dtype.str`` untyped)
    if dt.char in "qQ" and np.dtype(text).char != dt.char:  # format 1.1
        return text[0] + dt.char  # C long long where int64 is another C type (Linux: long)
    return text


def dtype_to_descr(dt: np.dtype) -> str:
    """The descriptor string the archive stores for ``dt``. UnsupportedTypeError
    for what a descriptor cannot hold exactly (metadata that is not JSON data,
    non-str titles)."""
    obj = _descr_obj(dt)
    return obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))


def descr_minor(descr: str) -> int:
    """The format minor version a descriptor written by ``dtype_to_descr``
    needs: 1 if it uses a form added in 1.1 (field titles, an aligned
    struct, the ``q``/``Q`` spelling of C long long, metadata), else 0."""
    if descr.startswith("{"):
        return int(_uses_1_1(json.loads(descr)))
    return int(descr[1:] in ("q", "Q"))


def _uses_1_1(obj: Descr) -> bool:
    if isinstance(obj, str):
        return obj[1:] in ("q", "Q")
    if "metadata" in obj:
        return True
    if "base" in obj:
        return _uses_1_1(obj["base"])
    return "titles" in obj or "aligned" in obj or any(_uses_1_1(f) for f in obj["formats"])


_STRUCT_KEYS = {"names", "formats", "offsets", "itemsize"}
_STRUCT_FORMS = (_STRUCT_KEYS, _STRUCT_KEYS | {"titles"}, _STRUCT_KEYS | {"aligned"},
                 _STRUCT_KEYS | {"titles", "aligned"})


def _dtype_from_obj(obj: object) -> np.dtype:
    if isinstance(obj, str):
        return np.dtype(obj)
    if isinstance(obj, dict) and set(obj) == {"dtype", "metadata"}:
        inner, meta = obj["dtype"], obj["metadata"]
        if not (type(meta) is dict and _json_exact(meta)) or \
                isinstance(inner, dict) and "metadata" in inner:
            raise ValueError("bad dtype metadata")
        return np.dtype(_dtype_from_obj(inner), metadata=meta)
    if isinstance(obj, dict) and set(obj) == {"base", "shape"}:
        shape = obj["shape"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise ValueError("bad subarray shape")
        return np.dtype((_dtype_from_obj(obj["base"]), tuple(shape)))
    if isinstance(obj, dict) and set(obj) in _STRUCT_FORMS:
        names, formats, offsets = obj["names"], obj["formats"], obj["offsets"]
        titles = obj.get("titles", [None] * len(names) if isinstance(names, list) else None)
        if not (isinstance(names, list) and isinstance(formats, list)
                and isinstance(offsets, list) and isinstance(titles, list)
                and len(names) == len(formats) == len(offsets) == len(titles)
                and all(isinstance(n, str) for n in names)
                and all(t is None or isinstance(t, str) for t in titles)
                and ("titles" not in obj or any(t is not None for t in titles))
                and obj.get("aligned", True) is True
                and all(type(o) is int and o >= 0 for o in offsets)
                and type(obj["itemsize"]) is int and obj["itemsize"] > 0):
            raise ValueError("bad structured dtype")
        spec: dict[str, Any] = {"names": names, "formats": [_dtype_from_obj(f) for f in formats],
                                "offsets": offsets, "itemsize": obj["itemsize"]}
        if "titles" in obj:
            spec["titles"] = titles
        # (numpy's stubs type this dict form as a private TypedDict, which a dict
        # that gains "titles" after it is built does not match)
        return np.dtype(spec, align="aligned" in obj)  # type: ignore[call-overload, no-any-return]
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
