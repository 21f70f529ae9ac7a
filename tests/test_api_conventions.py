"""The Python API keeps the conventions dict, list, open() and h5py taught users:
the container protocol on an Archive, ``~`` in paths, errors naming the caller's
file, lookups by keys that equal an archived key, reprs that say what is there."""
import subprocess
import sys

import numpy as np
import pytest

import bfast_archive as bfa

DATA = {"d": 1, 1: "one", "e": [1, 2], b"k": "bytes key"}


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump(DATA, path)
    with bfa.Archive.open(path) as arch:
        yield arch


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


# -- Archive forwards the container protocol to its root -------------------------------

def test_in_on_an_archive_asks_the_root(archive):
    assert "d" in archive and 1 in archive and b"k" in archive
    assert "nope" not in archive and 0 not in archive


def test_len_of_an_archive_is_the_roots(archive):
    assert len(archive) == len(DATA)


def test_iterating_an_archive_gives_the_roots_keys(archive):
    assert list(archive) == list(DATA)


def test_iterating_an_archive_with_a_list_root_gives_its_items(tmp_path):
    path = tmp_path / "l.bfa"
    bfa.dump([10, 20, 30], path)
    with bfa.Archive.open(path) as arch:
        assert list(arch) == [10, 20, 30] and len(arch) == 3 and 20 in arch


def test_container_protocol_on_a_scalar_root_is_a_clear_type_error(tmp_path):
    path = tmp_path / "s.bfa"
    bfa.dump(5, path)
    with bfa.Archive.open(path) as arch:
        with pytest.raises(TypeError, match="root is a int, not a container"):
            len(arch)


def test_an_archive_is_true_whatever_its_root(tmp_path):
    for i, root in enumerate([{}, [], 5]):
        path = tmp_path / f"{i}.bfa"
        bfa.dump(root, path)
        with bfa.Archive.open(path) as arch:
            assert arch


def test_archive_constructor_points_to_open():
    with pytest.raises(TypeError, match=r"Archive\.open\(path\).*from_buffer"):
        bfa.Archive("x.bfa")


def test_open_and_from_buffer_still_construct(tmp_path):
    path = tmp_path / "x.bfa"
    bfa.dump([1], path)
    with bfa.Archive.open(path) as a, bfa.Archive.from_buffer(path.read_bytes()) as b:
        assert a.to_python() == b.to_python() == [1]


# -- paths: ~ expanded, errors naming the caller's path ----------------------------------

def test_dump_expands_the_home_directory(home):
    bfa.dump([1, 2], "~/x.bfa")
    assert (home / "x.bfa").is_file()


def test_load_expands_the_home_directory(home):
    bfa.dump([1, 2], home / "x.bfa")
    assert bfa.load("~/x.bfa") == [1, 2]


def test_open_expands_the_home_directory(home):
    bfa.dump({"a": 1}, home / "x.bfa")
    with bfa.Archive.open("~/x.bfa") as arch:
        assert arch["a"] == 1


def test_dump_error_names_the_callers_path_not_the_temporary(tmp_path):
    target = tmp_path / "dir.bfa"
    target.mkdir()  # os.replace(temporary, target) fails
    with pytest.raises(IsADirectoryError) as info:
        bfa.dump([1], target)
    assert info.value.filename == str(target) and "bfa-tmp" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["dir.bfa"]


def test_dump_into_a_missing_directory_names_the_callers_path(tmp_path):
    target = tmp_path / "missing" / "x.bfa"
    with pytest.raises(FileNotFoundError) as info:
        bfa.dump([1], target)
    assert info.value.filename == str(target) and "bfa-tmp" not in str(info.value)


