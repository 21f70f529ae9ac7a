"""Bulk data first: the large arrays whose element data an uncompressed
archive holds before any node (docs/format/canonical-form.md, "Bulk data
first").

With the data of its large arrays at the start of the file, an archive's
nodes sit together at its end, next to the root and the directory: a ranged
reader gets the root and the nodes that name the arrays in its first suffix
request, and one more request reads an array's rows (two sequential round
trips). The scan visits a bounded number of values, so its cost does not grow
with the archive (a list of records is not entered: it becomes a table).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from . import format as F

if TYPE_CHECKING:
    import numpy.typing as npt

SCAN_LIMIT = 4096  # values visited at most, the root included


def large_arrays(root: Any) -> list[tuple[Any, npt.NDArray[Any]]]:
    """The arrays of at least ``F.BIG_PAYLOAD`` bytes met, in order, by a
    depth-first visit of ``root``: the values of dicts in insertion order,
    the items of lists and tuples, the field values of pydantic models stored
    as their field values (an array met twice is listed twice, as two equal
    arrays would be: the archive holds it twice). Lists that may become
    tables (``F.TABLE_MIN_ROWS`` items or more, the first a dict or a model)
    are not entered. Views of archives are visited as their values
    (``_views.bulk_children``). Each array comes with the key the writer
    finds its laid-out data by. Cost: at most ``SCAN_LIMIT`` values visited;
    nothing is copied (but the arrays of a compressed archive's view, which
    are decoded)."""
    np = sys.modules.get("numpy")
    if np is None:  # no array can exist
        return []
    arrays = (np.ndarray, np.memmap)
    found: list[tuple[Any, npt.NDArray[Any]]] = []
    stack = [root]
    budget = SCAN_LIMIT
    while stack and budget:
        v = stack.pop()
        budget -= 1
        t = type(v)
        if t in arrays:
            if v.nbytes >= F.BIG_PAYLOAD and not v.dtype.hasobject:
                found.append((id(v), v))
        elif t is dict:
            stack.extend(reversed(v.values()))
        elif t is list or t is tuple:
            if t is list and len(v) >= F.TABLE_MIN_ROWS and _tabular(v[0]):
                continue
            stack.extend(reversed(v))
        elif hasattr(t, "__pydantic_fields__"):
            stack.extend(reversed(_field_values(v)))
        elif t.__module__.startswith(f"{__package__}."):  # a view, a view's node
            from ._views import bulk_children

            stack.extend(reversed(bulk_children(v, found)))
    return found


def _tabular(first: Any) -> bool:
    return type(first) is dict or hasattr(type(first), "__pydantic_fields__")


def _field_values(v: Any) -> list[Any]:
    """The field values a model is stored as, when that is its fields
    themselves (no serializer); else none."""
    from .models import dumped, is_root_model

    cls: Any = type(v)
    if is_root_model(cls) or dumped(cls):
        return []
    d = v.__dict__
    return [d[name] for name in cls.model_fields]
