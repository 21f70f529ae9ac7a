"""Archives in object storage: URLs, fsspec file systems, and a byte-range
reader of one remote object pinned to one version.

``fsspec`` and its clients (``s3fs``, ``aiohttp``; ``gcsfs``, ``adlfs``...) are
optional (``pip install "bfast-archive[remote]"``) and imported on first use.

``RemoteFile(url)`` is the byte source of a remote archive. Opening it costs one
round trip: a suffix range for the tail (``bytes=-N``: the size and the
object's identity -- ETag, version -- come with it, no HEAD) and the first 64
bytes, issued together. ``read``/``read_ranges`` then serve aligned blocks from
an LRU cache bounded in bytes, fetching missing blocks with adjacent ones
coalesced into one request and independent requests issued concurrently.
Every later request is pinned to the identity seen at open (``If-Match`` on
HTTP and S3; on other file systems the identity in ``info()`` is compared
before and after the read), and each response's size and ETag are compared
with it: an object replaced while it is read raises ``ArchiveError`` ("changed
while reading"), never bytes of two versions. Transient failures (5xx, a
dropped connection, a short body, a timeout) are retried a bounded number of
times; other errors keep the client's exception type and name the URL.
"""
from __future__ import annotations

import asyncio
import copy
import re
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from ._native import uninit_buffer
from ._urls import is_url, local_path
from .errors import ArchiveError

__all__ = ["RemoteFile", "is_url", "local_path", "open_filesystem", "write_object"]

HEADER_BYTES = 64  # the archive's fixed header
_INSTALL = 'pip install "bfast-archive[remote]"'
_PART_SIZE = 50 << 20  # S3 multipart part size (s3fs's default; tests make it small)


def _require(module: str) -> Any:
    """Import ``module``, or raise ImportError naming it and the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(f"reading or writing a URL needs the package {package!r}: {_INSTALL}",
                          name=package) from exc


def open_filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec file system for ``url`` and the object's path in it;
    ``storage_options`` go to the file system as in pandas and Dask (e.g.
    ``{"endpoint_url": ..., "key": ..., "secret": ...}`` for s3fs). Cost:
    imports fsspec (and the client) on first use; no request."""
    core = _require("fsspec.core")
    try:
        fs, path = core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:  # fsspec's own: "Install s3fs to access S3"
        raise ImportError(f"{url}: {exc} ({_INSTALL} for s3:// and http(s)://)",
                          name=exc.name) from exc
    return fs, path


@dataclass(frozen=True)
class _Got:
    """One response: ``body`` holds bytes ``start...`` of an object of
    ``size`` bytes (-1: not said) whose identity is ``tag``."""
    body: bytes
    start: int
    size: int
    tag: str | None
    version: str | None = None


class _Changed(Exception):
    """The server refused a request pinned to the open version (412)."""


class _Short(OSError):
    """A response with fewer or other bytes than asked for (retried)."""


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _parse_range(header: str | None, body: bytes) -> tuple[int, int]:
    """(start, size) from a Content-Range header; a 200 is the whole object."""
    if header is None:
        return 0, len(body)
    m = _CONTENT_RANGE.fullmatch(header.strip())
    if m is None:
        return 0, -1
    return int(m[1]), -1 if m[3] == "*" else int(m[3])


def _range_header(start: int, stop: int) -> str:
    return f"bytes={start}" if start < 0 else f"bytes={start}-{stop - 1}"


