"""A SLOTS column's cells, and the items of lists, tuples and sets of 64 or
more, encoded in C (csrc/pyencode.c), the same bytes as the writer's Python
path.

The C takes None, bool, int, float and str cells itself, and the cells of
the exact types this module lists in the writer's ``cell_kinds`` dict:
datetime, date, UUID, Decimal, enum classes (members inside a model are
written as their value) and the model classes stored as their field values
(``models.dumped`` false, not a RootModel; listed once their schema node is
written, with its slot); and lists and tuples of such values, models and
containers excepted. A cell it cannot take is handed back: the writer
encodes it (so every error is the Python path's, with its path), this module
lists the types it met in it, and the C goes on after it.
"""
from __future__ import annotations

import datetime as _dt
import enum
from typing import TYPE_CHECKING, Any, cast

from . import _pytable
from ._native import lib

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .writer import _Writer

NATIVE = True  # False: every cell takes the Python path (the tests compare the two)

_SEED: dict[type, Any] = {_dt.datetime: lib.BFA_CELL_DATETIME, _dt.date: lib.BFA_CELL_DATE}
_ENUM_VALUE = enum.Enum.__dict__["value"]
_LEARN_DEPTH = 8  # how deep a handed-back cell is searched for types to list
_GIVE_UP = 64  # cells handed back before the ratio below is checked
_GIVE_UP_RATIO = 4  # ... then the C stops if it took fewer than this many per cell handed back


def encode(w: _Writer, cells: list[Any]) -> bytes | None:
    """The slots of ``cells``, their referents appended to ``w``'s segment
    as ``w.value`` would append them, cell by cell; None if the C path is
    off or unavailable. Cost: one C call per run of cells it takes, one
    ``w.value`` per cell it hands back."""
    if not NATIVE or type(cells) is not list:
        return None
    kinds = w.cell_kinds
    if kinds is None:
        kinds = w.cell_kinds = dict(_SEED)
    ctx = [0, 0, kinds, _dt.timezone, w.model_depth > 0, w.max_depth - len(w.active)]
    out: list[bytes] = []
    n, start, handed = len(cells), 0, 0
    while start < n:
        ctx[0], ctx[1] = start, w.base + len(w.seg)
        done = _pytable.encode_cells(cells, tuple(ctx))
        if done is None:  # (no C: only on the first call)
            return None
        blob, slots, stop = done
        w.seg += blob
        out.append(slots)
        if stop >= n:
            break
        x = cells[stop]
        out.append(w.value(x))
        _learn(w, kinds, x, 0)
        handed += 1
        start = stop + 1
        if handed >= _GIVE_UP and start < handed * _GIVE_UP_RATIO:
            value = w.value
            out += [value(y) for y in cells[start:]]
            break
    return b"".join(out)


def _learn(w: _Writer, kinds: dict[type, Any], x: Any, depth: int) -> None:
    """List in ``kinds`` the types of ``x`` (written just now by the Python
    path) and of the values inside it that the C can take."""
    t = type(x)
    if t in kinds or depth > _LEARN_DEPTH:
        return
    module = t.__module__
    if module == "uuid" and t.__qualname__ == "UUID":
        kinds[t] = lib.BFA_CELL_UUID
    elif module == "decimal" and t.__qualname__ == "Decimal":
        kinds[t] = lib.BFA_CELL_DECIMAL
    elif isinstance(x, enum.Enum):
        if _plain_enum(t) and x.value is x._value_:
            kinds[t] = lib.BFA_CELL_ENUM
            _learn(w, kinds, x._value_, depth + 1)
    elif t in w.schemas:  # a model class met before (its schema written)
        from .models import dumped, is_root_model

        if is_root_model(t) or dumped(cast("type[BaseModel]", t)):
            return
        names = tuple(t.model_fields)
        kinds[t] = (w.schemas[t], names)
        fields = x.__dict__
        for name in names:
            if name in fields:
                _learn(w, kinds, fields[name], depth + 1)
    elif t is list or t is tuple:
        for item in x[:8]:
            _learn(w, kinds, item, depth + 1)


def _plain_enum(t: type) -> bool:
    """Is ``member.value`` the member's ``_value_`` (enum's own property,
    not one a class defines)?"""
    for c in t.__mro__:
        if "value" in c.__dict__:
            return c.__dict__["value"] is _ENUM_VALUE
    return False
