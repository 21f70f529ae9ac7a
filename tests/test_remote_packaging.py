"""The `remote` extra: fsspec and its clients are imported on first use only,
and a missing one is named with the extra to install."""
import os
import pathlib
import subprocess
import sys

import fsspec
import pytest

import bfast_archive as bfa
from bfast_archive import remote

CLIENTS = ("fsspec", "s3fs", "aiohttp", "botocore", "asyncio", "bfast_archive.remote")


def test_import_loads_no_remote_client():
    code = ("import sys, bfast_archive; "
            f"print([m for m in {CLIENTS!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_local_load_loads_no_remote_client(tmp_path):
    path = tmp_path / "a.bfa"
    code = ("import sys, bfast_archive as bfa; "
            f"bfa.dump({{'a': 1}}, {str(path)!r}); bfa.load({str(path)!r}); "
            f"print([m for m in {CLIENTS!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_missing_fsspec_names_it_and_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "fsspec" or m.startswith("fsspec.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"'fsspec'.*pip install \"bfast-archive\[remote\]\"") as info:
        bfa.load("memory://bucket/a.bfa")
    assert info.value.name == "fsspec"


def test_missing_s3fs_names_it_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)
    with pytest.raises(ImportError, match=r"s3fs.*pip install \"bfast-archive\[remote\]\""):
        remote.open_filesystem("s3://bucket/a.bfa")


@pytest.mark.parametrize("url", ["s3://b/k.bfa", "gs://b/k", "az://c/k", "http://h/a.bfa",
                                 "https://h:8443/a?x=1", "memory://a.bfa", "file:///tmp/a.bfa",
                                 "simplecache+s3://b/k"])
def test_urls_are_detected(url):
    assert remote.is_url(url)


@pytest.mark.parametrize("source", ["a.bfa", "/tmp/a.bfa", "dir/s3:/x", "C:\\data\\a.bfa",
                                    "C://a.bfa", pathlib.Path("s3://b/k"), b"s3://b/k"])
def test_paths_and_pathlikes_stay_local(source):
    assert not remote.is_url(source)


def test_file_url_is_a_local_path():
    assert remote.local_path("file:///tmp/a%20b.bfa") == "/tmp/a b.bfa"
    assert remote.local_path("memory://a.bfa") is None


def test_storage_options_with_a_local_path_are_refused(tmp_path):
    path = tmp_path / "a.bfa"
    with pytest.raises(ValueError, match="storage_options"):
        bfa.dump({"a": 1}, path, storage_options={"key": "k"})
    assert not os.path.exists(path)
