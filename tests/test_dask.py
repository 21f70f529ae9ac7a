"""``bfa.dask``: dask arrays and data frames over archives, whose graphs carry
references (path, file identity, key, rows), read by workers that open the
archive themselves. The cluster tests run a real ``distributed.LocalCluster``
of two worker processes on 127.0.0.1."""
import datetime
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil
import pytest

import bfast_archive as bfa
from tests.support.child import python_env

import dask.array  # noqa: F401  (the test extra installs dask and distributed: no skip)
import distributed  # noqa: F401

BIG_ROWS = (256 << 20) // 8 // 4  # 256 MiB of float64, 4 per row


def _big() -> np.ndarray:
    """256 MiB of float64 holding small integers: sums are exact in any order."""
    return (np.arange(BIG_ROWS * 4, dtype=np.int64) % 1000).astype(np.float64).reshape(-1, 4)


def _rows(n: int) -> list:
    return [{"g": f"k{i % 13}", "v": float(i % 997), "n": i} for i in range(n)]


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    """The same 256 MiB array (and a record table) uncompressed and in lz4."""
    d = tmp_path_factory.mktemp("dask")
    data = {"x": _big(), "users": _rows(60_000)}
    paths = {}
    for compression in (None, "lz4"):
        paths[compression] = d / f"{compression}.bfa"
        bfa.dump(data, paths[compression], compression=compression)
    return paths


@pytest.fixture
def small(tmp_path):
    p = tmp_path / "s.bfa"
    bfa.dump({"x": np.arange(3000, dtype=np.int64).reshape(-1, 3),
              "nest": {"deep": [{"y": np.arange(10, dtype=np.uint8)}]},
              "plain": [1, 2]}, p)
    return p


# -- without a cluster -----------------------------------------------------------------

def test_dask_is_imported_only_when_a_function_is_called():
    code = ("import sys, bfast_archive as bfa; a = 'dask' in sys.modules; m = bfa.dask; "
            "print(a, 'dask' in sys.modules, m.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=python_env(), check=True).stdout.split()
    assert out == ["False", "False", "bfast_archive.dask"]


def test_missing_dask_names_the_extra(monkeypatch, small):
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r'pip install "bfast-archive\[dask\]"'):
        bfa.dask.array(small, "x")


def test_array_and_dataframe_over_a_url_equal_the_archived_values(http_server):
    x = np.arange(30_000, dtype=np.int64).reshape(-1, 3)
    http_server.put("dask-small.bfa", bfa.dumps({"x": x, "users": _rows(500)}))
    url = http_server.url("dask-small.bfa")
    arr = bfa.dask.array(url, "x", chunks=1000)
    assert arr.chunks[0] == (1000,) * 10
    assert np.array_equal(arr.compute(scheduler="threads"), x)
    df = bfa.dask.dataframe(url, "users", npartitions=3).compute(scheduler="threads")
    pd.testing.assert_frame_equal(df, pd.DataFrame(_rows(500)), check_dtype=False)


def test_a_replaced_url_fails_the_tasks(http_server):
    http_server.put("dask-replaced.bfa", bfa.dumps({"x": np.arange(300)}))
    url = http_server.url("dask-replaced.bfa")
    arr = bfa.dask.array(url, "x", chunks=100)
    http_server.put("dask-replaced.bfa", bfa.dumps({"x": np.arange(300) + 1}))
    with pytest.raises(bfa.ArchiveError, match="changed"):
        arr.compute(scheduler="sync")


def test_array_values_equal_the_archived_array(small):
    x = bfa.dask.array(small, "x", chunks=7)
    assert x.chunks == ((7,) * 142 + (6,), (3,))
    assert np.array_equal(x.compute(scheduler="sync"), bfa.load(small)["x"])
    assert x.dtype == np.int64


def test_a_nested_key_is_a_path_of_keys(small):
    y = bfa.dask.array(small, ["nest", "deep", 0, "y"], chunks=(4, 6))
    assert y.chunks == ((4, 6),)
    assert y.compute(scheduler="sync").tolist() == list(range(10))


def test_a_key_that_is_not_an_array_is_refused(small):
    with pytest.raises(TypeError, match="not an array"):
        bfa.dask.array(small, "plain")


def test_an_array_that_is_a_list_item_is_refused(tmp_path):
    p = tmp_path / "l.bfa"
    bfa.dump({"arrays": [np.arange(3)]}, p)
    with pytest.raises(TypeError, match="must be a value of a dict"):
        bfa.dask.array(p, ("arrays", 0))


def test_a_process_opens_an_archive_once_for_its_tasks(small):
    x = bfa.dask.array(small, "x", chunks=100)  # 10 tasks

    def opened() -> list:
        return [arch for ref, arch in bfa.dask._cache.items() if ref.path == str(small)]

    bfa.dask._cache.clear()
    x.sum().compute(scheduler="sync")
    (first,) = opened()
    x.sum().compute(scheduler="sync")
    (again,) = opened()
    assert again is first and not first.closed


