"""Pydantic models in archives: schemas, typed lazy views, rebuilding models.

A model instance is archived as a MODEL node: its schema (stored once per
class and archive) and a body, the dict of its field values; a list of
instances of one class is one MODEL node whose body is a record table.
Readers without the model see plain dicts and lists. ``Archive.open(path,
model=M)`` wraps values in ``ArchivedModel`` views whose attributes convert
exactly the field read to its annotated type; ``load(path, model=M)``
validates, or with ``trusted=True`` and a matching fingerprint builds the
models directly. Imported only when a model is written or asked for.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import enum
import hashlib
import json
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import pydantic

from .errors import ArchiveError, BfastError, SchemaMismatchError

BaseModel = pydantic.BaseModel


def is_model(value: Any) -> bool:
    return isinstance(value, BaseModel)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return f"{annotation.__module__}.{annotation.__qualname__}" \
            if annotation.__module__ != "builtins" else annotation.__qualname__
    return repr(annotation).replace("typing.", "")


@lru_cache(maxsize=None)
def schema_of(cls: type) -> dict:
    """The schema the archive stores for ``cls``: its name, field names and
    field types, and a fingerprint of them."""
    fields = list(cls.model_fields.items())
    names = [name for name, _ in fields]
    type_names = [_type_name(info.annotation) for _, info in fields]
    model = f"{cls.__module__}.{cls.__qualname__}"
    digest = hashlib.sha256(json.dumps([model, names, type_names]).encode()).hexdigest()[:32]
    return {"model": model, "fields": names, "types": type_names, "fingerprint": digest}


def model_fields(value: Any) -> dict:
    """The field values of a model instance, in field order."""
    cls = type(value)
    d = value.__dict__
    return {name: d[name] for name in cls.model_fields}


# -- typed reading ---------------------------------------------------------------

_SIMPLE = (str, int, float, bool, type(None), _dt.datetime, _dt.date, _dt.time, _dt.timedelta,
           uuid.UUID, decimal.Decimal, complex)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _model_class(annotation: Any) -> type | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
        else None


def _list_item_model(annotation: Any) -> type | None:
    if typing.get_origin(annotation) in (list, Sequence, typing.Sequence):
        args = typing.get_args(annotation)
        return _model_class(args[0]) if args else None
    return None


@lru_cache(maxsize=None)
def _converters(cls: type) -> dict:
    """Per field: how a lazily read raw value becomes the annotated type."""
    out = {}
    for name, info in cls.model_fields.items():
        ann, _ = _strip_optional(info.annotation)
        sub = _model_class(ann)
        item = _list_item_model(ann)
        if sub is not None:
            out[name] = ("model", sub)
        elif item is not None:
            out[name] = ("models", item)
        elif isinstance(ann, type) and issubclass(ann, enum.Enum):
            out[name] = ("enum", ann)
        elif ann in _SIMPLE or ann is Any:
            out[name] = ("same", None)
        elif ann is bytes:
            out[name] = ("bytes", None)
        elif getattr(ann, "__module__", "") == "numpy" and getattr(ann, "__name__", "") == "ndarray":
            out[name] = ("same", None)
        else:
            out[name] = ("adapt", pydantic.TypeAdapter(info.annotation))
    return out


def _to_plain(value: Any) -> Any:
    return value.to_python() if hasattr(value, "to_python") else value


def convert_field(cls: type, name: str, raw: Any) -> Any:
    """The raw lazy value of field ``name`` as its annotated type."""
    how, arg = _converters(cls)[name]
    if raw is None or how == "same":
        return raw
    if how == "model":
        return ArchivedModel(raw, arg)
    if how == "models":
        return ArchivedModelList(raw, arg)
    try:
        if how == "enum":
            return _enum_member(arg, raw)
        if how == "bytes":
            return bytes(raw)
        return validate_as(arg, _to_plain(raw))
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        now = _type_name(cls.model_fields[name].annotation)
        was = _STORED_TYPES.get(cls, {}).get(name, "unknown (not recorded)")
        raise SchemaMismatchError(f"field {cls.__name__}.{name}: the archive holds {was}, "
                                  f"the model expects {now} ({exc})") from None


class ArchivedModel:
    """A lazy, typed view of one archived model instance.

    ``view.name`` (or ``view["name"]``) reads one field and converts it to
    the field's annotated type: O(1) plus that field's conversion. Nested
    models come back as ``ArchivedModel``, lists of models as
    ``ArchivedModelList``. ``to_model()`` builds (and validates) the model."""

    __slots__ = ("_view", "_cls")

    def __init__(self, view: Any, cls: type) -> None:
        # a view over a value that is not a mapping (a hostile or unrelated
        # file) is made all the same, as items of a list are: each read of it
        # raises SchemaMismatchError (an ArchiveError), see _fields()
        object.__setattr__(self, "_view", view)
        object.__setattr__(self, "_cls", cls)

    def _fields(self) -> Any:
        """The mapping of field values this view reads."""
        view = self._view
        if not isinstance(view, Mapping):
            raise SchemaMismatchError(f"the archive holds a {type(view).__name__} where the "
                                      f"model {self._cls.__name__} expects a mapping of its "
                                      f"fields")
        return view

    def __getattr__(self, name: str) -> Any:
        if name in ArchivedModel.__slots__:  # unset (mid-construction): no field lookup
            raise AttributeError(name)
        cls = self._cls
        if name not in _converters(cls):
            raise AttributeError(f"{cls.__name__} has no field {name!r}")
        view = self._fields()
        try:
            raw = view[name]
        except KeyError:
            default = cls.model_fields[name].get_default(call_default_factory=True)
            if default is pydantic_core_undefined():
                raise AttributeError(f"the archive has no value for {cls.__name__}.{name} "
                                     f"and the field has no default") from None
            return default
        return convert_field(cls, name, raw)

    def __getitem__(self, name: str) -> Any:
        try:
            return self.__getattr__(name)
        except AttributeError as exc:
            raise KeyError(name) from exc

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("archived models are read-only")

    def to_python(self) -> dict:
        return self._fields().to_python()

    def to_model(self) -> Any:
        """Build and validate this instance as the model class (a copy)."""
        return validate(self._cls, self._fields().to_python())

    def __dir__(self) -> list:
        return list(self._cls.model_fields)

    def __repr__(self) -> str:
        return f"<ArchivedModel {self._cls.__name__}>"


class ArchivedModelList(Sequence):
    """A lazy list of archived model instances: items are ``ArchivedModel``."""

    __slots__ = ("_view", "_cls")

    def __init__(self, view: Any, cls: type) -> None:
        if not isinstance(view, Sequence) or isinstance(view, (str, bytes, memoryview)):
            raise SchemaMismatchError(f"the archive holds a {type(view).__name__} where a "
                                      f"list of {cls.__name__} is expected")
        self._view = view
        self._cls = cls

    def __len__(self) -> int:
        return len(self._view)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [ArchivedModel(v, self._cls) for v in self._view[index]]
        return ArchivedModel(self._view[index], self._cls)

    def __iter__(self):
        cls = self._cls
        for v in self._view:
            yield ArchivedModel(v, cls)

    def column(self, name: str) -> Any:
        """One field of every row, as a zero-copy array where it is numeric."""
        if hasattr(self._view, "column"):
            return self._view.column(name)
        try:  # a short list is not a table: the field of each item, as a list
            return [item[name] for item in self._view]
        except ArchiveError:
            raise
        except (KeyError, TypeError, IndexError, ValueError) as exc:  # an item not a mapping
            raise SchemaMismatchError(f"items of this list have no field {name!r}: {exc}") \
                from None

    def to_python(self) -> list:
        return self._view.to_python()

    def to_models(self) -> list:
        return [validate(self._cls, d) for d in self._view.to_python()]

    def __repr__(self) -> str:
        return f"<ArchivedModelList {len(self)} {self._cls.__name__}>"


def pydantic_core_undefined() -> Any:
    from pydantic_core import PydanticUndefined

    return PydanticUndefined


# -- building models ---------------------------------------------------------------

def _version() -> tuple:
    return tuple(int(p) for p in pydantic.VERSION.split(".")[:2] if p.isdigit())


#: pydantic 2.11+ validates by attribute name on request (``by_name=True``);
#: older versions get the data translated to the fields' validation aliases.
BY_NAME = _version() >= (2, 11)


def validate(cls: type, data: Any) -> Any:
    """``cls.model_validate(data)`` by field name (the archive stores field
    names, whatever the model's aliases), with fields the model dropped
    removed first, and a type change the data cannot satisfy reported by name."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k in cls.model_fields} \
            if cls.model_config.get("extra") == "forbid" else data
    try:
        if BY_NAME:
            return cls.model_validate(data, by_name=True, by_alias=False)
        return cls.model_validate(to_aliases(cls, data))
    except pydantic.ValidationError as exc:
        raise _mismatch(cls, exc) from exc


def validate_as(adapter: Any, raw: Any, strict: bool | None = None) -> Any:
    """``adapter.validate_python(raw)`` by field name for the models inside."""
    if BY_NAME:
        return adapter.validate_python(raw, strict=strict, by_name=True, by_alias=False)
    return adapter.validate_python(_aliased_any(adapter_type(adapter), raw), strict=strict)


def adapter_type(adapter: Any) -> Any:
    return getattr(adapter, "_type", None)


def _alias_key(info: Any, name: str) -> Any:
    """Where pydantic < 2.11 looks for field ``name``: its validation alias
    (the first of AliasChoices), a str or an AliasPath, or the name."""
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    if isinstance(alias, pydantic.AliasChoices):
        alias = alias.choices[0]
    return name if alias is None else alias


def to_aliases(cls: type, data: Any) -> Any:
    """``data`` (field values by name, nested models too) keyed the way
    ``cls`` validates without ``by_name``: for pydantic < 2.11."""
    if not isinstance(data, Mapping):
        return data
    fields = cls.model_fields
    out: dict = {}
    for key, value in data.items():
        info = fields.get(key)
        if info is None:
            out.setdefault(key, value)
            continue
        value = _aliased_any(info.annotation, value)
        where = _alias_key(info, key)
        if isinstance(where, pydantic.AliasPath):
            _put_path(out, where.path, value)
        else:
            out[where] = value
    return out


def _put_path(out: dict, path: list, value: Any) -> None:
    """Store ``value`` at ``path`` (str keys, int indexes) inside ``out``."""
    node: Any = out
    for step, nxt in zip(path, path[1:]):
        child = {} if isinstance(nxt, str) else []
        if isinstance(node, dict):
            node = node.setdefault(step, child)
        else:
            node.extend([None] * (step + 1 - len(node)))
            node[step] = node[step] if node[step] is not None else child
            node = node[step]
    last = path[-1]
    if isinstance(node, dict):
        node[last] = value
    else:
        node.extend([None] * (last + 1 - len(node)))
        node[last] = value


def _aliased_any(annotation: Any, value: Any) -> Any:
    """``to_aliases`` through models, lists/tuples/sets of them and dict values."""
    ann, _ = _strip_optional(annotation)
    sub = _model_class(ann)
    if sub is not None:
        return to_aliases(sub, value)
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (list, tuple, set, frozenset, Sequence) and args and \
            isinstance(value, (list, tuple)):
        return [_aliased_any(args[0], v) for v in value]
    if origin in (dict, Mapping) and len(args) == 2 and isinstance(value, Mapping):
        return {k: _aliased_any(args[1], v) for k, v in value.items()}
    return value


_STORED_TYPES: dict[type, dict] = {}


def _mismatch(cls: type, exc: pydantic.ValidationError) -> BfastError:
    stored = _STORED_TYPES.get(cls, {})
    for err in exc.errors():
        loc = err.get("loc") or ()
        if loc and loc[0] in cls.model_fields:
            field = loc[0]
            now = _type_name(cls.model_fields[field].annotation)
            was = stored.get(field, "unknown (not recorded)")
            return SchemaMismatchError(
                f"field {cls.__name__}.{field}: the archive holds {was}, the model expects "
                f"{now} ({err.get('msg')})")
    return SchemaMismatchError(f"archive data does not validate as {cls.__name__}: {exc}")


def remember_stored_schema(cls: type, schema: dict) -> None:
    """Note the field types an archive recorded for ``cls`` (for messages)."""
    if isinstance(schema, dict):
        fields, typenames = schema.get("fields"), schema.get("types")
        if isinstance(fields, list) and isinstance(typenames, list):
            _STORED_TYPES[cls] = dict(zip(fields, typenames))


def check_compatible(cls: type, schema: Any) -> None:
    """Raise SchemaMismatchError for a field whose type changed between the
    archive's schema and ``cls`` in a way that cannot validate. Added fields
    (with defaults), dropped fields and reordering are fine."""
    remember_stored_schema(cls, schema)


def constructible(cls: type) -> bool:
    """Can instances be built without validation from archived values?"""
    return all(how in ("same", "enum", "model", "models") for how, _ in _converters(cls).values())


_object_setattr = object.__setattr__


@lru_cache(maxsize=None)
def _plan(cls: type) -> tuple:
    """How to build ``cls`` from trusted values: the fields that need a
    conversion, and whether the fast path (no private attributes, no
    post-init hook, not a root model, no extra="allow") applies."""
    conversions = tuple((name, how, arg) for name, (how, arg) in _converters(cls).items()
                        if how != "same")
    fast = not (cls.__private_attributes__ or cls.__pydantic_post_init__
                or getattr(cls, "__pydantic_root_model__", False)
                or cls.model_config.get("extra") == "allow")  # its instances hold {} extra
    return conversions, fast, frozenset(cls.model_fields)


def _enum_member(enum_cls: type, value: Any) -> Any:
    member = enum_cls._value2member_map_.get(value) if value.__hash__ is not None else None
    return member if member is not None else enum_cls(value)


def construct(cls: type, data: dict) -> Any:
    """Build ``cls`` from trusted archived field values, without validation
    (what ``model_construct`` does, minus its per-call overhead). ``data`` is
    used as the instance's ``__dict__``."""
    conversions, fast, names = _plan(cls)
    for name, how, arg in conversions:
        v = data.get(name)
        if v is None:
            continue
        if how == "enum":
            data[name] = _enum_member(arg, v)
        elif how == "model":
            if not isinstance(v, BaseModel):
                data[name] = construct(arg, v)
        elif how == "models":
            data[name] = _models_list(arg, v)
    if not fast or data.keys() != names or len(data) != len(names):
        return cls.model_construct(**data)
    obj = cls.__new__(cls)
    _object_setattr(obj, "__dict__", data)
    _object_setattr(obj, "__pydantic_fields_set__", set(names))
    _object_setattr(obj, "__pydantic_extra__", None)
    _object_setattr(obj, "__pydantic_private__", None)
    return obj


def _models_list(cls: type, items: Any) -> list:
    """A list field of models: items already built (a table of ``cls``
    comes back as instances) are kept, the others (dicts) constructed."""
    if type(items) is list and all(issubclass(t, BaseModel) for t in set(map(type, items))):
        return items
    return [d if isinstance(d, BaseModel) else construct(cls, d) for d in items]


def construct_columns(cls: type, names: list, columns: list) -> list:
    """Instances of ``cls`` from a record table's columns, built in bulk:
    each conversion runs once per column, then one call per row of a
    builder made for the class (see ``_rows_builder``)."""
    conversions, fast, field_names = _plan(cls)
    if not fast or not names or set(names) != field_names or len(names) != len(field_names):
        return [construct(cls, dict(zip(names, row))) for row in zip(*columns)]
    index = {name: i for i, name in enumerate(names)}
    columns = list(columns)
    for name, how, arg in conversions:
        i = index[name]
        col = columns[i]
        if how == "enum":
            members = arg._value2member_map_
            try:
                out = list(map(members.get, col))
            except TypeError:  # an unhashable value
                out = [None]
            if None in out:  # None cells, or values the map lacks: one by one
                out = [None if v is None else _enum_member(arg, v) for v in col]
            columns[i] = out
        elif how == "model":
            columns[i] = [v if v is None or isinstance(v, BaseModel) else construct(arg, v)
                          for v in col]
        elif how == "models":
            columns[i] = [v if v is None else _models_list(arg, v) for v in col]
    # one fields set shared by the rows of this load: every field is set, so
    # pydantic's adding to it (on assignment) is a no-op
    names = tuple(names)
    setters = _model_setters()
    if setters is not None:
        from ._pytable import model_rows

        rows = model_rows(cls.__new__, (cls,), setters, set(names), names,
                          [c if type(c) is list else list(c) for c in columns])
        if rows is not None:
            return rows
    return _rows_builder(cls, names)(set(names), *columns)


_SETTERS: Any = None


def _model_setters() -> tuple | None:
    """BaseModel's descriptors of ``__dict__`` and of its three slots, for
    the C row builder (csrc/pytable.c); None if one is not a data descriptor."""
    global _SETTERS
    if _SETTERS is None:
        found = tuple(BaseModel.__dict__.get(name) for name in (
            "__dict__", "__pydantic_fields_set__", "__pydantic_extra__",
            "__pydantic_private__"))
        _SETTERS = found if all(hasattr(d, "__set__") for d in found) else False
    return _SETTERS or None


def _slot_setter(name: str) -> Any:
    """The fastest way to set BaseModel's slot ``name`` on an instance."""
    descriptor = BaseModel.__dict__.get(name)
    if descriptor is not None and hasattr(descriptor, "__set__"):
        return descriptor.__set__
    return lambda obj, value: _object_setattr(obj, name, value)


@lru_cache(maxsize=None)
def _rows_builder(cls: type, names: tuple) -> Any:
    """A function of ``fields_set`` and the columns of a table (in ``names``
    order) that builds one instance of ``cls`` per row the way
    ``model_construct`` does with every field given: ``__dict__`` the fields
    in that order, every field set, no extra, no private values. Generated
    per class so that a row's dict is one display and the loop runs without
    a Python call per row. ``names`` are the model's field names
    (``construct_columns`` checks), written as string literals (repr)."""
    values = ", ".join(f"v{i}" for i in range(len(names)))
    columns = ", ".join(f"c{i}" for i in range(len(names)))
    items = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    source = (f"def build(fields_set, {columns}):\n"
              f"    out = []\n"
              f"    append = out.append\n"
              f"    for {values}, in zip({columns}):\n"
              f"        obj = new(cls)\n"
              f"        set_dict(obj, {{{items}}})\n"
              f"        set_fields(obj, fields_set)\n"
              f"        set_extra(obj, None)\n"
              f"        set_private(obj, None)\n"
              f"        append(obj)\n"
              f"    return out\n")
    namespace = {
        "new": cls.__new__, "cls": cls, "set_dict": _slot_setter("__dict__"), "zip": zip,
        "set_fields": _slot_setter("__pydantic_fields_set__"),
        "set_extra": _slot_setter("__pydantic_extra__"),
        "set_private": _slot_setter("__pydantic_private__"),
    }
    exec(compile(source, f"<bfast_archive rows builder for {cls.__qualname__}>", "exec"), namespace)
    return namespace["build"]


def model_classes(cls: type, out: dict | None = None) -> dict:
    """Fingerprint -> class for ``cls`` and every model class its fields name."""
    out = {} if out is None else out
    fp = schema_of(cls)["fingerprint"]
    if fp in out:
        return out
    out[fp] = cls
    for how, arg in _converters(cls).values():
        if how in ("model", "models"):
            model_classes(arg, out)
    return out
