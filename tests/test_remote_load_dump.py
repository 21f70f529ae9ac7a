"""bfa.load(url) and bfa.dump(obj, url): round trips on memory://, HTTP (read)
and S3 (read and write), the same verification as a local file, and dumps that
fail leave no object behind."""
import fsspec
import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import remote as remote_module
from tests.support.servers import Remote

VALUE = {"meta": {"name": "run-7", "lr": 1e-3},
         "users": [{"id": i, "name": f"user-{i}"} for i in range(500)],
         "emb": np.arange(60_000, dtype=np.float32).reshape(-1, 4), "blob": b"\x00\xff" * 5000}


def assert_same(got, want=VALUE):
    assert got["meta"] == want["meta"] and got["users"] == want["users"]
    assert got["blob"] == want["blob"]
    assert got["emb"].dtype == want["emb"].dtype and np.array_equal(got["emb"], want["emb"])


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_memory_round_trip(compression):
    url = f"memory://rt/{compression}.bfa"
    size = bfa.dump(VALUE, url, compression=compression)
    assert fsspec.filesystem("memory").size(url) == size
    assert_same(bfa.load(url))


def test_file_url_round_trip(tmp_path):
    url = f"file://{tmp_path}/a.bfa"
    bfa.dump(VALUE, url)
    assert (tmp_path / "a.bfa").exists()
    assert_same(bfa.load(url))


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_load_reads_the_archive_served_over_http_or_s3(remote, compression):
    url = remote.put(bfa.dumps(VALUE, compression=compression))
    assert_same(bfa.load(url, storage_options=remote.storage_options))


def test_load_of_a_small_archive_is_the_open_round_trip_only(remote):
    data = bfa.dumps({"a": 1})
    url = remote.put(data)
    assert bfa.load(url, storage_options=remote.storage_options) == {"a": 1}
    assert remote.requests(url) == 2 and remote.bytes_served(url) == len(data) + 64


def test_load_fetches_a_large_archive_in_concurrent_ranges(remote, monkeypatch):
    monkeypatch.setattr(remote_module.RemoteFile.__init__, "__kwdefaults__",
                        {**remote_module.RemoteFile.__init__.__kwdefaults__, "max_request": 64 << 10})
    data = bfa.dumps(VALUE)
    url = remote.put(data)
    remote.server.reset()
    remote.server.latency = 0.3  # (requests overlap even on a busy machine)
    assert_same(bfa.load(url, storage_options=remote.storage_options))
    parts = -(-(len(data) - (64 << 10)) // (64 << 10))
    assert remote.requests(url) == 2 + parts and remote.server.peak_in_flight >= 2
    assert remote.bytes_served(url) == len(data) + 64


def test_s3_dump_then_load(s3_server):
    remote = Remote(s3_server)
    url = remote.url()
    size = bfa.dump(VALUE, url, storage_options=remote.storage_options)
    assert remote.requests(url, "PUT") == 1
    assert size == s3_server.client().head_object(Bucket="bkt", Key=remote.key(url)[4:])["ContentLength"]
    assert_same(bfa.load(url, storage_options=remote.storage_options))


def test_damaged_remote_archive_raises_archive_error_naming_the_url(remote):
    data = bytearray(bfa.dumps(VALUE))
    data[len(data) // 2] ^= 0x01  # in the array payload: only the checksum sees it
    url = remote.put(bytes(data))
    with pytest.raises(bfa.ArchiveError, match="checksum") as info:
        bfa.load(url, storage_options=remote.storage_options)
    assert url in str(info.value)


def test_load_of_a_missing_object_raises_file_not_found_naming_the_url(remote):
    url = remote.url()
    with pytest.raises(FileNotFoundError) as info:
        bfa.load(url, storage_options=remote.storage_options)
    assert url in str(info.value)


def test_load_of_a_missing_memory_object_raises_file_not_found():
    with pytest.raises(FileNotFoundError, match="memory://nowhere/a.bfa"):
        bfa.load("memory://nowhere/a.bfa")


def test_dump_to_a_missing_bucket_raises_naming_the_url(s3_server):
    url = "s3://no-such-bucket/a.bfa"
    with pytest.raises(OSError) as info:
        bfa.dump({"a": 1}, url, storage_options=Remote(s3_server).storage_options)
    assert url in str(info.value)


FAIL_FAST = {"config_kwargs": {"retries": {"max_attempts": 1}}}


def test_failed_put_leaves_the_old_object_whole(s3_server):
    remote = Remote(s3_server)
    url = remote.put(bfa.dumps({"version": 1}))
    remote.fault(url, "error", method="PUT", times=1000)
    with pytest.raises(OSError) as info:
        bfa.dump({"version": 2}, url, storage_options={**remote.storage_options, **FAIL_FAST})
    assert url in str(info.value)
    assert bfa.load(url, storage_options=remote.storage_options) == {"version": 1}


def test_failed_multipart_dump_leaves_no_object_and_no_upload(s3_server, monkeypatch):
    monkeypatch.setattr(remote_module, "_PART_SIZE", 5 << 20)  # S3's smallest part
    remote = Remote(s3_server)
    url = remote.url()
    value = {"emb": np.random.default_rng(0).random(2 << 20)}  # 16 MiB: 4 parts
    remote.fault(url, "error", method="PUT", after=1, times=1000)  # the 2nd part on fails
    with pytest.raises(OSError) as info:
        bfa.dump(value, url, storage_options={**remote.storage_options, **FAIL_FAST})
    assert url in str(info.value)
    assert remote.requests(url, "DELETE") == 1  # the upload was aborted
    client = s3_server.client()
    assert client.list_objects_v2(Bucket="bkt", Prefix=remote.key(url)[4:]).get("KeyCount") == 0
    assert client.list_multipart_uploads(Bucket="bkt").get("Uploads", []) == []


def test_multipart_dump_is_one_object_completed_at_the_end(s3_server, monkeypatch):
    monkeypatch.setattr(remote_module, "_PART_SIZE", 5 << 20)
    remote = Remote(s3_server)
    url = remote.url()
    value = {"emb": np.random.default_rng(1).random(2 << 20)}
    bfa.dump(value, url, storage_options=remote.storage_options)
    assert remote.requests(url, "PUT") == 4  # the parts; created and completed by POST
    got = bfa.load(url, storage_options=remote.storage_options)
    assert np.array_equal(got["emb"], value["emb"])
