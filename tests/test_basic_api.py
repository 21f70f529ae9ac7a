"""The README example, end to end, as a user calls it."""
import sys
import subprocess

import numpy as np
import pytest

import bfast_archive as bfa


def test_readme_example(tmp_path):
    data = {"meta": {"name": "run-7", "lr": 1e-3},
            "users": [{"id": i, "name": f"user-{i}", "tags": ["a"]} for i in range(1000)],
            "emb": np.arange(4000, dtype=np.float32).reshape(1000, 4), "blob": b"x" * 100}
    path = tmp_path / "cache.bfa"
    size = bfa.dump(data, path)
    assert size == path.stat().st_size
    with bfa.Archive.open(path) as arch:
        assert arch["users"][500]["name"] == "user-500"
        assert arch["users"][-1]["id"] == 999
        emb = arch["emb"]
        assert isinstance(emb, np.ndarray) and not emb.flags.writeable
        assert np.array_equal(emb, data["emb"])
        assert arch["meta"].to_python() == {"name": "run-7", "lr": 1e-3}
        assert bytes(arch["blob"]) == b"x" * 100
        assert repr(arch.root) == "<ArchivedDict 4 keys: 'meta', 'users', 'emb', 'blob'>"
    loaded = bfa.load(path)
    assert loaded["users"] == data["users"] and loaded["meta"] == data["meta"]
    assert np.array_equal(loaded["emb"], data["emb"]) and loaded["emb"].flags.writeable


def test_import_does_not_load_numpy():
    code = "import sys, bfast_archive; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reading_one_record_starts_no_thread_pool(tmp_path):
    # a cold open + one cell pays no thread-pool machinery (concurrent.futures
    # brings logging: milliseconds in a fresh process); compression does
    path = tmp_path / "r.bfa"
    bfa.dump({"users": [{"id": i, "name": f"u{i}"} for i in range(100)]}, path)
    code = ("import sys, bfast_archive as bfa\n"
            f"with bfa.Archive.open({str(path)!r}) as a: v = a['users'][50]['name']\n"
            "print(v, 'concurrent.futures' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["u50", "False"]


def test_unsupported_type_names_path():
    with pytest.raises(bfa.UnsupportedTypeError) as info:
        bfa.dumps({"users": [{}, {}, {}, {"created": object()}]})
    assert "users[3]['created']" in str(info.value)
    assert info.value.path == "users[3]['created']"


def test_cycle_raises_value_error(tmp_path):
    d = {"a": []}
    d["a"].append(d)
    with pytest.raises(ValueError, match="cycle"):
        bfa.dump(d, tmp_path / "x.bfa")
    assert list(tmp_path.iterdir()) == []
