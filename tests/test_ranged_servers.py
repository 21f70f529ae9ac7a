"""Archive.open(url) over the real test servers (tests/support/servers.py,
started by fixtures on 127.0.0.1): requests and bytes counted at the server,
changed objects, retried and persistent faults, verification."""
import struct

import numpy as np
import pytest

import bfast_archive as bfa

USERS = [{"id": i, "name": f"user-{i:06d}", "score": i / 4} for i in range(20_000)]
EMB = np.arange(8_000 * 128, dtype=np.float32).reshape(-1, 128)  # 4 MB, 512 B rows


@pytest.fixture(scope="module")
def big_archive():
    return bfa.dumps({"meta": {"run": 7}, "users": USERS, "emb": EMB})


def test_open_and_one_table_cell_cost_three_round_trips(remote, big_archive):
    url = remote.put(big_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert remote.requests(url) == 2  # the tail and the first block, together
        assert arch["users"][15_000]["name"] == "user-015000"
        # the table node (1 request), then the cell's offsets with the string
        # where equal lengths put it (2 concurrent requests)
        assert remote.requests(url) <= 5
        assert remote.bytes_served(url) <= 256 << 10
        assert arch["users"][15_001]["score"] == 15_001 / 4


def test_open_and_one_array_row_cost_two_round_trips(remote, big_archive):
    url = remote.put(big_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        row = arch.array("emb")[4_321]
        assert np.array_equal(row, EMB[4_321])
        assert remote.requests(url) == 3
        assert remote.bytes_served(url) <= (64 << 10) + 2 * (16 << 10)


def test_compressed_array_rows_fetch_only_their_chunks(remote):
    emb = np.random.default_rng(1).random((64_000, 32), dtype=np.float32)  # 8 MB
    chunk = 1 << 20
    url = remote.put(bfa.dumps({"emb": emb}, compression="lz4", chunk_size=chunk))
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        before = remote.bytes_served(url)
        rows = arch.array("emb")[30_000:30_100]
        assert np.array_equal(rows, emb[30_000:30_100])
        assert remote.bytes_served(url) - before <= 2 * chunk + (16 << 10)


def test_object_replaced_while_open_raises_changed_while_reading(remote, big_archive):
    url = remote.put(big_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        users = arch["users"]
        remote.put(bfa.dumps({"users": USERS[::-1]}), url)
        with pytest.raises(bfa.ArchiveError, match="changed while reading"):
            users[100]["name"]


@pytest.mark.parametrize("kind", ["error", "drop", "short"])
def test_faults_are_retried_and_give_the_right_value(remote, big_archive, kind):
    url = remote.put(big_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        remote.fault(url, kind, times=2)
        assert arch["users"][12_345]["name"] == "user-012345"
        assert np.array_equal(arch.array("emb")[999], EMB[999])


def test_persistent_failures_raise_the_clients_error_naming_the_url(remote, big_archive):
    url = remote.put(big_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        remote.fault(url, "short", times=1000)
        with pytest.raises(OSError) as info:
            arch["users"][12_345]["name"]
        assert url in str(info.value)
        remote.server.faults.clear()


def test_open_url_verify_checks_every_checksum(remote, big_archive):
    bad = bytearray(big_archive)
    bad[len(bad) // 3] ^= 0x40  # inside the users' columns or the array
    url = remote.put(bytes(bad))
    with pytest.raises(bfa.ArchiveError, match="checksum"):
        bfa.Archive.open(url, storage_options=remote.storage_options, verify=True)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        with pytest.raises(bfa.ArchiveError, match="checksum"):
            arch.to_python()




@pytest.fixture(scope="module")
def big_lz4_archive():
    return bfa.dumps({"meta": {"run": 7}, "users": USERS * 5, "emb": EMB}, compression="lz4")


@pytest.fixture
def rounds(remote):
    """Sequential round trips to one object, counted with 20 ms per request
    (so that requests sent together overlap at the server)."""
    remote.server.latency = 0.02
    return lambda url: remote.server.rounds(remote.key(url))


@pytest.fixture(scope="module")
def arrays_first_archive():
    """Two arrays written after the records: their data is laid out first
    (canonical form, "Bulk data first"), so every node sits at the end."""
    return bfa.dumps({"users": USERS, "emb": EMB, "other": EMB[::-1] * 2})


def test_open_and_one_array_row_cost_two_round_trips_wherever_the_array_is(
        remote, rounds, arrays_first_archive):
    url = remote.put(arrays_first_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        row = arch.array("emb")[4_321]
        assert np.array_equal(row, EMB[4_321])
        # the open (the tail: the root and every array node, with the header);
        # then the row's block
        assert rounds(url) == 2
        assert remote.bytes_served(url) <= (64 << 10) + 2 * (16 << 10)


def test_open_and_one_table_cell_cost_two_round_trips_with_arrays_after_the_table(
        remote, rounds, arrays_first_archive):
    url = remote.put(arrays_first_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert arch["users"][15_000]["name"] == "user-015000"
        # the open (the table node is in the tail); the cell's offsets and its
        # string where equal lengths put it, together
        assert rounds(url) == 2
        assert remote.bytes_served(url) <= 256 << 10


def test_compressed_archive_with_large_payloads_has_a_tail_copy(big_lz4_archive):
    # the last payload repeats payload 0's last chunk: same size, same stored bytes
    layer = bfa.Archive.from_buffer(big_lz4_archive)._snap.layer
    size0, cs0, _, n0 = layer._entry(0)
    last = layer._directory().n_payloads - 1
    assert layer._entry(last)[:2] == (size0 - (n0 - 1) * cs0, cs0)
    assert layer._entry(last)[3] == 1


def test_compressed_open_and_one_table_cell_cost_two_round_trips(remote, rounds, big_lz4_archive):
    url = remote.put(big_lz4_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert arch["users"][75_000]["name"] == "user-015000"
        # the open (the tail holds the tail copy: the last chunk of the nodes,
        # with the root and the table node); the cell's offsets and string (a
        # 32 KiB chunk each), together
        assert rounds(url) == 2
        assert remote.bytes_served(url) <= (64 + 16 + 2 * 48) << 10


def test_compressed_open_and_one_array_row_cost_two_round_trips(remote, rounds, big_lz4_archive):
    url = remote.put(big_lz4_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert np.array_equal(arch.array("emb")[4_321], EMB[4_321])
        # the open (64 + 16 KiB, the tail copy in it); the row (its data is
        # stored raw: arange floats do not shrink by 1/8): one 16 KiB block
        assert rounds(url) == 2
        assert remote.bytes_served(url) <= (64 + 16 + 16) << 10


def test_without_its_tail_copy_a_compressed_row_costs_three_round_trips(remote, rounds):
    # the same archive but the copy's payload entry altered (its size): not a
    # copy any more, so the root comes from payload 0's own chunks
    data = bytearray(bfa.dumps({"users": USERS * 5, "emb": EMB}, compression="lz4"))
    layer = bfa.Archive.from_buffer(bytes(data))._snap.layer
    d = layer._directory()
    at = d.payloads_off + (d.n_payloads - 1) * 40
    struct.pack_into("<Q", data, at + 8, 2 * layer._entry(0)[1])  # chunk_size: no longer payload 0's
    url = remote.put(bytes(data))
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert np.array_equal(arch.array("emb")[4_321], EMB[4_321])
        assert rounds(url) == 3


def test_a_damaged_tail_copy_is_reported_never_read(remote):
    data = bytearray(bfa.dumps({"users": USERS * 5, "emb": EMB}, compression="lz4"))
    layer = bfa.Archive.from_buffer(bytes(data))._snap.layer
    d = layer._directory()
    first = layer._entry(d.n_payloads - 1)[2]
    off = struct.unpack_from("<Q", data, d.chunks_off + first * 32)[0]
    data[off + 100] ^= 0x01  # inside the copy only: payload 0 itself is intact
    url = remote.put(bytes(data))
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch .* the tail copy of payload 0"):
        bfa.Archive.open(url, storage_options=remote.storage_options)  # the root is in it
    with bfa.Archive.from_buffer(bytes(data)) as local:  # a local reader never reads the copy
        assert np.array_equal(local.array("emb")[7], EMB[7])
        with pytest.raises(bfa.ArchiveError, match="checksum"):
            local.verify()


def test_compressed_nodes_stored_small_come_whole_with_the_first_read(remote, rounds):
    data = bfa.dumps({"users": USERS[:6_000], "emb": EMB}, compression="lz4")
    url = remote.put(data)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert arch["users"][1_500]["name"] == "user-001500"
        # the open (the root in the tail copy); all the other nodes (stored
        # in at most 128 KiB, 16 KiB blocks)
        assert rounds(url) == 2
        assert remote.bytes_served(url) <= (64 + 16 + 128 + 16) << 10
        assert arch["users"][17]["score"] == 17 / 4  # any other node: no request
        assert rounds(url) == 2


def test_compressed_nodes_held_by_the_head_and_the_tail_copy_cost_no_round_trip(remote, rounds):
    # 3 chunks of nodes: the first in the head block fetched at open, the
    # last two in the tail copy
    data = bfa.dumps({"users": USERS[:2_000], "emb": EMB}, compression="lz4")
    url = remote.put(data)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert arch["users"][1_500]["name"] == "user-001500"
        assert arch["users"][17]["score"] == 17 / 4
        assert rounds(url) == 1
        assert remote.requests(url) == 2


def test_compressed_nodes_are_fetched_and_decoded_chunk_by_chunk(remote):
    data = bfa.dumps({"users": USERS * 10}, compression="lz4", chunk_size=64 << 10)
    url = remote.put(data)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        assert arch["users"][45_000]["name"] == "user-005000"
        assert arch["users"][45_000]["score"] == 5_000 / 4
        assert remote.bytes_served(url) < len(data) // 4
        assert arch.to_python() == {"users": USERS * 10}


def test_views_of_a_url_archive_pickle_by_reference(remote, big_archive):
    import pickle

    url = remote.put(big_archive)
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        users, handle = arch["users"], arch.array("emb")
        blob = pickle.dumps((users, handle))
        assert len(blob) < 4096 and url.encode() in blob
    users2, handle2 = pickle.loads(blob)
    assert users2[19_999]["name"] == "user-019999"
    assert np.array_equal(handle2[77], EMB[77])
    remote.put(bfa.dumps({"users": USERS[:5]}), url)  # replaced: the pickle names the old one
    with pytest.raises(bfa.ArchiveError, match="changed"):
        pickle.loads(blob)


def test_cache_bytes_bounds_the_block_cache_of_array_reads(remote):
    emb = np.arange(2_000_000, dtype=np.float32).reshape(-1, 100)  # 8 MB
    url = remote.put(bfa.dumps({"emb": emb}))
    with bfa.Archive.open(url, storage_options=remote.storage_options,
                          cache_bytes=256 << 10) as arch:
        handle = arch.array("emb")
        for lo in range(0, 20_000, 2_000):
            assert np.array_equal(handle[lo:lo + 2_000], emb[lo:lo + 2_000])
        cache = arch._snap.image.remote._cache
        assert 0 < cache.nbytes <= 256 << 10


def test_large_array_reads_go_straight_into_one_buffer(remote):
    emb = np.arange(4_000_000, dtype=np.float32)  # 16 MB: two 8 MiB requests, no cached blocks
    url = remote.put(bfa.dumps({"emb": emb}))
    with bfa.Archive.open(url, storage_options=remote.storage_options) as arch:
        before = remote.requests(url)
        got = arch["emb"]
        assert np.array_equal(got, emb) and not got.flags.writeable
        assert remote.requests(url) - before <= 3  # the node's block, then the data
        assert arch._snap.image.remote._cache.nbytes < 1 << 20