@pytest.mark.parametrize("chunks", [0, (1, 2), 2.5, "auto"])
def test_chunks_other_than_rows_are_refused(small, chunks):
    with pytest.raises(ValueError, match="chunks must be"):
        bfa.dask.array(small, "x", chunks=chunks)


def test_default_chunks_of_an_uncompressed_array_hold_about_the_target(monkeypatch, small):
    monkeypatch.setattr(bfa.dask, "TARGET_CHUNK_BYTES", 2400)
    assert bfa.dask.array(small, "x").chunks[0] == (100,) * 10  # 24-byte rows


def test_default_chunks_of_a_compressed_array_are_whole_chunks(monkeypatch, tmp_path):
    p = tmp_path / "c.bfa"
    x = np.arange(300_000, dtype=np.int64).reshape(-1, 3)  # 24-byte rows, 2.4 MB
    bfa.dump({"x": x}, p, compression="lz4", chunk_size=1 << 16)
    monkeypatch.setattr(bfa.dask, "TARGET_CHUNK_BYTES", 3 << 16)  # three chunks each
    rows = bfa.dask.array(p, "x").chunks[0]
    bounds = np.cumsum(rows)[:-1]
    per = 3 << 16
    # each boundary is the first row that starts in a new group of three chunks
    assert [int(-(-k * per // 24)) for k in range(1, len(rows))] == bounds.tolist()
    assert len(rows) == -(-x.nbytes // per)


def test_dataframe_columns_keep_their_values_exactly(tmp_path):
    rows = [{"s": f"k{i % 3}" if i % 4 else None, "i": None if i % 5 == 0 else i,
             "f": i / 4, "b": bool(i % 2), "l": ["a"] * (i % 3), "o": {"a": i} if i % 2 else "s",
             "t": datetime.datetime(2020, 1, 1) + datetime.timedelta(minutes=i)}
            for i in range(50)]
    p = tmp_path / "t.bfa"
    bfa.dump({"users": rows}, p)
    df = bfa.dask.dataframe(p, "users", npartitions=3)
    assert df.npartitions == 3 and df.divisions == (0, 16, 33, 49)
    got = df.compute(scheduler="sync")
    assert got.dtypes.astype(str).to_dict() == {"s": "string", "i": "Int64", "f": "float64",
                                                "b": "bool", "l": "object", "o": "object",
                                                "t": "datetime64[us]"}
    assert got["i"].isna().tolist() == [r["i"] is None for r in rows]
    assert got["l"].tolist() == [r["l"] for r in rows]  # lists, not their text
    assert got["o"].tolist() == [r["o"] for r in rows]
    assert got["t"].dt.to_pydatetime().tolist() == [r["t"] for r in rows]
    assert [None if pd.isna(v) else v for v in got["s"]] == [r["s"] for r in rows]


def test_dataframe_of_a_value_that_is_not_a_table_is_refused(small):
    with pytest.raises(TypeError, match="not a record table"):
        bfa.dask.dataframe(small, "plain")


def test_a_rewritten_file_fails_the_tasks(tmp_path):
    p = tmp_path / "r.bfa"
    bfa.dump({"x": np.arange(10)}, p)
    x = bfa.dask.array(p, "x")
    bfa.dump({"x": np.arange(10)}, p)
    with pytest.raises(bfa.ArchiveError, match="changed since"):
        x.compute(scheduler="sync")


# -- on a real cluster of two worker processes -------------------------------------------

@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    client = Client(cluster)
    pids = list(client.run(os.getpid).values())
    yield client
    client.close()
    cluster.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_running(pid) for pid in pids), "worker processes left running"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _opened_here() -> list:
    import bfast_archive.dask

    return [ref.path for ref in bfast_archive.dask._cache]


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_sum_on_workers_equals_numpy(client, big_files, compression):
    path = big_files[compression]
    x = bfa.dask.array(path, "x")
    graph = dict(x.sum().__dask_graph__())
    assert len(pickle.dumps(graph)) < 16 << 10  # references, not 256 MiB
    assert x.sum().compute() == _big().sum()  # exact: small integers
    opened = client.run(_opened_here)
    assert any(str(path) in paths for paths in opened.values())  # the workers opened it
    assert str(path) not in _opened_here()  # not this process


def test_sum_of_a_url_on_workers_equals_numpy(client, big_files, http_server):
    http_server.put("dask-big.bfa", big_files[None].read_bytes())
    url = http_server.url("dask-big.bfa")
    x = bfa.dask.array(url, "x")
    assert len(pickle.dumps(dict(x.sum().__dask_graph__()))) < 16 << 10
    assert x.sum().compute() == _big().sum()
    opened = client.run(_opened_here)
    assert any(url in paths for paths in opened.values())  # the workers read it by range


def test_groupby_mean_on_workers_equals_pandas(client, big_files):
    df = bfa.dask.dataframe(big_files["lz4"], "users", npartitions=4)
    assert len(pickle.dumps(dict(df.__dask_graph__()))) < 16 << 10
    got = df.groupby("g")["v"].mean().compute()
    expected = pd.DataFrame(_rows(60_000)).groupby("g")["v"].mean()
    assert got.to_dict() == expected.to_dict()
