"""Real servers for the remote-archive tests, on 127.0.0.1 (a free port) only.

``RangeServer``: a small range-capable static HTTP server (stdlib
``ThreadingHTTPServer``) serving named objects from memory. ``S3Server``: moto's
``ThreadedMotoServer`` with its WSGI app wrapped by the same counting and fault
injecting layer. Both count requests and body bytes per object (``stats``), can
add a fixed latency to every request and inject the faults of ``Fault``; both
close their client connections and join every thread they started on ``stop``.

Counting on S3 is done at the server, in a WSGI middleware around moto's app:
it sees what goes over the wire (every retry botocore makes, every body byte
sent), which a client-side botocore event hook would not (a retry inside
botocore, a body cut short). ``stats`` keys are the object's path: the name for
``RangeServer``, ``bucket/key`` for ``S3Server``.
"""
from __future__ import annotations

import hashlib
import http.server
import itertools
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

_ETAGS = itertools.count(1)


@dataclass
class Fault:
    """One injected fault, for requests of ``method`` to one object: after
    letting ``after`` such requests through, the next ``times`` ones get it.

    kind: ``"drop"`` sends the headers and half the body, then closes the
    connection; ``"short"`` sends a complete response whose body is half the
    range (Content-Length says so, Content-Range still claims the whole
    range); ``"error"`` answers ``status``; ``"replace"`` replaces the object
    by ``data`` (a new ETag) before the request is served, and for good."""
    kind: str
    key: str
    times: int = 1
    after: int = 0
    status: int = 500
    data: bytes = b""
    method: str = "GET"


@dataclass
class Stats:
    requests: int = 0
    bytes: int = 0
    methods: list[str] = field(default_factory=list)
    # (start, sent) of each request, time.perf_counter(): from its arrival to
    # the moment its response is handed to the socket (before the client has it)
    spans: list[tuple[float, float]] = field(default_factory=list)


