"""Pydantic models as real applications write them: aliases,
serializers, the field types pydantic can serialise, sets and enum keys,
container models, and the same type checks on every read path."""
import subprocess
import sys

import bfast_archive as bfa


def test_schema_mismatch_error_is_caught_without_importing_pydantic():
    code = ("import sys, bfast_archive as bfa, bfast_archive.errors as e; "
            "assert bfa.SchemaMismatchError is e.SchemaMismatchError; "
            "assert issubclass(e.SchemaMismatchError, bfa.ArchiveError); "
            "print('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_schema_mismatch_error_is_re_exported_from_models():
    from bfast_archive import errors, models

    assert models.SchemaMismatchError is errors.SchemaMismatchError is bfa.SchemaMismatchError


# -- aliases: the archive stores field names, values come back by name --------------------

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field  # noqa: E402
from pydantic.alias_generators import to_camel  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bfast_archive import models as _models  # noqa: E402


class Aliased(BaseModel):
    user_id: int = Field(alias="userId", default=0)
    name: str = Field(alias="fullName")


class ValidationAliased(BaseModel):
    user_id: int = Field(validation_alias="uid")
    other: int = Field(validation_alias=AliasPath("deep", 0), default=-1)
    choice: str = Field(validation_alias=AliasChoices("c1", "c2"))


class SerializationAliased(BaseModel):
    user_id: int = Field(serialization_alias="userId")


class Generated(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)
    user_id: int
    display_name: str = "x"


class ByNameToo(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    user_id: int


class AliasOnly(BaseModel):
    model_config = ConfigDict(validate_by_name=False, validate_by_alias=True)
    user_id: int = Field(alias="U")


class HoldsAliased(BaseModel):
    one: Aliased
    many: list[Aliased]
    by_key: dict[str, Generated]


_ALIASED = [
    Aliased(userId=42, fullName="Ada"),
    ValidationAliased(uid=7, deep=[9], c2="z"),
    SerializationAliased(user_id=5),
    Generated(userId=3, displayName="y"),
    ByNameToo(user_id=4),
    AliasOnly(U=8),
    HoldsAliased(one=Aliased(userId=1, fullName="a"),
                 many=[Aliased(userId=i, fullName=f"n{i}") for i in range(6)],
                 by_key={"k": Generated(userId=2)}),
]


@pytest.fixture(params=["by_name", "translated"])
def name_validation(request, monkeypatch):
    """pydantic >= 2.11 validates by name; older versions get the data
    translated to aliases: both ways are run."""
    if request.param == "translated":
        monkeypatch.setattr(_models, "BY_NAME", False)
    elif not _models.BY_NAME:
        pytest.skip("this pydantic cannot validate by name")
    return request.param


@pytest.mark.parametrize("value", _ALIASED, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("trusted", [False, True])
def test_aliased_fields_load_with_their_stored_values(value, trusted, name_validation):
    back = bfa.loads(bfa.dumps(value), model=type(value), trusted=trusted)
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize("value", _ALIASED, ids=lambda v: type(v).__name__)
def test_aliased_fields_read_by_name_from_a_typed_view(value, name_validation):
    view = bfa.Archive.from_buffer(bfa.dumps(value), model=type(value)).root
    for name in type(value).model_fields:
        got = getattr(view, name)
        expected = getattr(value, name)
        if isinstance(got, bfa.ArchivedModel):
            got = got.to_model()
        elif isinstance(got, bfa.ArchivedModelList):
            got = got.to_models()
        assert got == expected
    assert view.to_model() == value


def test_nested_aliased_models_come_back_through_views(name_validation):
    value = _ALIASED[-1]
    view = bfa.Archive.from_buffer(bfa.dumps(value), model=HoldsAliased).root
    assert view.many[4].user_id == 4 and view.many[4].to_model() == value.many[4]
    assert view.by_key == value.by_key


# -- field types pydantic can serialise come back as the same type --------------------------

import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import ipaddress  # noqa: E402
import pathlib  # noqa: E402
from typing import Annotated, Generic, Literal, Optional, TypeVar, Union  # noqa: E402

from pydantic import (AnyUrl, HttpUrl, Json, RootModel, Secret,  # noqa: E402
                      SecretBytes, SecretStr)
from typing_extensions import TypedDict  # noqa: E402

from tests.support.child import python_env  # noqa: E402
from tests.support.enum_models import Color, Level, Tag, Tagged  # noqa: E402


class Movie(TypedDict):
    title: str
    year: int


@dataclasses.dataclass
class Point:
    x: int
    when: dt.date


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    bark: str


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


class Tree(BaseModel):
    name: str
    children: list["Tree"] = []


class Address(BaseModel):
    city: str
    zip: str


Ints = RootModel[list[int]]


def _field_model(name, annotation):
    from pydantic import create_model

    return create_model(name, x=(annotation, ...))


_TYPES = [
    ("SecretStr", SecretStr, SecretStr("hunter2")),
    ("SecretBytes", SecretBytes, SecretBytes(b"\x00key")),
    ("Secret[int]", Secret[int], Secret[int](1234)),
    ("HttpUrl", HttpUrl, HttpUrl("https://example.com/a?b=1")),
    ("AnyUrl", AnyUrl, AnyUrl("ftp://user@host:21/x")),
    ("IPv4Address", ipaddress.IPv4Address, ipaddress.IPv4Address("10.1.2.3")),
    ("IPv6Address", ipaddress.IPv6Address, ipaddress.IPv6Address("::1")),
    ("IPv4Network", ipaddress.IPv4Network, ipaddress.IPv4Network("10.0.0.0/8")),
    ("IPv6Network", ipaddress.IPv6Network, ipaddress.IPv6Network("2001:db8::/32")),
    ("IPv4Interface", ipaddress.IPv4Interface, ipaddress.IPv4Interface("10.1.2.3/24")),
    ("IPv6Interface", ipaddress.IPv6Interface, ipaddress.IPv6Interface("::1/64")),
    ("Path", pathlib.Path, pathlib.Path("/tmp/a b/c.txt")),
    ("Enum", Color, Color.BLUE),
    ("IntEnum", Level, Level.HIGH),
    ("StrEnum", Tag, Tag.B),
    ("dict[Enum, int]", dict[Color, int], {Color.RED: 1, Color.BLUE: 2}),
    ("dict[IntEnum, str]", dict[Level, str], {Level.MID: "m", Level.LOW: "l"}),
    ("set[StrEnum]", set[Tag], {Tag.A, Tag.C}),
    ("frozenset[IntEnum]", frozenset[Level], frozenset({Level.HIGH, Level.LOW})),
    ("list[Enum]", list[Color], [Color.RED, Color.RED, Color.BLUE]),
    ("Literal", Literal["a", "b"], "b"),
    ("Annotated constraint", Annotated[int, Field(gt=0, le=100)], 42),
    ("Json", Json[list[int]], "[1, 2, 3]"),
    ("TypedDict", Movie, {"title": "Alien", "year": 1979}),
    ("dataclass", Point, Point(x=3, when=dt.date(2024, 2, 29))),
    ("discriminated union", Annotated[Union[Cat, Dog], Field(discriminator="kind")],
     Dog(bark="woof")),
    ("list of discriminated union", list[Annotated[Union[Cat, Dog], Field(discriminator="kind")]],
     [Cat(lives=9), Dog(bark="a"), Cat(lives=1), Dog(bark="b"), Cat(lives=3)]),
    ("generic model", Page[int], Page[int](items=[1, 2], total=2)),
    ("RootModel", Ints, Ints([4, 5])),
    ("nested model", Address, Address(city="Oslo", zip="0150")),
    ("Optional nested", Optional[Address], None),
    ("recursive model", Tree, Tree(name="r", children=[Tree(name="a", children=[Tree(name="b")])])),
    ("tuple", tuple[int, str, Color], (1, "x", Color.RED)),
    ("datetime aware", dt.datetime, dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)),
]


def _same(a, b):
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseModel):
        return a == b and all(_same(getattr(a, k), getattr(b, k)) for k in type(a).model_fields)
    if isinstance(a, dict):
        return a == b and all(_same(k1, k2) and _same(a[k1], b[k2])
                              for k1, k2 in zip(sorted(a, key=repr), sorted(b, key=repr)))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, (set, frozenset)):
        return a == b and {type(x) for x in a} == {type(x) for x in b}
    if dataclasses.is_dataclass(a):
        return a == b and all(_same(getattr(a, f.name), getattr(b, f.name))
                              for f in dataclasses.fields(a))
    if hasattr(a, "get_secret_value"):
        return _same(a.get_secret_value(), b.get_secret_value())
    return a == b