def test_opening_a_directory_is_is_a_directory_error_naming_it(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        bfa.Archive.open(tmp_path)
    assert info.value.filename == str(tmp_path)


def test_loading_a_directory_is_is_a_directory_error_naming_it(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        bfa.load(tmp_path)


# -- cycles and excess nesting: a BfastError naming the path ------------------------------

def test_reference_cycle_is_a_nesting_error_naming_its_path():
    loop = [1]
    loop.append(loop)
    with pytest.raises(bfa.NestingError, match=r"cycle.* at x\[0\]\['y'\]\[1\]$") as info:
        bfa.dumps({"x": [{"y": loop}]})
    assert info.value.path == "x[0]['y'][1]"
    assert isinstance(info.value, ValueError) and isinstance(info.value, bfa.BfastError)


def test_dict_cycle_names_the_key():
    d = {"a": {}}
    d["a"]["back"] = d
    with pytest.raises(bfa.NestingError) as info:
        bfa.dumps(d)
    assert info.value.path == "a['back']"


def test_nesting_past_max_depth_is_a_nesting_error_naming_its_path():
    value = {"k": [[[[]]]]}
    with pytest.raises(bfa.NestingError, match="max_depth=3 at k") as info:
        bfa.dumps(value, max_depth=3)
    assert info.value.path == "k[0][0]"


def test_nesting_error_at_the_root():
    with pytest.raises(bfa.NestingError, match="at the root") as info:
        bfa.dumps([], max_depth=0)
    assert info.value.path == ""


def test_nesting_error_message_shortens_a_long_path_keeps_it_whole():
    value = []
    for _ in range(2000):
        value = [value]
    with pytest.raises(bfa.NestingError) as info:
        bfa.dumps(value)
    assert info.value.path == "[0]" * 1000
    assert len(str(info.value)) < 300 and "1,000 steps" in str(info.value)


def test_nesting_error_inside_a_record_table_names_row_and_column():
    rows = [{"id": i, "v": [i]} for i in range(100)]
    rows[7]["v"] = rows
    with pytest.raises(bfa.NestingError) as info:
        bfa.dumps({"rows": rows})
    assert info.value.path == "rows[7]['v']"


# -- repr and verify --------------------------------------------------------------------------

def test_repr_of_a_compressed_archive_shows_the_file_size(tmp_path):
    path = tmp_path / "c.bfa"
    size = bfa.dump(list(range(100_000)), path, compression="lz4")
    with bfa.Archive.open(path) as arch:
        assert repr(arch) == f"<Archive {path} {size} bytes>"


def _damaged_file(tmp_path):
    """An archive with one flipped byte inside a checksummed section."""
    path = tmp_path / "v.bfa"
    bfa.dump({"blob": b"x" * 100_000}, path)
    raw = bytearray(path.read_bytes())
    raw[50_000] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def test_verify_error_names_the_file(tmp_path):
    path = _damaged_file(tmp_path)
    with bfa.Archive.open(path) as arch:
        with pytest.raises(bfa.ArchiveError, match=f"^{path}: ") as info:
            arch.verify()
    assert str(info.value).count(str(path)) == 1


def test_open_with_verify_names_the_file_once(tmp_path):
    path = _damaged_file(tmp_path)
    with pytest.raises(bfa.ArchiveError, match=f"^{path}: ") as info:
        bfa.Archive.open(path, verify=True)
    assert str(info.value).count(str(path)) == 1


# -- ArchivedDict lookups by keys equal to an archived key ----------------------------------

@pytest.mark.parametrize("key", [np.int64(1), np.uint8(1), 1.0, np.float64(1.0), True,
                                 np.True_, 1 + 0j], ids=repr)
def test_key_equal_to_an_int_key_finds_it_as_in_a_dict(archive, key):
    assert {1: "one"}[key] == "one"          # what dict does
    assert archive.root[key] == "one" and key in archive.root


def test_false_and_zero_find_the_key_zero():
    with bfa.Archive.from_buffer(bfa.dumps({0: "zero"})) as arch:
        assert arch.root[False] == "zero" and arch.root[0.0] == "zero"


@pytest.mark.parametrize("key", [1.5, float("nan"), float("inf"), None, "1", (1,)], ids=repr)
def test_key_equal_to_no_archived_key_is_key_error(archive, key):
    with pytest.raises(KeyError):
        archive.root[key]
    assert key not in archive.root


def test_archived_dict_repr_quotes_str_keys(archive):
    assert repr(archive.root) == "<ArchivedDict 4 keys: 'd', 1, 'e', b'k'>"


def test_array_handle_is_exported(tmp_path):
    path = tmp_path / "a.bfa"
    bfa.dump({"emb": np.zeros((4, 2))}, path)
    with bfa.Archive.open(path) as arch:
        assert isinstance(arch.array("emb"), bfa.ArrayHandle)


def test_array_handle_export_does_not_import_numpy():
    code = ("import sys, bfast_archive as bfa; bfa.ArrayHandle; "
            "assert 'numpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_table_repr_names_its_class_and_rows():
    table = bfa.Archive.from_buffer(bfa.dumps([{"a": i} for i in range(70)])).root
    assert isinstance(table, bfa.ArchivedTable)
    assert repr(table) == "<ArchivedTable 70 rows>"
