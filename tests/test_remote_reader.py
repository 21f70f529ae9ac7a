"""bfast_archive.remote.RemoteFile against real servers (HTTP range server and
moto's S3, tests/support/servers.py) and memory://: what it fetches, how it
caches, and each fault: the right bytes after a bounded retry or a clear
error, never wrong data, never a hang."""
import time

import aiohttp
import fsspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bfast_archive as bfa
from bfast_archive.remote import RemoteFile

DATA = bytes((i * 7 + i // 256) % 256 for i in range(300_000))
BS = 4096  # small blocks: several per read
OPTS = {"block_size": BS, "tail": 8192, "retries": 3, "timeout": 10.0}


def open_remote(remote, url, **kw):
    return RemoteFile(url, remote.storage_options, **{**OPTS, **kw})


def test_open_is_two_concurrent_gets_of_the_tail_and_the_header(remote):
    url = remote.put(DATA)
    remote.server.reset()
    remote.server.latency = 0.5  # (requests overlap even on a busy machine)
    f = open_remote(remote, url)
    assert remote.server.requests(remote.key(url), "GET") == remote.requests(url) == 2  # no HEAD
    assert remote.server.peak_in_flight == 2
    assert remote.bytes_served(url) == 8192 + 64
    assert (f.size, f.head, f.tail) == (len(DATA), DATA[:64], DATA[-8192:])


def test_open_learns_size_and_etag_from_the_suffix_response(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    assert f.size == len(DATA) and f.tail_start == len(DATA) - 8192
    assert f.etag is not None and f.etag.startswith('"')


def test_object_smaller_than_the_tail_is_read_whole_at_open(remote):
    url = remote.put(DATA[:100])
    f = open_remote(remote, url)
    assert (f.size, f.tail, f.head) == (100, DATA[:100], DATA[:64])
    assert f.read(10, 80) == DATA[10:90] and f.requests == 2


def test_read_returns_the_bytes_of_the_range(remote):
    f = open_remote(remote, remote.put(DATA))
    assert f.read(12_345, 50_000) == DATA[12_345:62_345]


def test_adjacent_missing_blocks_are_one_request(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    before = remote.requests(url)
    f.read(BS * 3 + 10, BS * 4)  # blocks 3..7
    assert remote.requests(url) - before == 1
    assert f.bytes_fetched == 8192 + 64 + 5 * BS


def test_cached_blocks_cost_no_request(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    f.read(50_000, 1000)
    before = remote.requests(url)
    assert f.read(50_100, 500) == DATA[50_100:50_600]
    assert remote.requests(url) == before


def test_reads_in_the_header_or_tail_cost_no_request(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    assert f.read_ranges([(3, 40), (len(DATA) - 100, 100)]) == [DATA[3:43], DATA[-100:]]
    assert remote.requests(url) == 2


def test_independent_ranges_are_fetched_concurrently(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    remote.server.reset()
    remote.server.latency = 0.5
    got = f.read_ranges([(10_000, 10), (100_000, 10), (200_000, 10)])
    assert got == [DATA[10_000:10_010], DATA[100_000:100_010], DATA[200_000:200_010]]
    assert remote.requests(url) == 3 and remote.server.peak_in_flight == 3


def test_cache_keeps_at_most_its_byte_bound_least_recently_used_out(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url, cache_bytes=2 * BS)
    for block in (1, 3, 5):  # three separate blocks; room for two
        f.read(block * BS, 1)
    assert f._cache.nbytes <= 2 * BS
    before = remote.requests(url)
    f.read(5 * BS, 1)  # still cached
    assert remote.requests(url) == before
    f.read(1 * BS, 1)  # evicted first
    assert remote.requests(url) == before + 1


def test_long_runs_are_split_into_concurrent_requests(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url, max_request=4 * BS)
    before = remote.requests(url)
    assert f.read(0, 16 * BS) == DATA[:16 * BS]
    assert remote.requests(url) - before == 4


def test_read_into_returns_every_byte_of_a_long_range_in_a_buffer_of_its_own(remote):
    # not zero-filled first: each part's bytes must land at their place, none left out
    url = remote.put(DATA)
    f = open_remote(remote, url, max_request=5 * BS)
    start, n = 3 * BS + 17, 40 * BS + 5  # 9 parts, the last one short, none aligned
    before = remote.requests(url)
    got = f.read_into(start, n)
    assert remote.requests(url) - before == 9
    assert bytes(got) == DATA[start:start + n]
    assert not got.readonly
    got[:4] = b"\0\0\0\0"  # the caller's own: another read is not changed by it
    assert bytes(f.read_into(start, 4)) == DATA[start:start + 4]


def test_read_all_reuses_the_tail_and_returns_every_byte(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url, max_request=64 * 1024)
    assert bytes(f.read_all()) == DATA
    assert remote.bytes_served(url) == len(DATA) + 64  # the tail once, the header twice


def test_range_past_the_end_raises_archive_error(remote):
    f = open_remote(remote, remote.put(DATA))
    with pytest.raises(bfa.ArchiveError, match="past the end"):
        f.read(len(DATA) - 10, 11)


def test_object_replaced_between_reads_raises_changed_while_reading(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    remote.put(DATA[::-1], url)
    with pytest.raises(bfa.ArchiveError, match="changed while reading") as info:
        f.read(100_000, 10)
    assert url in str(info.value)


def test_object_replaced_midway_through_a_read_never_mixes_versions(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    remote.fault(url, "replace", after=1, data=DATA[::-1])  # the 2nd range sees a new object
    with pytest.raises(bfa.ArchiveError, match="changed while reading"):
        f.read_ranges([(10_000, 10), (100_000, 10), (200_000, 10)])
    with pytest.raises(bfa.ArchiveError, match="changed while reading"):
        f.read(10_000, 10)  # later reads too: nothing of the failed batch was cached


def test_object_replaced_between_the_open_requests_raises(remote):
    url = remote.put(DATA)
    remote.fault(url, "replace", after=1, data=DATA[:200_000])
    with pytest.raises(bfa.ArchiveError, match="changed while reading"):
        open_remote(remote, url, concurrency=1)


def test_object_removed_while_open_raises_changed_while_reading(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    remote.delete(url)
    with pytest.raises(bfa.ArchiveError, match="changed while reading"):
        f.read(100_000, 10)


def test_missing_object_raises_file_not_found_naming_the_url(remote):
    url = remote.url()
    with pytest.raises(FileNotFoundError) as info:
        open_remote(remote, url)
    assert url in str(info.value)


@pytest.mark.parametrize("kind", ["drop", "short"])
def test_broken_response_is_retried_and_gives_the_right_bytes(remote, kind):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    remote.fault(url, kind)
    assert f.read(100_000, 3 * BS) == DATA[100_000:100_000 + 3 * BS]
    assert remote.requests(url) >= 4  # open (2), the broken one, the retry


@pytest.mark.parametrize("kind", ["drop", "short"])
def test_broken_open_is_retried(remote, kind):
    url = remote.put(DATA)
    remote.fault(url, kind)
    f = open_remote(remote, url, concurrency=1)
    assert (f.size, f.tail, f.head) == (len(DATA), DATA[-8192:], DATA[:64])


def test_500s_then_success_gives_the_right_bytes(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url)
    remote.fault(url, "error", times=2)
    assert f.read(100_000, 100) == DATA[100_000:100_100]
    assert remote.requests(url) == 2 + 3


def test_persistent_short_body_gives_up_with_an_error_naming_the_url(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url, retries=2)
    remote.fault(url, "short", times=100)
    with pytest.raises(OSError) as info:
        f.read(100_000, 100)
    assert url in str(info.value)
    assert remote.requests(url) == 2 + 3  # bounded: 1 + retries


def test_persistent_500_keeps_the_client_error_type_and_names_the_url(http_server):
    from tests.support.servers import Remote

    remote = Remote(http_server)
    url = remote.put(DATA)
    f = open_remote(remote, url, retries=2)
    remote.fault(url, "error", times=100)
    with pytest.raises(aiohttp.ClientResponseError) as info:
        f.read(100_000, 100)
    assert info.value.status == 500 and url in str(info.value)
    assert remote.requests(url) == 2 + 3


def test_persistent_500_on_s3_raises_an_os_error_naming_the_url(s3_server):
    from tests.support.servers import Remote

    remote = Remote(s3_server)
    url = remote.put(DATA)
    f = RemoteFile(url, {**remote.storage_options,
                         "config_kwargs": {"retries": {"max_attempts": 2}}}, **{**OPTS, "retries": 1})
    remote.fault(url, "error", times=100)
    with pytest.raises(OSError) as info:
        f.read(100_000, 100)
    assert url in str(info.value)


def test_slow_server_times_out_instead_of_hanging(remote):
    url = remote.put(DATA)
    f = open_remote(remote, url, timeout=0.3, retries=1)
    remote.server.latency = 1.0
    t = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        f.read(100_000, 100)
    assert time.monotonic() - t < 5
    assert url in str(info.value)


def test_unreachable_server_raises_the_client_error_naming_the_url():
    from tests.support.servers import RangeServer

    server = RangeServer().start()
    url = server.url("x.bfa")
    server.stop()
    with pytest.raises(aiohttp.ClientConnectionError) as info:
        RemoteFile(url, retries=1)
    assert url in str(info.value)


@given(st.lists(st.tuples(st.integers(0, 299_999), st.integers(0, 40_000)), min_size=1, max_size=6),
       st.sampled_from([512, 4096, 65536]), st.integers(0, 10))
def test_memory_reads_match_the_bytes(ranges, block_size, cache_blocks):
    fs = fsspec.filesystem("memory")
    if not fs.exists("/hyp/data.bfa"):
        fs.pipe("/hyp/data.bfa", DATA)
    ranges = [(a, min(n, len(DATA) - a)) for a, n in ranges]
    f = RemoteFile("memory://hyp/data.bfa", block_size=block_size, tail=1000,
                   cache_bytes=cache_blocks * block_size)
    assert f.read_ranges(ranges) == [DATA[a:a + n] for a, n in ranges]
    assert f.read_ranges(ranges[::-1]) == [DATA[a:a + n] for a, n in ranges[::-1]]
    assert f._cache.nbytes <= cache_blocks * block_size


def test_memory_object_replaced_while_open_raises():
    fs = fsspec.filesystem("memory")
    fs.pipe("/rep/a.bfa", DATA)
    f = RemoteFile("memory://rep/a.bfa", block_size=BS, tail=1000)
    fs.pipe("/rep/a.bfa", DATA[::-1])
    with pytest.raises(bfa.ArchiveError, match="changed while reading"):
        f.read(5000, 10)


def test_unreachable_s3_endpoint_raises_botocores_error_naming_the_url():
    import botocore.exceptions

    from tests.support.servers import S3Server

    server = S3Server().start()
    endpoint = server.endpoint
    server.stop()
    url = "s3://bkt/x.bfa"
    with pytest.raises(botocore.exceptions.EndpointConnectionError) as info:
        RemoteFile(url, {"endpoint_url": endpoint, "key": "k", "secret": "s",
                         "config_kwargs": {"retries": {"max_attempts": 1}}}, retries=1)
    assert url in str(info.value)