_CASES = [pytest.param(_field_model(f"F{i}", ann), value, id=name)
          for i, (name, ann, value) in enumerate(_TYPES)]


@pytest.mark.parametrize("cls, value", _CASES)
@pytest.mark.parametrize("trusted", [False, True])
def test_field_type_round_trips_as_the_same_type(cls, value, trusted):
    original = cls(x=value)
    back = bfa.loads(bfa.dumps(original), model=cls, trusted=trusted)
    assert _same(back, original), (back, original)


@pytest.mark.parametrize("cls, value", _CASES)
def test_field_type_reads_as_the_same_type_from_a_typed_view(cls, value):
    original = cls(x=value)
    got = bfa.Archive.from_buffer(bfa.dumps(original), model=cls).root.x
    if isinstance(got, bfa.ArchivedModel):
        got = got.to_model()
    elif isinstance(got, bfa.ArchivedModelList):
        got = got.to_models()
    assert _same(got, original.x), (got, original.x)


@pytest.mark.parametrize("cls, value", _CASES)
def test_field_type_round_trips_in_a_table_of_instances(cls, value):
    originals = [cls(x=value) for _ in range(6)]
    back = bfa.Archive.from_buffer(bfa.dumps(originals), model=cls).root.to_models()
    assert all(_same(b, o) for b, o in zip(back, originals)) and len(back) == 6


