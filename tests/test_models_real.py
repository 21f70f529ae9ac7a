"""Pydantic models as applications write them (issue 12): aliases,
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
