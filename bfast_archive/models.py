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

import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import json
import types
import typing
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Callable

import pydantic

from . import tables as _tables
from . import views as _views
from ._snapshot import closed
from .errors import BfastError, SchemaMismatchError, UnsupportedTypeError

BaseModel = pydantic.BaseModel


def is_model(value: Any) -> bool:
    return isinstance(value, BaseModel)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return f"{annotation.__module__}.{annotation.__qualname__}" \
            if annotation.__module__ != "builtins" else annotation.__qualname__
    return repr(annotation).replace("typing.", "")


@lru_cache(maxsize=None)
def schema_of(cls: type[BaseModel]) -> dict[str, Any]:
    """The schema the archive stores for ``cls``: its name, field names and
    field types, and a fingerprint of them."""
    fields = list(cls.model_fields.items())
    names = [name for name, _ in fields]
    type_names = [_type_name(info.annotation) for _, info in fields]
    model = f"{cls.__module__}.{cls.__qualname__}"
    digest = hashlib.sha256(json.dumps([model, names, type_names]).encode()).hexdigest()[:32]
    return {"model": model, "fields": names, "types": type_names, "fingerprint": digest}


def model_fields(value: BaseModel) -> dict[str, Any]:
    """What the archive stores for a model instance: the dict
    ``model_dump(mode="python", round_trip=True, by_alias=False)`` gives
    (serializers applied, computed fields left out, extras kept), taken
    straight from the field values, in field order, when the class has
    nothing that would change them (``dumped``). Cost: a dict of the fields;
    for a dumped class, pydantic's serialisation of the instance."""
    cls = type(value)
    if dumped(cls):
        out = value.model_dump(mode="python", round_trip=True, by_alias=False)
        if is_root_model(cls):
            return {"root": out}
        if not isinstance(out, dict):
            raise UnsupportedTypeError(
                f"the model serializer of {cls.__qualname__} gives a {type(out).__name__}, "
                f"not a dict of fields: such a model cannot be archived as a model", value)
        return out
    d = value.__dict__
    return {name: d[name] for name in cls.model_fields}


_SERIALIZERS = (pydantic.PlainSerializer, pydantic.WrapSerializer)


@lru_cache(maxsize=None)
def dumped(cls: type[BaseModel]) -> bool:
    """Is an instance stored as ``model_dump`` gives it rather than as its
    field values? Yes when something changes what ``model_dump(mode=
    "python", round_trip=True)`` returns: a field or model serializer, a
    ``PlainSerializer``/``WrapSerializer`` or ``Json`` anywhere in a field's
    type, an excluded field, or ``extra="allow"`` (the extras are kept)."""
    decorators = cls.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers \
            or cls.model_config.get("extra") == "allow":
        return True
    return any(info.exclude or _custom_serialization(_full_annotation(info))
               for info in cls.model_fields.values())


def _full_annotation(info: Any) -> Any:
    """A field's annotation with its constraints and markers (``Json``,
    ``Gt``, serializers), as pydantic validates it."""
    if not info.metadata:
        return info.annotation
    args = (info.annotation, *info.metadata)  # (mypy reads X[(a, *b)] as 3.11 syntax)
    return typing.Annotated[args]