def test_a_type_pydantic_cannot_serialise_either_names_its_field_path():
    class Opaque:
        pass

    from pydantic import ConfigDict as CD

    class Holder(BaseModel):
        model_config = CD(arbitrary_types_allowed=True)
        inner: dict[str, Opaque]

    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps({"top": [Holder(inner={"k": Opaque()})]})
    assert info.value.path == "top[0]['inner']['k']"


def test_a_path_outside_a_model_is_still_unsupported():
    with pytest.raises(bfa.UnsupportedTypeError, match="cannot archive a value of type pathlib"):
        bfa.dumps({"p": pathlib.Path("/x")})


@pytest.mark.parametrize("trusted", [False, True])
def test_a_root_model_at_the_root_is_archived_as_its_root_value(trusted):
    value = Ints([3, 1, 2])
    raw = bfa.dumps(value)
    assert bfa.loads(raw) == [3, 1, 2]
    back = bfa.loads(raw, model=Ints, trusted=trusted)
    assert type(back) is Ints and back.root == [3, 1, 2]
    view = bfa.Archive.from_buffer(raw, model=Ints).root
    assert view.root == [3, 1, 2] and view.to_model() == value


# -- sets and enum keys ----------------------------------------------------------------------

class Pt(BaseModel, frozen=True):
    x: int
    y: int


class Shape(BaseModel):
    points: set[Pt]


_SEEDED = ("import sys, bfast_archive as bfa; "
           "from tests.support.enum_models import Tagged, Tag, Level, Color; "
           "v = Tagged(tags={Tag.A, Tag.B, Tag.C}, levels={Level.HIGH, Level.LOW, Level.MID}, "
           "counts={Color.RED: 1}, paths={'/a', '/b', '/c', '/dd'}); "
           "sys.stdout.write(bfa.dumps(v).hex())")


def test_sets_of_enums_in_a_model_give_the_same_bytes_under_any_hash_seed():
    outs = set()
    for seed in ("0", "1", "2", "12345"):
        env = {**python_env(), "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", _SEEDED], env=env,
                                capture_output=True, text=True, check=True).stdout)
    assert len(outs) == 1


def test_an_int_enum_set_is_ordered_as_the_set_of_its_values():
    value = Tagged(tags=set(), levels={Level.HIGH, Level.LOW, Level.MID}, counts={})
    stored = bfa.Archive.from_buffer(bfa.dumps(value)).root["levels"]
    assert list(bfa.Archive.from_buffer(bfa.dumps({"s": {1, 3, 20}})).root["s"]) == list(stored)