class _HTTP:
    """GET with Range and If-Match through fsspec's HTTP file system (aiohttp)."""

    def __init__(self, fs: Any, url: str) -> None:
        self.fs, self.url = fs, url

    async def get(self, start: int, stop: int, pin: str | None) -> _Got:
        kw = dict(self.fs.kwargs)
        headers = dict(kw.pop("headers", None) or {})
        headers["Range"] = _range_header(start, stop)
        if pin is not None and pin.startswith('"'):  # a strong ETag (If-Match is strong)
            headers["If-Match"] = pin
        session = await self.fs.set_session()
        async with session.get(self.fs.encode_url(self.url), headers=headers, **kw) as r:
            if r.status == 412:
                raise _Changed()
            if r.status == 416:  # nothing at start (an empty object)
                return _Got(b"", max(start, 0), _parse_range(
                    (r.headers.get("Content-Range") or "").replace("*", "0-0"), b"")[1], None)
            self.fs._raise_not_found_for_status(r, self.url)
            body = await r.read()
            offset, size = _parse_range(r.headers.get("Content-Range"), body)
            tag = r.headers.get("ETag") or r.headers.get("Last-Modified")
            return _Got(body, offset, size, tag)


class _S3:
    """GetObject with Range and IfMatch through s3fs (aiobotocore)."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.bucket, self.key, self.version = fs.split_path(path)

    async def get(self, start: int, stop: int, pin: str | None) -> _Got:
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key,
                              "Range": _range_header(start, stop)}
        if pin is not None:
            kw["IfMatch"] = pin
        if self.version:
            kw["VersionId"] = self.version
        try:
            resp = await self.fs._call_s3("get_object", **kw)
        except OSError as exc:
            code = _s3_code(exc)
            if code in ("PreconditionFailed", "412"):
                raise _Changed() from None
            if code == "InvalidRange":  # nothing at start (an empty object)
                return _Got(b"", max(start, 0), -1, None)
            raise
        body = resp["Body"]
        try:
            data = await body.read()
        finally:
            body.close()
        offset, size = _parse_range(resp.get("ContentRange"), data)
        return _Got(data, offset, size, resp.get("ETag"), resp.get("VersionId"))


def _s3_code(exc: BaseException) -> str | None:
    response = getattr(exc.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return None if code is None else str(code)


_IDENTITY_KEYS = ("ETag", "etag", "generation", "version_id", "VersionId", "mtime", "created", "ino")


class _Generic:
    """Any other fsspec file system (memory, gcs, az...): ``cat_file`` with the
    identity from ``info()`` compared before and after (not one atomic request)."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path

    def _tag(self) -> tuple[int, str]:
        info = self.fs.info(self.path)
        return int(info["size"]), repr([info[k] for k in _IDENTITY_KEYS if k in info])

    def _get(self, start: int, stop: int, pin: str | None) -> _Got:
        size, tag = self._tag()
        if pin is not None and tag != pin:
            raise _Changed()
        begin = max(size + start, 0) if start < 0 else min(start, size)
        body = bytes(self.fs.cat_file(self.path, start=begin, end=size if start < 0 else min(stop, size)))
        if self._tag() != (size, tag):
            raise _Changed()
        return _Got(body, begin, size, tag)

    async def get(self, start: int, stop: int, pin: str | None) -> _Got:
        return await asyncio.to_thread(self._get, start, stop, pin)


def _transient(exc: BaseException) -> bool:
    """A failure worth one more try: a timeout, a dropped connection, a short
    body, a 5xx or 429 answer."""
    if isinstance(exc, (_Short, asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        if isinstance(exc, aiohttp.ClientResponseError):
            return bool(exc.status >= 500 or exc.status == 429)
        if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
            return True
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None and isinstance(exc, (botocore.HTTPClientError, botocore.ConnectionError,
                                                 botocore.IncompleteReadError)):
        return True
    return False


def _named(exc: BaseException, url: str) -> BaseException:
    """``exc`` with a message naming ``url``, of the same type: a copy with
    the URL in its arguments, or (a type whose message ignores them) an
    instance of a subclass made here whose message adds it."""
    if url in str(exc):
        return exc
    try:
        new = copy.copy(exc)
        if isinstance(new, OSError) and new.errno is not None and new.strerror:
            new.filename = url
        else:
            new.args = (f"{url}: {exc}",)
        if url in str(new):
            return new.with_traceback(exc.__traceback__)
    except Exception:  # a type that does not copy
        pass
    cls = type(exc)
    text = f"{url}: {exc}"
    named = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                        "__str__": lambda self: text,
                                        "__reduce__": lambda self: exc.__reduce__()})
    renamed: BaseException = cls.__new__(named, *exc.args)
    renamed.args = exc.args
    renamed.__dict__.update(getattr(exc, "__dict__", {}))
    return renamed.with_traceback(exc.__traceback__)


