"""The typed root of an archive opened with ``model=`` is remembered
(``models.typed_root``): ``arch.root.users[i].created`` makes the root and
``users`` views from what the first access found, without a lookup. What
is remembered holds no archive: views are made over the archive asked."""
from __future__ import annotations

import datetime as dt
import gc
import weakref

import pytest
from pydantic import BaseModel

import bfast_archive as bfa


class Address(BaseModel):
    city: str


class User(BaseModel):
    id: int
    created: dt.datetime
    address: Address


class Team(BaseModel):
    name: str
    boss: User
    users: list[User]


class Names(BaseModel):
    name: str


def _user(i: int) -> User:
    return User(id=i, created=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i),
                address=Address(city=f"c{i}"))


TEAM = Team(name="t", boss=_user(-1), users=[_user(i) for i in range(20)])


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "team.bfa"
    bfa.dump(TEAM, p)
    return p


def test_repeated_root_reads_give_the_stored_values(path):
    with bfa.Archive.open(path, model=Team) as arch:
        for _ in range(3):
            assert [arch.root.users[i].created for i in range(20)] == [u.created for u in TEAM.users]
            assert arch.root.boss.address.city == "c-1" and arch.root.name == "t"


def test_a_remembered_root_view_refuses_reads_after_close(path):
    arch = bfa.Archive.open(path, model=Team)
    assert arch.root.users[0].id == 0
    root = arch.root
    arch.close()
    with pytest.raises(bfa.ArchiveError, match="closed"):
        root.users
    with pytest.raises(bfa.ArchiveError, match="closed"):
        arch.root


def test_an_archive_read_through_its_typed_root_is_freed_without_the_cycle_collector(path):
    arch = bfa.Archive.open(path, model=Team)
    assert arch.root.users[3].created == TEAM.users[3].created and arch.root.boss.id == -1
    ref = weakref.ref(arch)
    gc.disable()
    try:
        del arch
        assert ref() is None
    finally:
        gc.enable()


def test_two_archives_over_one_mapping_each_read_through_their_own_views(path):
    first = bfa.Archive.open(path, model=Team)
    second = bfa.Archive.open(path, model=Team)
    assert first.root.users[1].id == 1
    users = second.root.users
    first.close()
    assert users._view._arch is second and users[2].address.city == "c2"
    second.close()


def test_the_same_file_opened_with_another_model_gets_that_models_view(path):
    with bfa.Archive.open(path, model=Team) as arch, bfa.Archive.open(path, model=Names) as other:
        assert arch.root.users[0].id == 0
        assert type(other.root).__name__ == "ArchivedModel" and other.root._cls is Names
        assert other.root.name == "t"
        with pytest.raises(AttributeError):
            other.root.users


def test_views_made_from_the_memo_are_read_only_archived_models(path):
    with bfa.Archive.open(path, model=Team) as arch:
        arch.root.users[0]  # remembered from here on
        for view in (arch.root, arch.root.boss, arch.root.users[1], arch.root.users[2].address):
            assert type(view) is bfa.ArchivedModel
            for name in ("id", "name", "_view", "_cls", "_memo", "new_attribute"):
                with pytest.raises(AttributeError, match="read-only"):
                    setattr(view, name, 1)
        assert arch.root.users[1].id == 1 and arch.root.users[2].address.city == "c2"
        assert type(arch.root.users) is bfa.ArchivedModelList