def test_a_set_of_frozen_models_is_readable_with_and_without_the_model():
    value = Shape(points={Pt(x=1, y=2), Pt(x=3, y=4)})
    raw = bfa.dumps(value)
    plain = bfa.loads(raw)["points"]
    assert sorted(p["x"] for p in plain) == [1, 3]
    for trusted in (False, True):
        assert bfa.loads(raw, model=Shape, trusted=trusted) == value
    assert bfa.Archive.from_buffer(raw, model=Shape).root.points == value.points


def test_enum_dict_keys_are_stored_as_their_values():
    value = Tagged(tags={Tag.A}, levels=set(), counts={Color.RED: 1, Color.BLUE: 2})
    raw = bfa.dumps(value)
    assert bfa.loads(raw)["counts"] == {"red": 1, "blue": 2}
    back = bfa.loads(raw, model=Tagged)
    assert back == value and all(type(k) is Color for k in back.counts)


# -- container models -------------------------------------------------------------------------

class Member(BaseModel):
    id: int
    name: str
    color: Color = Color.RED


def _members(n):
    return [Member(id=i, name=f"m{i}", color=Color.BLUE if i % 2 else Color.RED)
            for i in range(n)]


@pytest.mark.parametrize("n", [2, 10])
@pytest.mark.parametrize("trusted", [False, True])
@pytest.mark.parametrize("shape", ["list", "tuple", "dict"])
def test_container_of_models_loads_as_that_container(n, trusted, shape):
    members = _members(n)
    if shape == "dict":
        value, model = {m.name: m for m in members}, dict[str, Member]
    elif shape == "tuple":
        value, model = members, tuple[Member, ...]
    else:
        value, model = members, list[Member]
    raw = bfa.dumps(value)
    back = bfa.loads(raw, model=model, trusted=trusted)
    expected = tuple(members) if shape == "tuple" else value
    assert back == expected and type(back) is type(expected)
    root = bfa.Archive.from_buffer(raw, model=model).root
    first = root["m0"] if shape == "dict" else root[0]
    assert isinstance(first, bfa.ArchivedModel) and first.color is Color.RED
    assert first.to_model() == members[0]


def test_cache_get_with_a_container_model(tmp_path):
    cache = bfa.Cache(tmp_path / "c")
    cache["k"] = _members(6)
    got = cache.get("k", model=list[Member])
    assert isinstance(got, bfa.ArchivedModelList) and got[5].color is Color.BLUE
    assert got.to_models() == _members(6)
    assert cache.get("missing", model=list[Member]) is None


def test_a_model_that_is_not_a_class_or_container_of_one_is_a_type_error():
    with pytest.raises(TypeError, match="model must be"):
        bfa.loads(bfa.dumps([1]), model=list[int])


# -- serializers: the archive stores what model_dump(mode="python", round_trip=True) gives ----

from pydantic import (PlainSerializer, WrapSerializer, computed_field,  # noqa: E402
                      field_serializer, model_serializer)


class Masked(BaseModel):
    user: str
    password: str

    @field_serializer("password")
    def _mask(self, v: str) -> str:
        return "*" * len(v)


class WholeModel(BaseModel):
    a: int
    b: int = 0

    @model_serializer
    def _ser(self) -> dict:
        return {"a": self.a * 10, "b": self.b}


class Annotated2(BaseModel):
    plain: Annotated[int, PlainSerializer(lambda v: v + 1)]
    wrapped: Annotated[str, WrapSerializer(lambda v, h: h(v).upper())]


class Computed(BaseModel):
    first: str
    last: str

    @computed_field
    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"


_SERIALISED = [
    pytest.param(Masked(user="u", password="hunter2"), {"user": "u", "password": "*******"},
                 id="field_serializer"),
    pytest.param(WholeModel(a=2, b=3), {"a": 20, "b": 3}, id="model_serializer"),
    pytest.param(Annotated2(plain=1, wrapped="x"), {"plain": 2, "wrapped": "X"},
                 id="Plain/WrapSerializer"),
    pytest.param(Computed(first="a", last="b"), {"first": "a", "last": "b"}, id="computed_field"),
]


