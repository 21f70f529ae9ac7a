"""Archives and views pickle by reference (path, file identity, open options,
coordinates): they reopen in another process, and a changed file is refused."""
import multiprocessing
import os
import pickle
import shutil
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import bfast_archive as bfa
from bfast_archive.tables import StringsCell
from tests.support.strategies import assert_deep_equal, dict_keys, values

PROTOCOLS = [2, 5]


class Pet(BaseModel):
    name: str
    tags: list[str]


class Owner(BaseModel):
    id: int
    pets: list[Pet]


def _data() -> dict:
    return {
        "meta": {"name": "run", "sizes": [1, 2, (3, 4)]},
        "users": [{"id": i, "name": f"u{i}", "tags": ["a", "b"][: i % 3]} for i in range(40)],
        "emb": np.arange(48, dtype=np.float32).reshape(12, 4),
        "big": np.arange(1 << 17, dtype=np.int64),
    }


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "a.bfa"
    bfa.dump(_data(), p)
    return p


def _views(arch: bfa.Archive) -> dict:
    """One view of each kind, by name."""
    return {
        "dict": arch["meta"],
        "list": arch["meta"]["sizes"],
        "tuple": arch["meta"]["sizes"][2],
        "table": arch["users"],
        "row": arch["users"][7],
        "strings cell": arch["users"][7]["tags"],
        "array": arch.array("emb"),
    }


def _value(v):
    return np.asarray(v) if isinstance(v, bfa.ArrayHandle) else v.to_python()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_archive_pickles_small_and_reopens_equal(path, protocol):
    with bfa.Archive.open(path) as arch:
        blob = pickle.dumps(arch, protocol=protocol)
        again = pickle.loads(blob)
        assert len(blob) < 1024  # a reference, not the 1 MiB array
        assert again is not arch and not again.closed
        assert_deep_equal(again.to_python(), arch.to_python())


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", ["dict", "list", "tuple", "table", "row", "strings cell",
                                  "array"])
def test_each_view_kind_round_trips(path, kind, protocol):
    with bfa.Archive.open(path) as arch:
        view = _views(arch)[kind]
        again = pickle.loads(pickle.dumps(view, protocol=protocol))
        assert type(again) is type(view)
        assert_deep_equal(_value(again), _value(view))


def test_strings_cell_is_what_a_row_gives(path):
    with bfa.Archive.open(path) as arch:
        again = pickle.loads(pickle.dumps(arch["users"][5]["tags"]))
        assert type(again) is StringsCell and list(again) == ["a", "b"][:5 % 3]


def test_views_pickled_together_share_one_reopened_archive(path):
    with bfa.Archive.open(path) as arch:
        a, b = pickle.loads(pickle.dumps([arch["meta"], arch["users"]]))
        assert a._arch is b._arch and a._arch is not arch


def test_open_options_travel_with_the_reference(path):
    with bfa.Archive.open(path, threads=2, max_depth=50, verify=True) as arch:
        again = pickle.loads(pickle.dumps(arch))
        assert (again.threads, again.max_depth) == (2, 50)
        assert dict(again._ref.options)["verify"] is True


def test_a_view_of_a_compressed_archive_round_trips(tmp_path):
    p = tmp_path / "c.bfa"
    bfa.dump(_data(), p, compression="lz4", chunk_size=1 << 16)
    with bfa.Archive.open(p) as arch:
        handle = pickle.loads(pickle.dumps(arch.array("big")))
        assert handle[1000:1003].tolist() == [1000, 1001, 1002]
        assert pickle.loads(pickle.dumps(arch["users"][3]))["name"] == "u3"


def test_typed_model_views_round_trip(tmp_path):
    p = tmp_path / "m.bfa"
    owners = [Owner(id=i, pets=[Pet(name=f"p{i}", tags=["x"])]) for i in range(3)]
    bfa.dump(owners, p)
    with bfa.Archive.open(p, model=list[Owner]) as arch:
        listed = pickle.loads(pickle.dumps(arch.root))
        one = pickle.loads(pickle.dumps(arch.root[2]))
        assert type(listed) is bfa.ArchivedModelList and listed.to_models() == owners
        assert type(one) is bfa.ArchivedModel and one.pets[0].name == "p2"
        assert pickle.loads(pickle.dumps(arch)).root[1].to_model() == owners[1]