class _Blocks:
    """An LRU cache of aligned blocks, bounded in bytes (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.nbytes = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: int) -> bytes | None:
        with self._lock:
            block = self._blocks.get(index)
            if block is not None:
                self._blocks.move_to_end(index)
            return block

    def put(self, index: int, block: bytes) -> None:
        with self._lock:
            if len(block) > self.limit or index in self._blocks:
                return
            self._blocks[index] = block
            self.nbytes += len(block)
            while self.nbytes > self.limit:
                self.nbytes -= len(self._blocks.popitem(last=False)[1])


class RemoteFile:
    """One remote object read by byte range, pinned to the version seen at open.

    Opening costs one round trip (two concurrent requests: the last ``tail``
    bytes by a suffix range, which also gives the size and identity, and the
    first ``head`` bytes, at least the 64 of the header), kept as ``tail`` and
    ``head``. ``read(offset, n)`` and
    ``read_ranges`` fetch aligned blocks of ``block_size`` bytes not in the
    LRU cache (at most ``cache_bytes`` bytes kept), adjacent missing blocks in
    one request of at most ``max_request`` bytes, at most ``concurrency``
    requests at a time. Each request is retried ``retries`` times on a
    transient failure and given up after ``timeout`` seconds per attempt.

    ``requests`` and ``bytes_fetched`` count the requests sent (retries
    included) and the body bytes received. ``size``, ``etag`` (the identity:
    ETag, or what identifies the version on that file system) and ``version``
    (S3's version id, when the bucket keeps versions) describe the object.
    Thread-safe: requests run on fsspec's event loop."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *,
                 block_size: int = 64 << 10, cache_bytes: int = 64 << 20, tail: int = 64 << 10,
                 max_request: int = 8 << 20, concurrency: int = 8, retries: int = 3,
                 timeout: float = 30.0, head: int = HEADER_BYTES) -> None:
        if block_size <= 0 or tail <= 0 or max_request < block_size or concurrency <= 0:
            raise ValueError("block_size, tail and concurrency must be positive, "
                             "max_request at least block_size")
        self.url = url
        self.block_size, self.max_request, self.concurrency = block_size, max_request, concurrency
        self.retries, self.timeout = retries, timeout
        self.requests = 0
        self.bytes_fetched = 0
        self._cache = _Blocks(cache_bytes)
        fs, path = open_filesystem(url, storage_options)
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self._source: _HTTP | _S3 | _Generic
        if protocols & {"http", "https"}:
            self._source, self._loop = _HTTP(fs, path), fs.loop
        elif protocols & {"s3", "s3a"}:
            self._source, self._loop = _S3(fs, path), fs.loop
        else:
            self._source, self._loop = _Generic(fs, path), _require("fsspec.asyn").get_loop()
        self.size = -1
        self.etag: str | None = None
        self.version: str | None = None
        tail_got, head_got = self._run(self._gather([(-tail, 0), (0, max(head, HEADER_BYTES))]))
        sizes = {g.size for g in (tail_got, head_got)} - {-1}
        if len(sizes) > 1 or (len(sizes) == 1 and tail_got.tag != head_got.tag and head_got.body):
            raise self._changed()
        self.size = sizes.pop() if sizes else 0
        self.etag, self.version = tail_got.tag, tail_got.version
        self.tail_start = tail_got.start
        self.tail = tail_got.body
        self.head = head_got.body
        if self.tail_start + len(self.tail) != self.size or len(self.head) != min(self.size, max(head, HEADER_BYTES)):
            raise _named(_Short(f"short read at open: {len(self.tail)} bytes of the tail"), url)

    def __enter__(self) -> "RemoteFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the cached blocks (the file system's connections stay pooled)."""
        self._cache = _Blocks(self._cache.limit)

    def __repr__(self) -> str:
        return f"<RemoteFile {self.url} size={self.size} etag={self.etag}>"

    def _changed(self) -> ArchiveError:
        return ArchiveError(f"{self.url}: the object changed while reading (another version "
                            f"was written or it was removed); open it again")

    def _run(self, coroutine: Awaitable[Any]) -> Any:
        """Run ``coroutine`` on the file system's event loop; its result, or
        its exception as raised (fsspec's ``sync`` would turn a TimeoutError
        into a bare FSTimeoutError)."""
        async def wrapper() -> tuple[Any, BaseException | None]:
            try:
                return await coroutine, None
            except Exception as exc:
                return None, exc

        result, exc = _require("fsspec.asyn").sync(self._loop, wrapper)
        if exc is not None:
            raise exc
        return result

    async def _fetch(self, start: int, stop: int) -> _Got:
        """One range (``start < 0``: the last ``-start`` bytes), verified
        against the pinned identity and its length, retried if transient."""
        for attempt in range(self.retries + 1):
            try:
                try:
                    self.requests += 1
                    got = await asyncio.wait_for(self._source.get(start, stop, self.etag), self.timeout)
                except asyncio.TimeoutError:
                    raise TimeoutError(f"no complete answer in {self.timeout} s") from None
                except _Changed:
                    raise self._changed() from None
                except FileNotFoundError:
                    if self.size >= 0:  # it existed when opened
                        raise self._changed() from None
                    raise
                self.bytes_fetched += len(got.body)
                return self._check(got, start, stop)
            except ArchiveError:
                raise
            except Exception as exc:
                if attempt == self.retries or not _transient(exc):
                    raise _named(exc, self.url) from exc.__cause__
                await asyncio.sleep(min(0.05 * 4 ** attempt, 2.0))
        raise AssertionError("unreachable")

    def _check(self, got: _Got, start: int, stop: int) -> _Got:
        size = got.size if got.size >= 0 else (len(got.body) if start <= 0 else -1)
        if self.size >= 0 and (size != self.size or got.tag != self.etag):
            raise self._changed()
        if start < 0:
            begin, end = max(size + start, 0), size
        else:
            begin, end = start, min(stop, size) if size >= 0 else stop
        if got.start != begin or len(got.body) != max(end - begin, 0):
            if got.start <= begin and got.start + len(got.body) >= end:  # (a 200: all of it)
                return _Got(got.body[begin - got.start:end - got.start], begin, size, got.tag)
            raise _Short(f"asked for bytes {begin}-{end}, got {len(got.body)} bytes at {got.start}")
        return _Got(got.body, begin, size, got.tag, got.version)

    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset``. Cost: nothing if they are in the head,
        the tail or cached blocks, else one round trip for the missing blocks."""
        return self.read_ranges([(offset, n)])[0]

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(offset, n)``, in order, fetched together: the
        missing blocks of all ranges in one round of concurrent requests
        (adjacent blocks coalesced). A range past the end raises ArchiveError."""
        bs = self.block_size
        out: list[bytes | None] = []
        wanted: set[int] = set()
        for offset, n in ranges:
            if offset < 0 or n < 0 or offset + n > self.size:
                raise ArchiveError(f"{self.url}: bytes {offset}..{offset + n} are past the end "
                                   f"of the object ({self.size} bytes)")
            if offset + n <= len(self.head):
                out.append(self.head[offset:offset + n])
            elif offset >= self.tail_start:
                out.append(self.tail[offset - self.tail_start:offset - self.tail_start + n])
            else:
                out.append(None)
                wanted.update(range(offset // bs, (offset + n - 1) // bs + 1))
        blocks: dict[int, bytes] = {}
        for i in wanted:
            block = self._cache.get(i) if i * bs < self.tail_start else None
            if block is None and i * bs >= self.tail_start:  # (inside the tail)
                block = self.tail[i * bs - self.tail_start:(i + 1) * bs - self.tail_start]
            if block is not None:
                blocks[i] = block
        missing = sorted(wanted - blocks.keys())
        runs = _runs(missing, self.max_request // bs)
        fetched = self._run(self._gather([(r[0] * bs, min((r[-1] + 1) * bs, self.size)) for r in runs]))
        for run, got in zip(runs, fetched):
            for k, i in enumerate(run):
                blocks[i] = got.body[k * bs:(k + 1) * bs]
                self._cache.put(i, blocks[i])
        for j, (offset, n) in enumerate(ranges):
            if out[j] is None:
                first = offset // bs
                data = b"".join(blocks[i] for i in range(first, (offset + n - 1) // bs + 1))
                out[j] = data[offset - first * bs:offset - first * bs + n]
        return [b if b is not None else b"" for b in out]

    def read_into(self, offset: int, n: int) -> memoryview:
        """``n`` bytes at ``offset`` in a new writable buffer, fetched in
        requests of at most ``max_request`` bytes issued concurrently,
        bypassing the block cache (for large reads: array data, whole
        payloads). Cost: one round trip per ``concurrency`` requests; one
        copy of the bytes. The buffer is not zero-filled first (a 64 MiB
        read took ~30% longer with it): every request's body is checked to
        be its whole range before it is copied in, and the buffer is handed
        on only when all of them arrived."""
        if offset < 0 or n < 0 or offset + n > self.size:
            raise ArchiveError(f"{self.url}: bytes {offset}..{offset + n} are past the end "
                               f"of the object ({self.size} bytes)")
        view = uninit_buffer(n)
        parts = [(a, min(a + self.max_request, offset + n))
                 for a in range(offset, offset + n, self.max_request)]

        def into(got: _Got) -> None:
            view[got.start - offset:got.start - offset + len(got.body)] = got.body

        self._run(self._gather(parts, into))
        return view

    def read_all(self) -> bytearray:
        """The whole object, in requests of at most ``max_request`` bytes
        issued concurrently (the tail read at open reused), not cached.
        Cost: one round trip per ``concurrency`` requests; memory: the object."""
        out = bytearray(self.size)
        view = memoryview(out)
        view[self.tail_start:] = self.tail
        parts = [(a, min(a + self.max_request, self.tail_start))
                 for a in range(0, self.tail_start, self.max_request)]

        def into(got: _Got) -> None:
            view[got.start:got.start + len(got.body)] = got.body

        self._run(self._gather(parts, into))
        return out

    async def _gather(self, parts: list[tuple[int, int]],
                      each: Callable[[_Got], None] | None = None) -> list[_Got]:
        limit = asyncio.Semaphore(self.concurrency)

        async def one(start: int, stop: int) -> _Got:
            async with limit:
                got = await self._fetch(start, stop)
            if each is not None:
                each(got)
            return got

        return list(await asyncio.gather(*(one(a, b) for a, b in parts)))


def _runs(indices: list[int], longest: int) -> list[list[int]]:
    """Sorted block indices grouped into runs of consecutive ones, each at
    most ``longest`` long."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1 and len(runs[-1]) < longest:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs



def write_object(url: str, data: bytes, storage_options: dict[str, Any] | None = None) -> int:
    """Store ``data`` as the object at ``url``, atomically for readers: one PUT,
    or (S3, 100 MiB and more) a multipart upload completed only after every
    part is in and aborted on a failure, so a failed write leaves neither a
    new nor a partial object (an existing one is untouched). Return its size.
    Errors keep the client's type and name ``url``. Cost: the upload."""
    fs, path = open_filesystem(url, storage_options)
    s3 = "s3" in ({fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol))
    try:
        fs.pipe_file(path, data, **({"chunksize": _PART_SIZE} if s3 else {}))
    except Exception as exc:
        raise _named(exc, url) from exc.__cause__
    return len(data)