@pytest.mark.parametrize("value, stored", _SERIALISED)
def test_the_archive_stores_what_model_dump_gives(value, stored):
    assert stored == value.model_dump(mode="python", round_trip=True)
    assert bfa.loads(bfa.dumps(value)) == stored
    assert bfa.loads(bfa.dumps([value] * 5)) == [stored] * 5  # a table of instances too


@pytest.mark.parametrize("value, stored", _SERIALISED)
@pytest.mark.parametrize("trusted", [False, True])
def test_loading_validates_what_was_stored(value, stored, trusted):
    expected = type(value).model_validate(stored)
    assert bfa.loads(bfa.dumps(value), model=type(value), trusted=trusted) == expected
    assert bfa.Archive.from_buffer(bfa.dumps(value), model=type(value)).root.to_model() == expected


def test_a_computed_field_is_recomputed_on_load_and_from_a_view():
    value = Computed(first="ada", last="lovelace")
    assert bfa.loads(bfa.dumps(value), model=Computed).full == "ada lovelace"
    assert bfa.Archive.from_buffer(bfa.dumps(value), model=Computed).root.full == "ada lovelace"


def test_extra_allowed_fields_are_kept():
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        a: int

    value = Open(a=1, b="extra")
    assert bfa.loads(bfa.dumps(value), model=Open, trusted=True).model_extra == {"b": "extra"}


# -- types checked on every path ------------------------------------------------------------

class Item(BaseModel):
    id: int
    name: str
    color: Color = Color.RED


class ItemIdStr(BaseModel):
    id: str
    name: str


class ItemIdFloat(BaseModel):
    id: float
    name: str


class ItemNewRequired(BaseModel):
    id: int
    name: str
    owner: str


class ItemIdDate(BaseModel):
    id: dt.date
    name: str


class ItemOptional(BaseModel):
    name: str
    id: Optional[int] = None
    color: Optional[Color] = None
    added: str = "default"


def _items(n):
    return [Item(id=i, name=f"i{i}", color=Color.BLUE if i % 3 == 0 else Color.RED)
            for i in range(n)]


_PATHS = ["load", "trusted", "view", "to_model"]


def _read(raw, model, path, index=0, field="id"):
    if path in ("load", "trusted"):
        return getattr(bfa.loads(raw, model=list[model], trusted=path == "trusted")[index], field)
    row = bfa.Archive.from_buffer(raw, model=model).root[index]
    return getattr(row.to_model() if path == "to_model" else row, field)


@pytest.mark.parametrize("n", [2, 10], ids=["list", "table"])
@pytest.mark.parametrize("path", _PATHS)
def test_int_retyped_to_str_is_a_mismatch_on_every_path(n, path):
    raw = bfa.dumps(_items(n))
    with pytest.raises(bfa.SchemaMismatchError, match=r"ItemIdStr\[?\]?\.id.*holds int.*expects str"):
        _read(raw, ItemIdStr, path, 1)


@pytest.mark.parametrize("n", [2, 10], ids=["list", "table"])
@pytest.mark.parametrize("path", _PATHS)
def test_int_retyped_to_float_reads_as_float_on_every_path(n, path):
    got = _read(bfa.dumps(_items(n)), ItemIdFloat, path, 0)
    assert got == 0.0 and type(got) is float


@pytest.mark.parametrize("n", [2, 10], ids=["list", "table"])
@pytest.mark.parametrize("path", _PATHS)
def test_a_new_required_field_is_a_mismatch_on_every_path(n, path):
    with pytest.raises(bfa.SchemaMismatchError, match=r"owner.*requires"):
        _read(bfa.dumps(_items(n)), ItemNewRequired, path, 0, "owner")


@pytest.mark.parametrize("n", [2, 10], ids=["list", "table"])
@pytest.mark.parametrize("path", _PATHS)
def test_an_int_is_never_converted_to_a_date(n, path):
    with pytest.raises(bfa.SchemaMismatchError, match=r"\.id.*holds int.*expects datetime\.date"):
        _read(bfa.dumps(_items(n)), ItemIdDate, path, 1)


@pytest.mark.parametrize("n", [2, 10], ids=["list", "table"])
@pytest.mark.parametrize("path", _PATHS)
def test_compatible_changes_keep_working_on_every_path(n, path):
    raw = bfa.dumps(_items(n))
    assert _read(raw, ItemOptional, path, 0, "id") == 0
    assert _read(raw, ItemOptional, path, 0, "color") is Color.BLUE
    assert _read(raw, ItemOptional, path, 1, "added") == "default"
    assert _read(raw, ItemOptional, path, 1, "name") == "i1"