def _custom_serialization(annotation: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if typing.get_origin(annotation) is typing.Annotated:
        for marker in annotation.__metadata__:
            if isinstance(marker, _SERIALIZERS) or marker is pydantic.Json \
                    or isinstance(marker, pydantic.Json):
                return True
    return any(_custom_serialization(a, depth + 1) for a in typing.get_args(annotation)
               if not isinstance(a, (str, int, float, bool, bytes)) and a is not None)


_SECRETS = tuple(t for t in (pydantic.SecretStr, pydantic.SecretBytes,
                             getattr(pydantic, "Secret", None)) if t is not None)


@lru_cache(maxsize=256)
def _type_adapter(t: type) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(t)


def stored_form(value: Any) -> Any:
    """A value of a type the format has no node for, inside a model, as the
    value its field type validates back from: a secret as its secret (the
    archive is not where secrets are hidden: mask with a serializer), a
    dataclass as pydantic's dict of it, a URL, IP address, path (and other
    types pydantic serialises) as pydantic's JSON form of it.
    UnsupportedTypeError if pydantic cannot serialise it either."""
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    if isinstance(value, _SECRETS):
        return value.get_secret_value()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _type_adapter(type(value)).dump_python(value, mode="python", round_trip=True,
                                                      by_alias=False)
    try:
        return to_jsonable_python(value, round_trip=True)
    except (PydanticSerializationError, TypeError, ValueError):
        t = type(value)
        raise UnsupportedTypeError(f"cannot archive a value of type {t.__module__}."
                                   f"{t.__qualname__} (pydantic cannot serialise it either)",
                                   value) from None


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


def _model_class(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
        else None


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) in (list, Sequence, typing.Sequence):
        args = typing.get_args(annotation)
        return _model_class(args[0]) if args else None
    return None


@lru_cache(maxsize=None)
def _converters(cls: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Per field: how a lazily read raw value becomes the annotated type."""
    out: dict[str, tuple[str, Any]] = {}
    for name, info in cls.model_fields.items():
        ann, _ = _strip_optional(info.annotation)
        sub = _model_class(ann)
        item = _list_item_model(ann)
        if _custom_serialization(_full_annotation(info)):  # stored as serialised (Json...)
            out[name] = ("adapt", None)
        elif sub is not None:
            out[name] = ("model", sub)
        elif item is not None:
            out[name] = ("models", item)
        elif isinstance(ann, type) and issubclass(ann, enum.Enum):
            out[name] = ("enum", ann)
        elif ann in _SIMPLE:
            out[name] = ("same", ann)  # a view checks the value's type is exactly this
        elif ann is Any:
            out[name] = ("same", None)
        elif _plain(ann):
            out[name] = ("plain", None)
        elif ann is bytes:
            out[name] = ("bytes", None)
        elif getattr(ann, "__module__", "") == "numpy" and getattr(ann, "__name__", "") == "ndarray":
            out[name] = ("same", None)
        else:
            out[name] = ("adapt", None)  # validated as the field (validate_field)
    return out


_CONTAINERS = (list, tuple, set, frozenset, dict)


def _plain(annotation: Any, depth: int = 0) -> bool:
    """Does a copy-out give exactly this type's values: a Literal of str,
    int or bool values, or a list/tuple/set/frozenset/dict (str or int
    keys) of such or of str, int, float, bool, dates and times, UUID,
    Decimal (each possibly Optional)? Typed views copy such a field out;
    trusted loads keep it as copied."""
    ann, _ = _strip_optional(annotation)
    if ann in _SIMPLE:
        return True
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Literal:
        return all(type(a) in (str, int, bool) for a in args)
    if depth > 8 or origin not in _CONTAINERS or not args:
        return False
    if origin is dict:
        return len(args) == 2 and args[0] in (str, int) and _plain(args[1], depth + 1)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _plain(args[0], depth + 1)
    return all(_plain(a, depth + 1) for a in args) and (origin is tuple or len(args) == 1)


def _to_plain(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    return value.to_python() if hasattr(value, "to_python") else value


def is_root_model(cls: type) -> bool:
    """A ``RootModel``: archived as its root value (what ``model_dump`` gives)."""
    return getattr(cls, "__pydantic_root_model__", False)


@lru_cache(maxsize=None)
def _nullable(cls: type[BaseModel]) -> frozenset[str]:
    """The fields of ``cls`` that take None (Optional, a union with None, Any)."""
    out: set[str] = set()
    for name, info in cls.model_fields.items():
        ann = info.annotation
        if ann in (Any, None, type(None), object) or type(None) in typing.get_args(ann):
            out.add(name)
    return frozenset(out)


def convert_field(cls: type[BaseModel], name: str, raw: Any, plan: Plan | None = None,
                  path: str = "", schema: Any = None,
                  converter: tuple[str, Any] | None = None) -> Any:
    """The raw lazy value of field ``name`` as its annotated type, checked
    against the type the archive recorded (``plan``) as a load checks it
    (``converter``: the field's ``_converters`` entry, if looked up)."""
    how, arg = converter or _converters(cls)[name]
    verdict, was = plan[name] if plan is not None else ("unknown", None)
    path = path or cls.__name__
    if verdict == "strict":
        return check_strict(cls, name, _to_plain(raw), was, f"{path}.{name}")
    if raw is None and name in _nullable(cls):
        return raw
    if raw is None:
        how = "adapt"  # validated: a null where the model does not take one
    if how == "model":
        return ArchivedModel(raw, arg, schema, f"{path}.{name}")
    if how == "models":
        return ArchivedModelList(raw, arg, schema, f"{path}.{name}[]")
    if verdict == "same" and how == "same" and (arg is None or type(raw) is arg):
        return raw  # what this very type wrote (anything else is validated below)
    try:
        if how == "enum":
            return _enum_member(arg, raw)
        if how == "bytes":
            return bytes(raw)
        return validate_field(cls, name, _to_plain(raw))
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        now = _type_name(cls.model_fields[name].annotation)
        raise SchemaMismatchError(f"field {path}.{name}: the archive holds "
                                  f"{was or 'unknown (not recorded)'}, the model expects {now} "
                                  f"({exc})") from None


def _copy(view: Any) -> tuple[Any, list[Any]]:
    """A view's data copied out, and the schemas the archive recorded."""
    if isinstance(view, (_views.ArchivedDict, _views.ArchivedList)):
        return _tables.copy_noting_schemas(view)
    return _to_plain(view) if not isinstance(view, _RootFields) else view.to_python(), []


def slot_schema(view: Any, key: Any) -> Any:
    """The stored schema of the model node at ``view[key]``, or None."""
    return _tables.model_schema_at(view, key)


class _ModelViewSlots:
    """The attributes of an ``ArchivedModel``, assignable here: ``_assembled``
    fills them with plain stores, then makes the object an ``ArchivedModel``
    (which refuses assignment); six ``object.__setattr__`` calls cost ~3x more."""

    __slots__ = ("_view", "_cls", "_schema", "_plan", "_path", "_memo")


class ArchivedModel(_ModelViewSlots):
    """A lazy, typed view of one archived model instance.

    ``view.name`` (or ``view["name"]``) reads one field and converts it to
    the field's annotated type, checked against the type the archive
    recorded exactly as ``load`` checks it: O(1) plus that field's
    conversion. Nested models come back as ``ArchivedModel``, lists of
    models as ``ArchivedModelList``. ``to_model()`` builds (and validates)
    the model. Read-only: assigning an attribute raises ``AttributeError``."""

    __slots__ = ()
    _view: Any
    _cls: type[BaseModel]
    _schema: Any
    _plan: Plan | None
    _path: str
    _memo: dict[str, Any] | None  # an archive's root: its model fields' views, remembered

    def __init__(self, view: Any, cls: type[BaseModel], schema: Any = None, path: str = ""
                 ) -> None:
        _object_setattr(self, "_memo", None)
        _object_setattr(self, "_schema", schema)
        # a view over a value that is not a mapping (a hostile or unrelated
        # file) is made all the same, as items of a list are: each read of it
        # raises SchemaMismatchError (an ArchiveError), see _fields()
        _object_setattr(self, "_view", view)
        _object_setattr(self, "_cls", cls)
        _object_setattr(self, "_plan", plan_of(cls, schema))
        _object_setattr(self, "_path", path or cls.__name__)

    def _fields(self) -> Any:
        """The mapping of field values this view reads."""
        view = self._view
        if getattr(self._cls, "__pydantic_root_model__", False):  # archived as its root value
            return _RootFields(view)
        if type(view) not in _FIELD_VIEWS and not isinstance(view, Mapping):
            raise SchemaMismatchError(f"the archive holds a {type(view).__name__} where the "
                                      f"model {self._cls.__name__} expects a mapping of its "
                                      f"fields")
        return view

    def __getattr__(self, name: str) -> Any:
        if name in _VIEW_SLOTS:  # unset (mid-construction): no field lookup
            raise AttributeError(name)
        memo = self._memo
        if memo is not None and name in memo:
            arch = self._view._arch
            if arch._snap is None:
                raise closed()
            return _from_memo(memo[name], arch)
        cls = self._cls
        converter = _converters(cls).get(name)
        if converter is None:
            if name in cls.model_computed_fields:  # computed from the fields, by the model
                return getattr(self.to_model(), name)
            raise AttributeError(f"{cls.__name__} has no field {name!r}")
        view = self._fields()
        try:
            raw = view[name]
        except KeyError:
            default = cls.model_fields[name].get_default(call_default_factory=True)
            if default is pydantic_core_undefined():
                raise SchemaMismatchError(
                    f"field {self._path}.{name}: the model requires it "
                    f"({_type_name(cls.model_fields[name].annotation)}, no default) and the "
                    f"archive has no value for it") from None
            return default
        how, arg = converter
        plan = self._plan
        if how == "same" and raw is not None and plan is not None and plan[name][0] == "same" \
                and (arg is None or type(raw) is arg):
            return raw  # what this very type wrote (convert_field's first case, inlined)
        if how != "model" and how != "models":
            return convert_field(cls, name, raw, plan, self._path, None, converter)
        out = convert_field(cls, name, raw, plan, self._path, _tables.model_schema_at(view, name),
                            converter)
        if memo is not None:
            found = _memo_of(out)
            if found is not None:
                memo[name] = found
        return out

    def __getitem__(self, name: str) -> Any:
        try:
            return self.__getattr__(name)
        except AttributeError as exc:
            raise KeyError(name) from exc

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("archived models are read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its plain view (by reference, ``_refs.py``), its model
        class (by name, as pickle names classes), schema and path."""
        return ArchivedModel, (self._view, self._cls, self._schema, self._path)

    def to_python(self) -> dict[str, Any]:
        out: dict[str, Any] = self._fields().to_python()
        return out

    def to_model(self) -> Any:
        """Build and validate this instance as the model class (a copy),
        checked as ``load`` checks it. Cost: the instance's subtree."""
        cls = self._cls
        data, stored = _copy(self._view if is_root_model(cls) else self._fields())
        return build(cls, data, self._schema, stored, path=self._path)

    def __dir__(self) -> list[str]:
        return list(self._cls.model_fields)

    def __repr__(self) -> str:
        """Like pydantic's repr: ``User(id=3, name='ada', ...)``, each value
        read (and converted) as an attribute read would, long ones cut."""
        cls = self._cls
        try:
            present = self._fields()
            shown = [f"{name}={_short(getattr(self, name))}" for name in cls.model_fields
                     if name in present]
        except BfastError as exc:
            return f"<ArchivedModel {cls.__name__}: {exc}>"
        return f"{cls.__name__}({', '.join(shown)})"


_VIEW_SLOTS = frozenset(_ModelViewSlots.__slots__)


def typed_root(arch: Any, s: Any, model: Any, value: Callable[[], Any],
               root_schema: Callable[[], Any]) -> Any:
    """``arch.root`` of an archive opened with ``model``: ``typed_view`` of
    the root ``value()``. A root view (and the views of its model fields,
    ``ArchivedModel._memo``) is remembered without its archive in the
    archive's parsed state (``s.tables``): made again from that, it costs
    no lookup. O(1)."""
    try:
        key = ("typed root", model)
        hit = s.tables.get(key)
    except TypeError:  # an unhashable model: nothing remembered
        return typed_view(value(), model, root_schema())
    if hit is not None:
        return _from_memo(hit, arch)
    view = typed_view(value(), model, root_schema())
    found = _memo_of(view)
    if found is not None:
        s.tables[key] = found
        if type(view) is ArchivedModel:
            _object_setattr(view, "_memo", found[-1])
    return view


def _memo_of(view: Any) -> tuple[Any, ...] | None:
    """What makes ``view`` (an ``ArchivedModel`` or ``ArchivedModelList``
    over an archived dict, list or table) again for an archive: its
    attributes without the archive; None for any other view."""
    kind = type(view)
    if kind is not ArchivedModel and kind is not ArchivedModelList:
        return None
    raw = view._view
    t = type(raw)
    if t is _views.ArchivedDict:
        args: tuple[Any, ...] = (raw._off, raw._n)
    elif t is _tables.ArchivedTable or t is _views.ArchivedList:
        args = (raw._off, raw._n, raw._tag)
    else:
        return None
    return (kind, t, args, view._cls, view._schema, view._plan, view._path,
            {} if kind is ArchivedModel else None)


def _from_memo(memo: tuple[Any, ...], arch: Any) -> Any:
    """The view ``_memo_of`` describes, over ``arch``."""
    kind, t, args, cls, schema, plan, path, fields = memo
    return _assembled(kind, t(arch, *args), cls, schema, plan, path, fields)


def _assembled(kind: type, view: Any, cls: type[BaseModel], schema: Any, plan: Plan | None,
               path: str, memo: dict[str, Any] | None = None) -> Any:
    """A ``kind`` view (ArchivedModel or ArchivedModelList) with these
    attributes, made without ``__init__`` (the plan is known already)."""
    model = kind is ArchivedModel
    out: Any = _new_view(_ModelViewSlots if model else kind)
    out._view = view
    out._cls = cls
    out._schema = schema
    out._plan = plan
    out._path = path
    if model:
        out._memo = memo
        out.__class__ = ArchivedModel  # the same slots: from here on read-only
    return out


class _RootFields(dict[str, Any]):
    """The fields of an archived ``RootModel``: its one field, ``root``."""

    def __init__(self, root: Any) -> None:
        super().__init__(root=root)

    def to_python(self) -> dict[str, Any]:
        return {"root": _to_plain(self["root"])}


_new_view = object.__new__
# the views a model's fields and a list of models are read through (checked
# by type first: an isinstance of an ABC costs more than the read)
_FIELD_VIEWS = frozenset({_views.ArchivedDict, _tables.ArchivedRow})
_SEQUENCE_VIEWS = frozenset({_views.ArchivedList, _tables.ArchivedTable})


class ArchivedModelList(Sequence[ArchivedModel]):
    """A lazy list of archived model instances: items are ``ArchivedModel``."""

    __slots__ = ("_view", "_cls", "_schema", "_plan", "_path")

    def __init__(self, view: Any, cls: type[BaseModel], schema: Any = None, path: str = ""
                 ) -> None:
        if type(view) not in _SEQUENCE_VIEWS and (
                not isinstance(view, Sequence) or isinstance(view, (str, bytes, memoryview))):
            raise SchemaMismatchError(f"the archive holds a {type(view).__name__} where a "
                                      f"list of {cls.__name__} is expected")
        self._view: Any = view  # an ArchivedList or ArchivedTable
        self._cls = cls
        if schema is None and len(view) and not isinstance(view, _tables.ArchivedTable):
            schema = slot_schema(view, 0)  # a list of model nodes: each names the schema
        self._schema = schema
        self._plan = plan_of(cls, schema)
        self._path = path or f"{cls.__name__}[]"

    def _item(self, value: Any) -> ArchivedModel:
        # __init__'s work, with this list's plan
        item: ArchivedModel = _assembled(ArchivedModel, value, self._cls, self._schema,
                                         self._plan, self._path)
        return item

    def __len__(self) -> int:
        return len(self._view)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._item(v) for v in self._view[index]]
        return self._item(self._view[index])

    def __iter__(self) -> Iterator[ArchivedModel]:
        for v in self._view:
            yield self._item(v)

    def column(self, name: str) -> Any:
        """One field of every row, of the types ``row.name`` gives: numeric
        fields the model keeps as stored (int, float, bool) as a zero-copy
        array from a table, the others as a list of converted values."""
        cls = self._cls
        if name not in cls.model_fields:
            raise AttributeError(f"{cls.__name__} has no field {name!r}")
        verdict = self._plan[name][0] if self._plan else "unknown"
        how, arg = _converters(cls)[name]
        if not isinstance(self._view, _tables.ArchivedTable) or verdict != "same" or \
                how not in ("same", "plain", "enum"):
            values = [getattr(row, name) for row in self]
            if how == "same" and arg in (int, float):  # numbers: an array, as a table gives
                array = _tables.numeric_array(values)
                if array is not None:
                    return array
            return values
        try:
            values = self._view.column(name)  # in bulk (zero-copy from a table)
        except TypeError as exc:  # an item not a mapping of fields
            raise SchemaMismatchError(f"items of this list have no field {name!r}: {exc}") \
                from None
        if how != "enum":
            return values
        values = values.tolist() if hasattr(values, "tolist") else values
        return [None if v is None else _enum_member(arg, v) for v in values]

    def to_python(self) -> list[Any]:
        out: list[Any] = self._view.to_python()
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as ``ArchivedModel`` is: its plain view and model class."""
        return ArchivedModelList, (self._view, self._cls, self._schema, self._path)

    def to_models(self) -> list[BaseModel]:
        """Build and validate every instance (copies), checked as ``load``
        checks them. Cost: the whole list."""
        data, stored = _copy(self._view)
        models: list[BaseModel] = build(types.GenericAlias(list, self._cls), data, self._schema,
                                        stored, path=self._path)  # (list[self._cls])
        return models

    def __repr__(self) -> str:
        return f"<ArchivedModelList {len(self)} {self._cls.__name__}>"


class ArchivedModelDict(Mapping[Any, ArchivedModel]):
    """A lazy dict of archived model instances (``model=dict[str, M]``):
    values are ``ArchivedModel``."""

    __slots__ = ("_view", "_cls")

    def __init__(self, view: Any, cls: type[BaseModel]) -> None:
        if not isinstance(view, Mapping):
            raise SchemaMismatchError(f"the archive holds a {type(view).__name__} where a "
                                      f"dict of {cls.__name__} is expected")
        self._view = view
        self._cls = cls

    def __getitem__(self, key: Any) -> ArchivedModel:
        value = self._view[key]
        return ArchivedModel(value, self._cls, slot_schema(self._view, key))

    def __len__(self) -> int:
        return len(self._view)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._view)

    def __reduce__(self) -> tuple[Any, ...]:
        return ArchivedModelDict, (self._view, self._cls)

    def __repr__(self) -> str:
        return f"<ArchivedModelDict {len(self)} {self._cls.__name__}>"


@lru_cache(maxsize=None)
def _container(model: Any) -> tuple[str, type[BaseModel]]:
    """``model`` as (kind, model class): ``one`` for a class, ``items`` for
    list/tuple/set/Sequence of one (``tuple[M, ...]``), ``values`` for a
    dict of one; TypeError for anything else. Remembered per model (a
    typed root view is made on every ``arch.root``)."""
    try:
        return _known_container(model)
    except TypeError:  # unhashable, or not a model: said by the uncached call
        return _find_container(model)


@lru_cache(maxsize=256)
def _known_container(model: Any) -> tuple[str, type[BaseModel]]:
    return _find_container(model)


def _find_container(model: Any) -> tuple[str, type[BaseModel]]:
    cls = _model_class(model)
    if cls is not None:
        return "one", cls
    origin, args = typing.get_origin(model), typing.get_args(model)
    if origin in (list, set, frozenset, Sequence) and len(args) == 1:
        cls = _model_class(args[0])
    elif origin is tuple and (len(args) == 1 or len(args) == 2 and args[1] is Ellipsis):
        cls = _model_class(args[0])
    elif origin in (dict, Mapping) and len(args) == 2 and args[0] in (str, int):
        cls = _model_class(args[1])
        if cls is not None:
            return "values", cls
    if cls is None:
        raise TypeError(f"model must be a pydantic model class, or a list, tuple, set or "
                        f"dict of one, not {model!r}")
    return "items", cls


def typed_view(value: Any, model: Any, root_schema: Any) -> Any:
    """The root of an archive opened with ``model=``: typed views."""
    kind, cls = _container(model)
    if kind == "values":
        return ArchivedModelDict(value, cls)
    if kind == "one" and getattr(cls, "__pydantic_root_model__", False):
        return ArchivedModel(value, cls)
    if type(value) in _FIELD_VIEWS or isinstance(value, Mapping):
        return ArchivedModel(value, cls, root_schema)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, memoryview)):
        return ArchivedModelList(value, cls, root_schema)
    return value


def trusted_classes(model: Any) -> dict[str, type[BaseModel]] | None:
    """Fingerprint -> class for a trusted load as ``model``, or None when
    some class it reaches must be validated."""
    _, cls = _container(model)
    classes = model_classes(cls)
    return classes if all(constructible(c) for c in classes.values()) else None


def trusted_result(model: Any, built: Any) -> tuple[Any] | None:
    """``(value,)``: the result of a trusted copy-out when it is what
    ``model`` asks for; None when it is not (it then validates)."""
    kind, cls = _container(model)
    if kind == "one":
        if type(built) is cls:
            return (built,)
        if type(built) is list and all(type(x) is cls for x in built):
            return (built,)  # an archive of a list of instances, loaded with model=M
        return None
    if kind == "values":
        ok = isinstance(built, dict) and all(type(x) is cls for x in built.values())
        return (built,) if ok else None
    if type(built) is list and all(type(x) is cls for x in built):
        origin = typing.get_origin(model)
        return (built if origin in (list, Sequence) else origin(built),)
    return None


def build(model: Any, data: Any, root_schema: Any, stored: list[Any], items_only: bool = False,
          path: str | None = None) -> Any:
    """Validate copied-out ``data`` as ``model`` (a class or container of
    one), every field checked against the types the archive recorded:
    ``root_schema`` is that of the class asked for (``items_only``: only if
    ``data`` holds several instances), the others are matched by name
    among ``stored``. ``path`` names the data in messages."""
    kind, cls = _container(model)
    many = kind != "one" or (isinstance(data, list) and not is_root_model(cls))
    if items_only and not many:
        root_schema = None
    by_name: dict[str, Any] = {}
    for schema in stored:
        if isinstance(schema, dict) and isinstance(schema.get("model"), str):
            by_name[schema["model"]] = schema
    plans: dict[type[BaseModel], Plan | None] = {}
    for c in model_classes(cls).values():
        plans[c] = field_plan(c, stored_key(by_name.get(_qualname(c))))
    if root_schema is not None:
        plans[cls] = field_plan(cls, stored_key(root_schema))
    todo = _classes_to_check(plans, [cls])
    items = (data.values() if kind == "values" and isinstance(data, Mapping) else data) \
        if many else [data]
    if todo and isinstance(items, (list, tuple, type({}.values()))):
        path = path or (f"{cls.__name__}[]" if many else cls.__name__)
        for item in items:
            _check_tree(cls, item, plans, path, todo)
    if not many:
        return validate(cls, data, plans, path)
    if kind == "values":
        if not isinstance(data, Mapping):
            raise SchemaMismatchError(f"the archive holds a {type(data).__name__} where a "
                                      f"dict of {cls.__name__} is expected")
        return {k: validate(cls, v, plans, path) for k, v in data.items()}
    if not isinstance(data, (list, tuple)):
        raise SchemaMismatchError(f"the archive holds a {type(data).__name__} where a "
                                  f"list of {cls.__name__} is expected")
    out = [validate(cls, d, plans, path or f"{cls.__name__}[]") for d in data]
    origin = typing.get_origin(model) if kind == "items" else list
    return out if origin in (list, Sequence) else origin(out)


def pydantic_core_undefined() -> Any:
    from pydantic_core import PydanticUndefined

    return PydanticUndefined


# -- building models ---------------------------------------------------------------

def _version() -> tuple[int, ...]:
    return tuple(int(p) for p in pydantic.VERSION.split(".")[:2] if p.isdigit())


#: pydantic 2.11+ validates by attribute name on request (``by_name=True``);
#: older versions get the data translated to the fields' validation aliases.
BY_NAME = _version() >= (2, 11)


def validate(cls: type[BaseModel], data: Any,
             plans: dict[type[BaseModel], Plan | None] | None = None,
             path: str | None = None) -> BaseModel:
    """``cls.model_validate(data)`` by field name (the archive stores field
    names, whatever the model's aliases), with fields the model dropped
    removed first, and a type change the data cannot satisfy reported by name."""
    if isinstance(data, dict):
        if cls.model_config.get("extra") == "forbid" and not is_root_model(cls):
            data = {k: v for k, v in data.items() if k in cls.model_fields}
    try:
        if BY_NAME:
            return cls.model_validate(data, by_name=True, by_alias=False)
        return cls.model_validate(to_aliases(cls, data))
    except pydantic.ValidationError as exc:
        raise _mismatch(cls, exc, plans, path) from exc


@lru_cache(maxsize=None)
def _adapter(cls: type[BaseModel], name: str) -> pydantic.TypeAdapter[Any]:
    """A TypeAdapter of field ``name`` (built on first use: about a millisecond)."""
    return pydantic.TypeAdapter(_full_annotation(cls.model_fields[name]))


def validate_field(cls: type[BaseModel], name: str, raw: Any, strict: bool | None = None) -> Any:
    """``raw`` validated as field ``name`` of ``cls`` (models inside it by
    field name), laxly or, with ``strict=True``, without any conversion."""
    adapter = _adapter(cls, name)
    if BY_NAME:
        return adapter.validate_python(raw, strict=strict, by_name=True, by_alias=False)
    return adapter.validate_python(_aliased_any(cls.model_fields[name].annotation, raw),
                                   strict=strict)


def _alias_key(info: Any, name: str) -> Any:
    """Where pydantic < 2.11 looks for field ``name``: its validation alias
    (the first of AliasChoices), a str or an AliasPath, or the name."""
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    if isinstance(alias, pydantic.AliasChoices):
        alias = alias.choices[0]
    return name if alias is None else alias


def to_aliases(cls: type[BaseModel], data: Any) -> Any:
    """``data`` (field values by name, nested models too) keyed the way
    ``cls`` validates without ``by_name``: for pydantic < 2.11."""
    if not isinstance(data, Mapping):
        return data
    fields = cls.model_fields
    out: dict[Any, Any] = {}
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


def _put_path(out: dict[Any, Any], path: list[Any], value: Any) -> None:
    """Store ``value`` at ``path`` (str keys, int indexes) inside ``out``."""
    node: Any = out
    for step, nxt in zip(path, path[1:]):
        child: dict[Any, Any] | list[Any] = {} if isinstance(nxt, str) else []
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


# -- stored types against the model's -----------------------------------------------

# field name -> (verdict, stored type text); see field_plan
Plan = dict[str, tuple[str, typing.Optional[str]]]


def stored_key(schema: Any) -> tuple[tuple[str, str], ...] | None:
    """(field, type text) pairs a stored schema records; None if it is not
    a schema (not written from a model, or damaged)."""
    if isinstance(schema, dict):
        fields, names = schema.get("fields"), schema.get("types")
        if isinstance(fields, list) and isinstance(names, list) and len(fields) == len(names) \
                and all(type(x) is str for x in fields + names):
            return tuple(zip(fields, names))
    return None


_PLANS: dict[tuple[type[BaseModel], int], tuple[Any, Plan | None]] = {}


def plan_of(cls: type[BaseModel], schema: Any) -> Plan | None:
    """``field_plan`` for a stored schema dict (the reader decodes each once
    per archive: remembered by identity, the dict kept alive with it)."""
    if schema is None:
        return None
    key = (cls, id(schema))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    plan = field_plan(cls, stored_key(schema))
    if len(_PLANS) >= 1024:
        _PLANS.clear()
    _PLANS[key] = (schema, plan)
    return plan


@lru_cache(maxsize=4096)
def field_plan(cls: type[BaseModel], stored: tuple[tuple[str, str], ...] | None) -> Plan | None:
    """How each field of ``cls`` reads values an archive stored with the
    field types ``stored`` records: ``same`` (the archive recorded this very
    type), ``widened`` (a change validation only widens: int -> float,
    X -> Optional[X] or a union holding X), ``strict`` (another type: a value
    must validate strictly, never be converted), ``missing`` (the archive
    has no such field). None when the archive recorded nothing."""
    if stored is None:
        return None
    was = dict(stored)
    plan: Plan = {}
    for name, info in cls.model_fields.items():
        old = was.get(name)
        if old is None:
            plan[name] = ("missing", None)
        elif old == _type_name(info.annotation):
            plan[name] = ("same", old)
        elif old in _accepted_texts(info.annotation):
            plan[name] = ("widened", old)
        else:
            plan[name] = ("strict", old)
    return plan


def _accepted_texts(annotation: Any) -> set[str]:
    """Type texts whose values ``annotation`` takes without conversion."""
    texts = {_type_name(annotation)}
    if annotation is float:
        texts.add("int")
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members: set[str] = set()
        for a in typing.get_args(annotation):
            if a is type(None):
                texts.add("NoneType")
            else:
                members |= _accepted_texts(a)
        texts |= members
        texts |= {form.format(t) for t in members
                  for form in ("Optional[{}]", "{} | None", "Union[{}, NoneType]")}
    return texts


def check_strict(cls: type[BaseModel], name: str, value: Any, was: str | None, path: str) -> Any:
    """``value`` validated strictly as field ``name``: the archive recorded
    another type (``was``), so nothing may be converted."""
    try:
        return validate_field(cls, name, value, strict=True)
    except (ValueError, TypeError):
        raise SchemaMismatchError(
            f"field {path}: the archive holds {was}, the model expects "
            f"{_type_name(cls.model_fields[name].annotation)} (an incompatible change: the "
            f"stored value {_short(value)} is not converted)") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@lru_cache(maxsize=None)
def _descents(cls: type[BaseModel]) -> tuple[tuple[str, str, type[BaseModel]], ...]:
    """The fields of ``cls`` that hold models: (name, how, class), how one
    of ``one``, ``items`` (a list, tuple or set of them), ``values`` (a dict's)."""
    out: list[tuple[str, str, type[BaseModel]]] = []
    for name, info in cls.model_fields.items():
        ann, _ = _strip_optional(info.annotation)
        sub = _model_class(ann)
        if sub is not None:
            out.append((name, "one", sub))
            continue
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if origin in (list, tuple, set, frozenset, Sequence) and args:
            sub = _model_class(_strip_optional(args[0])[0])
            if sub is not None:
                out.append((name, "items", sub))
        elif origin in (dict, Mapping) and len(args) == 2:
            sub = _model_class(_strip_optional(args[1])[0])
            if sub is not None:
                out.append((name, "values", sub))
    return tuple(out)


def _check_tree(cls: type[BaseModel], data: Any, plans: dict[type[BaseModel], Plan | None],
                path: str, todo: set[type[BaseModel]]) -> None:
    """Check strictly, in the copied-out ``data`` of a ``cls`` instance, the
    fields whose type changed (``plans``), descending into nested models;
    ``todo``: the classes with such fields or nesting one."""
    if not isinstance(data, Mapping):
        return
    plan = plans.get(cls)
    if plan:
        for name, (verdict, was) in plan.items():
            if verdict == "strict" and name in data:
                check_strict(cls, name, data[name], was, f"{path}.{name}")
    for name, how, sub in _descents(cls):
        value = data.get(name)
        if sub not in todo or value is None:
            continue
        if how == "one":
            _check_tree(sub, value, plans, f"{path}.{name}", todo)
        else:
            items = value.values() if how == "values" and isinstance(value, Mapping) else value
            if isinstance(items, (list, tuple, set, frozenset, type({}.values()))):
                for item in items:
                    _check_tree(sub, item, plans, f"{path}.{name}[]", todo)


def _classes_to_check(plans: dict[type[BaseModel], Plan | None], roots: list[type[BaseModel]]
                      ) -> set[type[BaseModel]]:
    """The classes under ``roots`` whose data must be walked: with a field
    checked strictly, or nesting such a class."""
    memo: dict[type[BaseModel], bool] = {}

    def needs(cls: type[BaseModel]) -> bool:
        if cls in memo:
            return memo[cls]
        memo[cls] = False  # recursive models: no cycle
        plan = plans.get(cls) or {}
        memo[cls] = any(v == "strict" for v, _ in plan.values()) or \
            any(needs(sub) for _, _, sub in _descents(cls))
        return memo[cls]

    for cls in roots:
        needs(cls)
    return {c for c, yes in memo.items() if yes}


def _qualname(cls: type[BaseModel]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _mismatch(cls: type[BaseModel], exc: pydantic.ValidationError,
              plans: dict[type[BaseModel], Plan | None] | None = None,
              path: str | None = None) -> BfastError:
    """A SchemaMismatchError for a failed validation: the innermost field
    of the first error, the type the archive recorded and the model's."""
    plans = plans or {}
    for err in exc.errors():
        where, owner, field = _describe(cls, err.get("loc") or (), path or cls.__name__)
        if owner is None:
            continue
        now = _type_name(owner.model_fields[field].annotation)
        plan = plans.get(owner) or {}
        verdict, was = plan.get(field, (None, None))
        if verdict == "missing" or err.get("type") == "missing":
            return SchemaMismatchError(
                f"field {where}: the model requires it ({now}, no default) and the archive "
                f"has no value for it")
        return SchemaMismatchError(
            f"field {where}: the archive holds {was or 'unknown (not recorded)'}, the model "
            f"expects {now} ({err.get('msg')})")
    return SchemaMismatchError(f"archive data does not validate as {cls.__name__}: {exc}")


def _describe(cls: type[BaseModel], loc: tuple[Any, ...], path: str
              ) -> tuple[str, type[BaseModel] | None, Any]:
    """Follow a pydantic error location through ``cls``'s annotations: the
    innermost field's path (``Team.users[].id``), its class and name."""
    owner: type[BaseModel] | None = None
    field = None
    cur: Any = cls
    i = 0
    while cur is not None and i < len(loc):
        name = loc[i]
        if is_root_model(cur) or name not in cur.model_fields:
            break
        owner, field = cur, name
        path += f".{name}"
        i += 1
        ann, cur = cur.model_fields[name].annotation, None
        while i <= len(loc):
            ann, _ = _strip_optional(ann)
            if _model_class(ann) is not None:
                cur = ann
                break
            origin, args = typing.get_origin(ann), typing.get_args(ann)
            if i < len(loc) and origin in (list, tuple, set, frozenset, Sequence) and args \
                    and isinstance(loc[i], int):
                path, ann, i = path + "[]", args[0], i + 1
            elif i < len(loc) and origin in (dict, Mapping) and len(args) == 2:
                path, ann, i = path + "[]", args[1], i + 1
            else:
                break
    return path, owner, field


def constructible(cls: type[BaseModel]) -> bool:
    """Can instances be built without validation from archived values?"""
    return not dumped(cls) and not is_root_model(cls) and all(
        how in ("same", "plain", "enum", "model", "models") for how, _ in _converters(cls).values())


_object_setattr = object.__setattr__


@lru_cache(maxsize=None)
def _plan(cls: type[BaseModel]) -> tuple[tuple[tuple[str, str, Any], ...], bool, frozenset[str]]:
    """How to build ``cls`` from trusted values: the fields that need a
    conversion, and whether the fast path (no private attributes, no
    post-init hook, not a root model, no extra="allow") applies."""
    conversions = tuple((name, how, arg) for name, (how, arg) in _converters(cls).items()
                        if how not in ("same", "plain"))
    fast = not (cls.__private_attributes__ or cls.__pydantic_post_init__
                or getattr(cls, "__pydantic_root_model__", False)
                or cls.model_config.get("extra") == "allow")  # its instances hold {} extra
    return conversions, fast, frozenset(cls.model_fields)


def _enum_member(enum_cls: type[enum.Enum], value: Any) -> enum.Enum:
    member = enum_cls._value2member_map_.get(value) if value.__hash__ is not None else None
    return member if member is not None else enum_cls(value)


def construct(cls: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """Build ``cls`` from trusted archived field values, without validation
    (what ``model_construct`` does, minus its per-call overhead). ``data`` is
    used as the instance's ``__dict__``."""
    if type(data) is not dict:
        raise SchemaMismatchError(f"the archive holds a {type(data).__name__} where the field "
                                  f"values of a {cls.__name__} are expected")
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
        if not all(type(k) is str for k in data):  # (the fast path's keys are the names)
            raise SchemaMismatchError(f"the archive holds a key that is not a field name "
                                      f"among the field values of a {cls.__name__}")
        return cls.model_construct(**data)
    obj = cls.__new__(cls)
    _object_setattr(obj, "__dict__", data)
    _object_setattr(obj, "__pydantic_fields_set__", set(names))
    _object_setattr(obj, "__pydantic_extra__", None)
    _object_setattr(obj, "__pydantic_private__", None)
    return obj


def _models_list(cls: type[BaseModel], items: Any) -> list[BaseModel]:
    """A list field of models: items already built (a table of ``cls``
    comes back as instances) are kept, the others (dicts) constructed."""
    if type(items) is list and all(issubclass(t, BaseModel) for t in set(map(type, items))):
        return items
    return [d if isinstance(d, BaseModel) else construct(cls, d) for d in items]


def construct_columns(cls: type[BaseModel], names: Sequence[str], columns: list[Any]
                      ) -> list[BaseModel]:
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
            if None in out or None in members:
                # None cells (a null, even where None is a member's value), or
                # values the map lacks: one by one
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


def _model_setters() -> tuple[Any, ...] | None:
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
def _rows_builder(cls: type[BaseModel], names: tuple[str, ...]
                  ) -> Callable[..., list[BaseModel]]:
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
    namespace: dict[str, Any] = {
        "new": cls.__new__, "cls": cls, "set_dict": _slot_setter("__dict__"), "zip": zip,
        "set_fields": _slot_setter("__pydantic_fields_set__"),
        "set_extra": _slot_setter("__pydantic_extra__"),
        "set_private": _slot_setter("__pydantic_private__"),
    }
    exec(compile(source, f"<bfast_archive rows builder for {cls.__qualname__}>", "exec"), namespace)
    built: Callable[..., list[BaseModel]] = namespace["build"]
    return built


def model_classes(cls: type[BaseModel], out: dict[str, type[BaseModel]] | None = None
                  ) -> dict[str, type[BaseModel]]:
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