class _Traffic:
    """The counting, latency and fault plan both servers share."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.stats: dict[str, Stats] = {}
        self.faults: list[Fault] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests served at once
        self._started = threading.local()  # this handler thread's request: its arrival time

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def requests(self, key: str | None = None, method: str | None = None) -> int:
        """Requests counted (for one object, of one method)."""
        with self.lock:
            chosen = [self.stats[key]] if key is not None else list(self.stats.values())
            return sum(len([m for m in s.methods if method in (None, m)]) for s in chosen
                       if s is not None)

    def bytes_served(self, key: str | None = None) -> int:
        with self.lock:
            if key is not None:
                return self.stats[key].bytes if key in self.stats else 0
            return sum(s.bytes for s in self.stats.values())

    def rounds(self, key: str | None = None) -> int:
        """Sequential round trips counted (for one object, or all): requests
        whose spans overlap were in flight together and count as one round;
        a request that starts after every earlier one was answered starts a
        new round (a client waits for an answer before its next request)."""
        with self.lock:
            chosen = list(self.stats.values()) if key is None else [self.stats[key]] if key in self.stats else []
            spans = sorted(span for s in chosen for span in s.spans)
        count, reach = 0, float("-inf")
        for start, end in spans:
            if start > reach:
                count += 1
            reach = max(reach, end)
        return count

    def reset(self) -> None:
        with self.lock:
            self.stats.clear()
            self.peak_in_flight = 0

    def _begin(self, method: str, key: str) -> Fault | None:
        """Count a request, sleep the latency, return the fault it gets."""
        self._started.at = time.perf_counter()
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            s = self.stats.setdefault(key, Stats())
            s.requests += 1
            s.methods.append(method)
            for f in self.faults:
                if f.key == key and f.method == method and f.times > 0:
                    if f.after > 0:
                        f.after -= 1
                        return None
                    f.times -= 1
                    return f
        return None

    def _sending(self, key: str, n: int) -> None:
        """Count a response's body, before it is sent (a client that has it
        finds it counted), and end the request's span there."""
        start = getattr(self._started, "at", None)
        sent = time.perf_counter()
        with self.lock:
            s = self.stats.setdefault(key, Stats())
            s.bytes += n
            s.spans.append((sent if start is None else start, sent))

    def _end(self) -> None:
        """End the request ``_begin`` counted."""
        with self.lock:
            self.in_flight -= 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _slice(range_header: str | None, size: int) -> tuple[int, int] | None | str:
    """The [start, stop) a Range header selects; None: the whole object;
    "416": unsatisfiable."""
    if not range_header:
        return None
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
    if m is None or (not m[1] and not m[2]):
        return None  # (multiple ranges, garbage: the whole object, as S3 does)
    if not m[1]:
        n = int(m[2])
        return (max(size - n, 0), size) if n and size else "416"
    start = int(m[1])
    if start >= size:
        return "416"
    return start, min(int(m[2]) + 1, size) if m[2] else size


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as production servers set it: the headers and the body are
    # two writes, and Nagle's algorithm would hold the body back until the
    # client's delayed ACK (~40 ms) on a fresh connection
    disable_nagle_algorithm = True
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.server.owner._sending(self._key, len(body))
        self.wfile.write(body)

    def _serve(self, body: bool) -> None:
        owner = self.server.owner
        key = self.path.lstrip("/").split("?")[0]
        fault = owner._begin(self.command, key)
        self._key = key
        try:
            self._answer(owner, key, fault, body)
        finally:
            owner._end()

    def _answer(self, owner: "RangeServer", key: str, fault: Fault | None, body: bool) -> None:
        if fault is not None and fault.kind == "replace":
            owner.put(key, fault.data)
            fault = None
        if fault is not None and fault.kind == "error":
            return self._send(fault.status, {"Content-Length": "0"})
        with owner.lock:
            obj = owner.objects.get(key)
        if obj is None:
            return self._send(404, {"Content-Length": "0"})
        data, etag = obj
        match = self.headers.get("If-Match")
        if match is not None and match.strip() not in ("*", etag):
            return self._send(412, {"Content-Length": "0", "ETag": etag})
        chosen = _slice(self.headers.get("Range"), len(data))
        if chosen == "416":
            return self._send(416, {"Content-Length": "0", "Content-Range": f"bytes */{len(data)}"})
        headers = {"ETag": etag, "Accept-Ranges": "bytes"}
        if isinstance(chosen, tuple):
            start, stop = chosen
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        else:
            start, stop, status = 0, len(data), 200
        payload = data[start:stop] if body else b""
        if fault is not None and fault.kind == "short":
            payload = payload[:len(payload) // 2]
        headers["Content-Length"] = str(len(payload) if body else stop - start)
        if fault is not None and fault.kind == "drop":
            self._send(status, headers, payload[:len(payload) // 2])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(status, headers, payload)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = False  # joined by server_close (block_on_close)
    owner: "RangeServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # (a client that gave up)
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.owner.lock:
            self.owner._connections.append(request)
        super().process_request(request, client_address)


def _close_all(connections: list[Any]) -> None:
    for conn in connections:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class RangeServer(_Traffic):
    """A static HTTP/1.1 server of in-memory objects on 127.0.0.1:<free port>:
    GET and HEAD, ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-N`` (206
    with ``Content-Range: bytes a-b/size``, 416 past the end), ``ETag``,
    ``If-Match`` (412 on a mismatch). ``url(name)`` is an object's URL."""

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(latency)
        self.objects: dict[str, tuple[bytes, str]] = {}
        self._connections: list[Any] = []
        self._server = _HTTPServer(("127.0.0.1", _free_port()), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, name: str) -> str:
        return f"{self.endpoint}/{name}"

    def put(self, name: str, data: bytes) -> str:
        """Store (or replace) an object; return its new ETag."""
        etag = f'"{hashlib.sha1(data).hexdigest()[:16]}-{next(_ETAGS)}"'
        with self.lock:
            self.objects[name] = (bytes(data), etag)
        return etag

    def start(self) -> "RangeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        with self.lock:
            _close_all(self._connections)
        self._server.server_close()  # joins the handler threads
        self._thread.join()

    def threads_alive(self) -> list[threading.Thread]:
        """Threads this server started that still run (none after ``stop``)."""
        threads = [self._thread, *getattr(self._server, "_threads", [])]
        return [t for t in threads if t.is_alive()]


class S3Server(_Traffic):
    """moto's S3 on 127.0.0.1:<free port> (``ThreadedMotoServer``), its WSGI app
    wrapped to count and inject faults (``S3Server.endpoint`` for
    ``s3fs.S3FileSystem(endpoint_url=...)``; any key and secret work)."""

    KEY = "testing"
    SECRET = "testing"

    def __init__(self, latency: float = 0.0) -> None:
        from moto.server import ThreadedMotoServer

        super().__init__(latency)
        self._connections: list[Any] = []
        owner = self

        class _Moto(ThreadedMotoServer):
            def _server_entry(self) -> None:
                from moto.moto_server.werkzeug_app import (DomainDispatcherApplication,
                                                           MotoRequestHandler,
                                                           create_backend_app)
                from werkzeug.serving import make_server

                class Quiet(MotoRequestHandler):
                    def log(self, type: str, message: str, *args: Any) -> None:
                        pass

                app = owner._wrap(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(self._ip_address, self._port, app, True,
                                           request_handler=Quiet)
                self._server.daemon_threads = False  # type: ignore[attr-defined]  # (threaded): joined by server_close
                self._server_ready_event.set()
                self._server.serve_forever()

        self._moto = _Moto(ip_address="127.0.0.1", port=_free_port(), verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._moto._port}"

    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint, "key": self.KEY, "secret": self.SECRET}

    def client(self, internal: bool = True) -> Any:
        """A boto3 client; an ``internal`` one's requests are neither counted
        nor faulted."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.KEY, aws_secret_access_key=self.SECRET,
                            config=Config(user_agent_extra="bfa-test-internal" if internal else None,
                                          retries={"max_attempts": 1}))

    def put(self, key: str, data: bytes) -> str:
        """Store (or replace) ``bucket/key`` (the bucket created if needed);
        return its ETag."""
        bucket, name = key.split("/", 1)
        c = self.client()
        try:
            c.create_bucket(Bucket=bucket)
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
        return str(c.put_object(Bucket=bucket, Key=name, Body=data)["ETag"])

    def start(self) -> "S3Server":
        self._moto.start()
        return self

    def stop(self) -> None:
        server = self._moto._server
        assert server is not None
        server.shutdown()
        with self.lock:
            _close_all(self._connections)
        server.server_close()  # joins the handler threads
        self._moto.stop()

    def threads_alive(self) -> list[threading.Thread]:
        threads = [self._moto._thread, *getattr(self._moto._server, "_threads", [])]
        return [t for t in threads if t is not None and t.is_alive()]

    def _wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            sock = environ.get("werkzeug.socket")
            with self.lock:
                if sock is not None and sock not in self._connections:
                    self._connections.append(sock)
            if "bfa-test-internal" in environ.get("HTTP_USER_AGENT", ""):
                return app(environ, start_response)
            key = environ.get("PATH_INFO", "").lstrip("/")
            fault = self._begin(environ["REQUEST_METHOD"], key)
            if fault is not None and fault.kind == "replace":
                self.put(key, fault.data)
                fault = None
            if fault is not None and fault.kind == "error":
                body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                start_response(f"{fault.status} Injected", [("Content-Type", "application/xml"),
                                                            ("Content-Length", str(len(body)))])
                self._sending(key, len(body))
                self._end()
                return [body]
            captured: list[Any] = []

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured[:] = [status, headers]
                return lambda data: None

            try:
                payload = b"".join(app(environ, capture))
                status, headers = captured
            except BaseException:
                self._end()
                raise
            return self._respond(key, fault, status, headers, payload, sock, start_response)

        return middleware

    def _respond(self, key: str, fault: Fault | None, status: str, headers: list[tuple[str, str]],
                 payload: bytes, sock: Any, start_response: Callable[..., Any]) -> Iterator[bytes]:
        if fault is not None and fault.kind in ("short", "drop") and status.startswith("2"):
            half = payload[:len(payload) // 2]
            if fault.kind == "short":
                payload = half
            headers = [(k, str(len(payload)) if k.lower() == "content-length" else v)
                       for k, v in headers]
            start_response(status, headers)
            if fault.kind == "drop":
                self._sending(key, len(half))
                try:
                    yield half
                finally:
                    self._end()
                sock.shutdown(socket.SHUT_RDWR)
                return
        else:
            start_response(status, headers)
        self._sending(key, len(payload))
        try:
            yield payload
        finally:
            self._end()


class Remote:
    """One test's view of a running server: ``put`` stores an object under a
    fresh name and returns its URL; ``key(url)`` is its ``stats`` key."""

    _names = itertools.count()

    def __init__(self, server: RangeServer | S3Server) -> None:
        self.server = server
        self.kind = "http" if isinstance(server, RangeServer) else "s3"
        self.storage_options: dict[str, Any] = (
            {} if isinstance(server, RangeServer) else server.storage_options())

    def url(self, name: str | None = None) -> str:
        """The URL of a fresh (or the named) object; nothing stored."""
        name = name or f"obj-{next(self._names)}.bfa"
        if isinstance(self.server, RangeServer):
            return self.server.url(name)
        return f"s3://bkt/{name}"

    def key(self, url: str) -> str:
        if isinstance(self.server, RangeServer):
            return url[len(self.server.endpoint) + 1:]
        return url[len("s3://"):]

    def put(self, data: bytes, url: str | None = None) -> str:
        url = url or self.url()
        self.server.put(self.key(url), data)
        return url

    def delete(self, url: str) -> None:
        if isinstance(self.server, RangeServer):
            with self.server.lock:
                del self.server.objects[self.key(url)]
        else:
            bucket, key = self.key(url).split("/", 1)
            self.server.client().delete_object(Bucket=bucket, Key=key)

    def fault(self, url: str, kind: str, **kw: Any) -> None:
        self.server.add_fault(Fault(kind, self.key(url), **kw))

    def requests(self, url: str, method: str | None = None) -> int:
        return self.server.requests(self.key(url), method)

    def bytes_served(self, url: str) -> int:
        return self.server.bytes_served(self.key(url))