class TeamOld(BaseModel):
    name: str
    users: list[Item]


def _team_with_changed_items():
    """A Team archive whose Item.id was int, read with Item.id now a date:
    the class names match (the nested schema is found by name)."""
    raw = bfa.dumps(TeamOld(name="t", users=_items(6)))
    ns: dict = {}
    exec("from pydantic import BaseModel\nimport datetime as dt\n"
         "class Item(BaseModel):\n    id: dt.date\n    name: str\n"
         "class TeamOld(BaseModel):\n    name: str\n    users: list[Item]\n", ns)
    new_item, new_team = ns["Item"], ns["TeamOld"]
    for c in (new_item, new_team):
        c.__module__ = __name__
    return raw, new_team


@pytest.mark.parametrize("path", _PATHS)
def test_the_error_names_the_innermost_field_and_both_types(path):
    raw, team = _team_with_changed_items()
    with pytest.raises(bfa.SchemaMismatchError) as info:
        if path in ("load", "trusted"):
            bfa.loads(raw, model=team, trusted=path == "trusted")
        elif path == "view":
            bfa.Archive.from_buffer(raw, model=team).root.users[2].id
        else:
            bfa.Archive.from_buffer(raw, model=team).root.to_model()
    msg = str(info.value)
    assert "TeamOld.users[].id" in msg and "holds int" in msg and "datetime.date" in msg


def test_a_lax_validation_error_names_the_innermost_field():
    raw = bfa.dumps({"name": "t", "users": [{"id": "x", "name": "n"}] * 5})
    with pytest.raises(bfa.SchemaMismatchError, match=r"TeamOld\.users\[\]\.id"):
        bfa.loads(raw, model=TeamOld)


# -- column and repr ----------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 10], ids=["list", "table"])
def test_column_gives_the_types_a_row_gives(n):
    items = bfa.Archive.from_buffer(bfa.dumps(_items(n)), model=Item).root
    colors = items.column("color")
    assert list(colors) == [row.color for row in items]
    assert all(type(c) is Color for c in colors)
    assert list(items.column("id")) == list(range(n))


def test_a_numeric_column_of_a_table_stays_a_zero_copy_array():
    import numpy as np

    items = bfa.Archive.from_buffer(bfa.dumps(_items(10)), model=Item).root
    assert isinstance(items.column("id"), np.ndarray)


def test_column_of_a_retyped_field_converts_or_refuses_as_a_row_does():
    raw = bfa.dumps(_items(10))
    root = bfa.Archive.from_buffer(raw, model=ItemIdFloat).root
    floats = root.column("id")  # numbers: an array (as any numeric column), of the row's type
    assert floats.dtype == np.float64 and floats.tolist() == [float(i) for i in range(10)]
    assert type(root[3].id) is float and root[3].id == floats[3]
    with pytest.raises(bfa.SchemaMismatchError):
        bfa.Archive.from_buffer(raw, model=ItemIdStr).root.column("id")


def test_repr_shows_field_values_like_pydantic():
    item = Item(id=3, name="x" * 200, color=Color.BLUE)
    view = bfa.Archive.from_buffer(bfa.dumps(item), model=Item).root
    text = repr(view)
    assert text.startswith("Item(id=3, name='xxx") and "color=<Color.BLUE: 'blue'>" in text
    assert "..." in text and len(text) < 150


# -- trusted loads of the fields applications have ----------------------------------------------

from pydantic import model_validator  # noqa: E402

_VALIDATIONS: list = []


class Plainish(BaseModel):
    tags: list[str]
    kind: Literal["a", "b"]
    pairs: dict[str, tuple[int, ...]]
    seen: Optional[set[dt.date]] = None

    @model_validator(mode="after")
    def _count(self):
        _VALIDATIONS.append(1)
        return self


