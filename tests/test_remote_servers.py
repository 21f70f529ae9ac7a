"""The test servers themselves (tests/support/servers.py): ranges, ETags,
If-Match, counting and each injected fault, seen by a plain HTTP client."""
import http.client
import threading

import pytest

from tests.support.servers import Fault, RangeServer, S3Server

DATA = bytes(range(256)) * 40  # 10,240 bytes


def get(server, name, headers=None, method="GET"):
    host, port = server.endpoint[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, f"/{name}", headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


@pytest.fixture
def served(http_server):
    name = f"srv-{threading.get_ident()}-{len(http_server.objects)}"
    http_server.put(name, DATA)
    return http_server, name


def test_range_is_served_with_its_content_range(served):
    server, name = served
    status, headers, body = get(server, name, {"Range": "bytes=100-199"})
    assert (status, headers["Content-Range"], body) == (206, "bytes 100-199/10240", DATA[100:200])


def test_suffix_range_gives_the_tail_and_the_size(served):
    server, name = served
    status, headers, body = get(server, name, {"Range": "bytes=-50"})
    assert (status, headers["Content-Range"], body) == (206, "bytes 10190-10239/10240", DATA[-50:])


def test_range_past_the_end_is_416(served):
    server, name = served
    status, headers, _ = get(server, name, {"Range": "bytes=20000-"})
    assert (status, headers["Content-Range"]) == (416, "bytes */10240")


def test_if_match_mismatch_is_412(served):
    server, name = served
    assert get(server, name, {"If-Match": '"other"'})[0] == 412
    assert get(server, name, {"If-Match": server.objects[name][1]})[0] == 200


def test_head_sends_the_size_and_no_body(served):
    server, name = served
    status, headers, body = get(server, name, method="HEAD")
    assert (status, headers["Content-Length"], body) == (200, "10240", b"")


def test_requests_and_bytes_are_counted_per_object(served):
    server, name = served
    get(server, name, {"Range": "bytes=0-9"})
    get(server, name, {"Range": "bytes=-5"})
    assert (server.requests(name), server.bytes_served(name)) == (2, 15)


def test_error_fault_answers_500_then_serves(served):
    server, name = served
    server.add_fault(Fault("error", name, times=2))
    assert [get(server, name)[0] for _ in range(3)] == [500, 500, 200]


def test_short_fault_sends_half_the_range(served):
    server, name = served
    server.add_fault(Fault("short", name))
    status, headers, body = get(server, name, {"Range": "bytes=0-99"})
    assert (status, headers["Content-Range"], body) == (206, "bytes 0-99/10240", DATA[:50])


def test_drop_fault_closes_the_connection_mid_body(served):
    server, name = served
    server.add_fault(Fault("drop", name))
    with pytest.raises(http.client.IncompleteRead):
        get(server, name, {"Range": "bytes=0-99"})


def test_replace_fault_serves_a_new_object_from_the_kth_request(served):
    server, name = served
    server.add_fault(Fault("replace", name, after=1, data=b"new"))
    first = get(server, name)
    second = get(server, name)
    assert (first[2], second[2]) == (DATA, b"new")
    assert first[1]["ETag"] != second[1]["ETag"]


def test_latency_is_added_to_every_request(served):
    import time

    server, name = served
    server.latency = 0.2
    try:
        t = time.perf_counter()
        get(server, name)
        assert time.perf_counter() - t >= 0.2
    finally:
        server.latency = 0.0


@pytest.mark.parametrize("cls", [RangeServer, S3Server])
def test_stop_leaves_no_thread_behind_with_a_connection_open(cls):
    server = cls().start()
    server.put("bkt/k" if cls is S3Server else "k", b"x")
    host, port = server.endpoint[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)  # kept alive
    conn.request("GET", "/bkt/k" if cls is S3Server else "/k")
    conn.getresponse().read()
    server.stop()
    conn.close()
    assert server.threads_alive() == []
    assert server.endpoint.startswith("http://127.0.0.1:")


def test_s3_server_counts_and_injects_faults_at_the_server(s3_server):
    s3_server.put("bkt/counted", DATA)
    s3_server.add_fault(Fault("short", "bkt/counted"))
    got = s3_server.client(internal=False).get_object(Bucket="bkt", Key="counted", Range="bytes=0-99")
    assert (got["ContentRange"], got["Body"].read()) == ("bytes 0-99/10240", DATA[:50])
    assert (s3_server.requests("bkt/counted"), s3_server.bytes_served("bkt/counted")) == (1, 50)


def test_sequential_requests_are_separate_rounds_and_concurrent_ones_one(served):
    import concurrent.futures
    import time

    server, name = served
    server.latency = 0.05
    try:
        server.reset()
        get(server, name, {"Range": "bytes=0-9"})
        get(server, name, {"Range": "bytes=10-19"})
        assert server.rounds(name) == 2
        server.reset()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:  # three at once: one round
            list(pool.map(lambda _: get(server, name, {"Range": "bytes=0-9"}), range(3)))
        time.sleep(0.06)  # then one more, after all three were answered
        get(server, name)
        assert (server.requests(name), server.rounds(name), server.rounds()) == (4, 2, 2)
    finally:
        server.latency = 0.0