def test_a_rewritten_file_is_refused_at_unpickling(path):
    with bfa.Archive.open(path) as arch:
        blob = pickle.dumps(arch["users"][3])
    bfa.dump(_data(), path)  # the same content, a new file
    with pytest.raises(bfa.ArchiveError, match="changed since the archive was pickled") as exc:
        pickle.loads(blob)
    assert os.path.abspath(path) in str(exc.value)


def test_a_touched_file_is_refused(path):
    with bfa.Archive.open(path) as arch:
        blob = pickle.dumps(arch)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(bfa.ArchiveError, match="mtime_ns"):
        pickle.loads(blob)


def test_a_copy_of_the_file_is_a_different_file(path, tmp_path):
    with bfa.Archive.open(path) as arch:
        blob = pickle.dumps(arch["meta"])
    copy = tmp_path / "copy.bfa"
    shutil.copy2(path, copy)  # same bytes, same mtime: another inode
    os.replace(copy, path)
    with pytest.raises(bfa.ArchiveError, match="a different file"):
        pickle.loads(blob)


def test_a_deleted_file_is_refused(path):
    with bfa.Archive.open(path) as arch:
        blob = pickle.dumps(arch.array("emb"))
    os.remove(path)
    with pytest.raises(bfa.ArchiveError, match="is gone"):
        pickle.loads(blob)


def test_an_archive_over_a_buffer_cannot_be_pickled():
    with bfa.Archive.from_buffer(bfa.dumps({"a": [1, 2]})) as arch:
        for obj in (arch, arch["a"]):
            with pytest.raises(TypeError, match=r"from_buffer.*to_python\(\)"):
                pickle.dumps(obj)


def test_views_of_a_closed_archive_cannot_be_pickled(path):
    arch = bfa.Archive.open(path)
    views = _views(arch)
    arch.close()
    for obj in [arch, *views.values()]:
        with pytest.raises(bfa.ArchiveError, match="archive is closed"):
            pickle.dumps(obj)


def _read_in_child(view, handle) -> tuple:
    return os.getpid(), view["name"], list(view["tags"]), handle[3:5].tolist()


def test_views_read_in_a_spawned_process(path):
    with bfa.Archive.open(path) as arch:
        row, handle = arch["users"][4], arch.array("emb")
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pid, name, tags, rows = pool.submit(_read_in_child, row, handle).result(timeout=120)
    assert pid != os.getpid()
    assert (name, tags) == ("u4", ["a"])
    assert rows == np.asarray(_data()["emb"])[3:5].tolist()


def _descend(data, view):
    """A view reached by a random path from ``view`` (the last container)."""
    while isinstance(view, (bfa.ArchivedDict, bfa.ArchivedList)) and len(view):
        if not data.draw(st.booleans()):
            break
        if isinstance(view, bfa.ArchivedDict):
            child = view[data.draw(st.sampled_from(list(view)))]
        else:
            child = view[data.draw(st.integers(0, len(view) - 1))]
        if not isinstance(child, (bfa.ArchivedDict, bfa.ArchivedList)):
            break
        view = child
    return view


@settings(max_examples=40)
@given(root=st.dictionaries(dict_keys, values, max_size=6), data=st.data())
def test_a_view_at_a_random_path_pickles_to_the_same_value(tmp_path_factory, root, data):
    p = tmp_path_factory.mktemp("h") / "h.bfa"
    bfa.dump(root, p)
    with bfa.Archive.open(p) as arch:
        view = _descend(data, arch.root)
        again = pickle.loads(pickle.dumps(view, protocol=data.draw(st.sampled_from(PROTOCOLS))))
        assert type(again) is type(view)
        assert_deep_equal(again.to_python(), view.to_python())


def test_a_typed_dict_of_models_round_trips(tmp_path):
    p = tmp_path / "d.bfa"
    pets = {"a": Pet(name="x", tags=[]), "b": Pet(name="y", tags=["t"])}
    bfa.dump(pets, p)
    with bfa.Archive.open(p, model=dict[str, Pet]) as arch:
        again = pickle.loads(pickle.dumps(arch.root))
        assert type(again).__name__ == "ArchivedModelDict" and again["b"].tags == ["t"]


def test_a_data_frame_view_round_trips(tmp_path):
    p = tmp_path / "f.bfa"
    bfa.dump({"df": pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})}, p)
    with bfa.Archive.open(p) as arch:
        view = arch["df"]
        again = pickle.loads(pickle.dumps(view))
        assert type(again) is type(view) and again.frame_kind == "pandas.DataFrame"
        assert again.to_pandas().equals(view.to_pandas())