@pytest.mark.parametrize("n", [2, 10], ids=["list", "table"])
def test_containers_of_plain_values_and_literals_load_trusted_without_validation(n):
    values = [Plainish(tags=["x", str(i)], kind="a", pairs={"p": (i, 2)},
                       seen={dt.date(2024, 1, i + 1)}) for i in range(n)]
    raw = bfa.dumps(values)
    _VALIDATIONS.clear()
    back = bfa.loads(raw, model=list[Plainish], trusted=True)
    assert _VALIDATIONS == [] and all(_same(b, v) for b, v in zip(back, values))
    view = bfa.Archive.from_buffer(raw, model=Plainish).root[1]
    assert type(view.tags) is list and view.tags == ["x", "1"]
    assert view.pairs == {"p": (1, 2)} and type(view.pairs["p"]) is tuple


# -- property: what application models hold comes back the same on every path -------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class Mixed(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    ident: int = Field(alias="id")
    tags: set[Tag]
    counts: dict[Color, int]
    level: Optional[Level] = None
    home: pathlib.Path
    ip: ipaddress.IPv4Address
    secret: SecretStr
    notes: list[str]


_mixed = st.builds(
    Mixed,
    id=st.integers(-2**63, 2**63 - 1),
    tags=st.sets(st.sampled_from(Tag)),
    counts=st.dictionaries(st.sampled_from(Color), st.integers(-5, 5)),
    level=st.none() | st.sampled_from(Level),
    home=st.text(st.characters(blacklist_characters="\0/", blacklist_categories=("Cs",)),
                 min_size=1).map(lambda t: pathlib.Path("/") / t),
    ip=st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
    secret=st.text().map(SecretStr),
    notes=st.lists(st.text(), max_size=3),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_mixed, max_size=6))
def test_mixed_models_round_trip_on_every_path(values):
    raw = bfa.dumps(values)
    for trusted in (False, True):
        back = bfa.loads(raw, model=list[Mixed], trusted=trusted)
        assert len(back) == len(values) and all(map(_same, back, values))
    views = bfa.Archive.from_buffer(raw, model=list[Mixed]).root
    assert all(_same(v.to_model(), o) for v, o in zip(views, values))
    assert all(v.tags == o.tags and v.home == o.home for v, o in zip(views, values))


class Leveled(BaseModel):
    level: Optional[Level]
    tags: list[str]


def test_an_int_enum_column_with_none_cells_gives_members_and_none():
    values = [Leveled(level=None if i % 3 == 0 else Level.HIGH, tags=[str(i)]) for i in range(9)]
    rows = bfa.Archive.from_buffer(bfa.dumps(values), model=Leveled).root
    assert rows.column("level") == [v.level for v in values]
    assert all(type(x) is Level for x in rows.column("level") if x is not None)
    assert rows.column("tags") == [v.tags for v in values]


class SerializedByAlias(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)
    user_id: int = Field(alias="uid")
    note: str

    @field_serializer("note")
    def _upper(self, v: str) -> str:
        return v.upper()


@pytest.mark.parametrize("trusted", [False, True])
def test_a_serialised_model_is_stored_by_field_name_whatever_its_alias_settings(trusted):
    value = SerializedByAlias(uid=3, note="hi")
    raw = bfa.dumps(value)
    assert bfa.loads(raw) == {"user_id": 3, "note": "HI"}
    assert bfa.loads(raw, model=SerializedByAlias, trusted=trusted) == \
        SerializedByAlias(uid=3, note="HI")


def test_a_damaged_schema_is_ignored_not_trusted_or_crashed_on():
    from bfast_archive import models

    assert models.stored_key({"fields": [["x"]], "types": ["int"]}) is None
    assert models.stored_key({"fields": ["id"], "types": [1]}) is None
    assert models.stored_key({"fields": ["id"], "types": ["int"]}) == (("id", "int"),)
    assert models.stored_key("not a schema") is None


def test_a_view_checks_values_as_load_does_when_the_archive_recorded_no_types():
    raw = bfa.dumps({"id": "7", "name": None})  # plain data, opened with a model
    view = bfa.Archive.from_buffer(raw, model=Item).root
    assert view.id == 7 and type(view.id) is int  # load converts it too
    with pytest.raises(bfa.SchemaMismatchError, match=r"Item\.name"):
        view.name
    with pytest.raises(bfa.SchemaMismatchError, match=r"Item\.name"):
        bfa.loads(raw, model=Item)
