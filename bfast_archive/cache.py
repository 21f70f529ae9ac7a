"""A directory of archives used as a cache, and a memoizing decorator.

    cache = bfa.Cache("~/.cache/myapp", max_bytes=10 << 30)
    cache["features:v3"] = {"ids": ids, "emb": emb}    # atomic publish
    hit = cache.get("features:v3")                     # lazy mmap'd view, None on a miss

    @bfa.memoize("~/.cache/myapp")                     # or @cache.memoize
    def features(day, model): ...                      # 2nd call: the archived result, lazily

Layout: one archive per entry, named by a digest of its key
(``<32 hex digits>.bfa``); its root is ``{"key": key, "value": value}``.
A lookup never scans the directory: the first hit on an entry in a process
is one ``open`` + ``mmap`` + header check and two dict probes; the process
then keeps the entry mapped (the 64 most recently used ones), and a repeated
hit is one ``stat`` that checks the file is still the one mapped.

Many processes may share one directory. An entry is published by
``bfa.dump`` (a temporary file in the same directory, fsync, ``os.replace``),
so a reader sees the old entry or the new one, never a partial one; two
processes publishing the same key both succeed (the last rename wins).
Eviction and ``del`` unlink files: a reader that holds a view keeps the
mapping of the file it opened, which stays intact.
"""
from __future__ import annotations

import hashlib
import logging
import mmap
import os
import time
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, overload

from ._tempfiles import is_temporary, remove_if_stray
from .errors import ArchiveError, UnsupportedTypeError
from .archive import Archive
from .tables import ArchivedTable
from .views import ArchivedDict, ArchivedList
from .writer import dump

if TYPE_CHECKING:
    import inspect

__all__ = ["Cache", "memoize", "parse_size"]

log = logging.getLogger("bfast_archive.cache")

_SUFFIX = ".bfa"
_NAME_LEN = 32 + len(_SUFFIX)           # blake2b-128 in hex, then the suffix
_RESCAN_SECONDS = 1.0                   # with max_bytes, rescan the directory at most this often
_TOUCH_NS = 1_000_000_000               # refresh an entry's mtime at most once a second
_MAPPED = 64                            # entries a Cache keeps mapped for repeated hits
_MISS = object()
_EMPTY = object()                       # a parameter without a default
_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_HEX = frozenset("0123456789abcdef")


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _is_entry(name: str) -> bool:
    return len(name) == _NAME_LEN and name.endswith(_SUFFIX) and _HEX.issuperset(name[:32])


class _Mapped:
    """An entry this process has open: the file's identity, the archive that
    keeps it mapped (and so keeps its inode from being reused), the value."""

    __slots__ = ("ino", "dev", "name", "arch", "value", "used", "touched")

    def __init__(self, st: os.stat_result, name: str, arch: Archive, value: Any,
                 now: int) -> None:
        self.ino = st.st_ino
        self.dev = st.st_dev
        self.name = name
        self.arch = arch
        self.value = value
        self.used = self.touched = now


# Values handed out again as they are: views and immutable scalars. Arrays and
# memoryviews get a fresh view of the same memory (a caller may reshape or
# release its own); anything else (sets, ...) is decoded afresh.
_SHARED = frozenset({ArchivedDict, ArchivedList, ArchivedTable, str, int, float, bool,
                     type(None), bytes, complex})


class Cache(MutableMapping[str, Any]):
    """A cache of archives in ``directory`` (``~`` expanded, created if missing).

    ``cache[key] = value`` archives ``value`` and publishes it atomically;
    ``cache.get(key)`` returns the archived value lazily, as ``Archive``
    views do: dicts as ``ArchivedDict``, lists and tuples as ``ArchivedList``,
    arrays as read-only NumPy arrays over the mapped file (no copy), bytes
    as read-only memoryviews, scalars as plain values. A view keeps its file
    mapped; call ``.to_python()`` for an independent copy. Keys are ``str``.

    ``max_bytes`` (default: no limit) bounds the total size of the entries:
    after a publish pushes the total past it, the least recently used
    entries are deleted until it fits. "Used" is the file's modification
    time, which a hit refreshes (at most once a second per entry and
    process; this process's own more recent hits count too). The entry just
    written is never evicted by its own publish, so a single value larger
    than ``max_bytes`` stays until the next publish. With several processes
    writing at once the total can pass ``max_bytes`` for a moment: each
    process rescans the directory at most once a second, or as soon as its
    own writes take it past the limit.

    A corrupt or truncated entry (crash, disk error, a foreign file) is
    treated as a miss, removed and logged on the ``bfast_archive.cache``
    logger. Detection covers the header, the size and the entry's key; damage
    deeper inside a file is caught by the bounds checks of the reader, as an
    ``ArchiveError`` when the damaged part is read.

    ``hits`` and ``misses`` in ``stats()`` count this object's lookups;
    ``entries`` and ``bytes`` describe the directory, all processes included.

    Temporary files: a writer killed mid-publish (SIGKILL, OOM) leaves its
    hidden ``.NAME.PID.RANDOM.bfa-tmp``. It is stray as soon as its writer is
    gone (the writer's flock on it is released by the kernel; no pid or age
    is involved, so this holds across hosts sharing the directory, as far as
    their locks reach each other): every scan of the directory (``stats()``,
    ``clear()``, eviction) removes the stray ones, and counts the live ones
    in ``bytes`` and in the ``max_bytes`` budget.

    ``max_bytes`` is an int or a size such as ``"10GB"`` (10**9 bytes each),
    ``"512MiB"`` or ``"1G"`` (2**30 bytes each; see ``parse_size``). A Cache is
    a context manager: leaving the ``with`` block calls ``close()``.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int | str | None = None
                 ) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"Cache needs a directory (a str or path), "
                            f"not {type(directory).__name__}")
        max_bytes = parse_size(max_bytes)
        self.directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
        os.makedirs(self.directory, exist_ok=True)
        self.max_bytes = max_bytes
        self._prefix = os.path.join(self.directory, "")
        self._hits = self._misses = self._evictions = self._corrupt = 0
        self._estimate: int | None = None   # bytes in the directory, as last seen + own writes
        self._scanned_at = 0.0
        self._temporaries = (0, 0)          # live writers' temporary files, as last scanned
        self._mapped: OrderedDict[str, _Mapped] = OrderedDict()

    # -- paths ---------------------------------------------------------------------
    def path(self, key: str) -> str:
        """The file that holds (or would hold) the entry for ``key``."""
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(f"cache keys are str, not {type(key).__name__}")
            key = str(key)
        return self._prefix + _digest(key) + _SUFFIX

    # -- lookups -------------------------------------------------------------------
    def get(self, key: str, default: Any = None, *, model: Any = None) -> Any:
        """The archived value for ``key`` (a lazy view), or ``default`` on a miss.
        Cost: one stat for an entry this process has open, else one open +
        mmap + header check; never a directory scan, whatever the size of the
        entry or the number of entries. The payload is paged in as it is read.
        With ``model=M`` (a pydantic model class, or ``list[M]``,
        ``tuple[M, ...]``, ``dict[str, M]``): typed views, as
        ``Archive.open(path, model=M).root`` gives."""
        value = self._lookup(key, touch=True)
        if value is _MISS:
            self._misses += 1
            return default
        self._hits += 1
        if model is not None:
            from .models import slot_schema, typed_view

            ent = self._mapped.get(key)
            schema = slot_schema(ent.arch.root, "value") if ent is not None else None
            value = typed_view(value, model, schema)
        return value

    def __getitem__(self, key: str) -> Any:
        value = self._lookup(key, touch=True)
        if value is _MISS:
            self._misses += 1
            raise KeyError(key)
        self._hits += 1
        return value

    def __contains__(self, key: object) -> bool:
        """True if a valid entry for ``key`` exists (no stats, no LRU update)."""
        if not isinstance(key, str):
            return False
        return self._lookup(key, touch=False) is not _MISS

    def _lookup(self, key: str, touch: bool) -> Any:
        path = self.path(key)
        ent = self._mapped.get(key)
        if ent is not None:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                self._mapped.pop(key, None)
                return _MISS
            # The same inode as the one we hold mapped is the same file: an
            # inode that is still mapped cannot be reused by another file.
            if st.st_ino == ent.ino and st.st_dev == ent.dev:
                if touch:
                    now = time.time_ns()
                    ent.used = now
                    if now - ent.touched > _TOUCH_NS:
                        ent.touched = now
                        try:
                            os.utime(path, ns=(now, now))
                        except OSError:
                            pass
                try:
                    self._mapped.move_to_end(key)
                except KeyError:  # another thread dropped it meanwhile
                    pass
                return _fresh(ent)
            self._mapped.pop(key, None)
        return self._open(key, path, touch)

    def _open(self, key: str, path: str, touch: bool) -> Any:
        try:
            fd = os.open(path, _O_FLAGS)
        except FileNotFoundError:
            return _MISS
        try:
            st = os.fstat(fd)
            now = time.time_ns()
            if touch:
                _touch(fd, now)
            mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if st.st_size else None
        finally:
            os.close(fd)
        if mm is None:
            self._discard(path, key, st, "empty file")
            return _MISS
        try:
            arch = Archive.from_buffer(mm)
        except ArchiveError as exc:
            try:
                mm.close()
            except BufferError:  # still exported by the failed archive: goes with it
                pass
            self._discard(path, key, st, str(exc))
            return _MISS
        try:
            root = arch.root
            if type(root) is not ArchivedDict:
                raise ArchiveError(f"root is a {type(root).__name__}, not a cache entry")
            stored = root["key"]
            if stored != key:
                raise ArchiveError(f"entry holds key {stored!r}")
            value = root["value"]
        except (ArchiveError, KeyError) as exc:
            arch.close()
            reason = f"no {exc} in the entry" if isinstance(exc, KeyError) else str(exc)
            self._discard(path, key, st, reason)
            return _MISS
        ent = _Mapped(st, os.path.basename(path), arch, value, now)
        mapped = self._mapped
        mapped[key] = ent
        if len(mapped) > _MAPPED:
            mapped.popitem(last=False)
        return _fresh(ent)

    def _discard(self, path: str, key: str, st: os.stat_result, reason: str) -> None:
        """Remove a corrupt entry, unless another process has replaced it meanwhile."""
        self._corrupt += 1
        log.warning("removing corrupt cache entry %s (key %r): %s", path, key, reason)
        try:
            now = os.stat(path)
            if (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
                os.unlink(path)
        except FileNotFoundError:
            pass

    # -- publishing ------------------------------------------------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        """Archive ``value`` and publish it atomically under ``key``; may evict."""
        self._publish(key, value)

    def _publish(self, key: str, value: Any) -> int:
        path = self.path(key)
        try:
            size = dump({"key": key, "value": value}, path)
        except FileNotFoundError:
            if os.path.isdir(self.directory):
                raise
            os.makedirs(self.directory, exist_ok=True)  # removed under us: start afresh
            size = dump({"key": key, "value": value}, path)
        self._mapped.pop(key, None)
        try:  # the publish is a use: start its LRU clock with a fine-grained stamp
            now = time.time_ns()
            os.utime(path, ns=(now, now))
        except OSError:
            pass
        if self.max_bytes is not None:
            self._account(size, os.path.basename(path))
        return size

    def __delitem__(self, key: str) -> None:
        path = self.path(key)
        self._mapped.pop(key, None)
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            raise KeyError(key) from None
        if self._estimate is not None:
            self._estimate -= size

    # -- size bound and LRU eviction ----------------------------------------------------
    def _account(self, size: int, keep: str) -> None:
        estimate, limit = self._estimate, self.max_bytes
        if (estimate is not None and limit is not None
                and time.monotonic() - self._scanned_at <= _RESCAN_SECONDS):  # (not stale)
            self._estimate = estimate = estimate + size
            if estimate <= limit:
                return
        self._evict(keep)

    def _listing(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.directory) as it:
                return list(it)
        except FileNotFoundError:  # the directory was removed: no entries
            return []

    def _scan(self) -> tuple[list[tuple[int, int, str]], int]:
        """(mtime_ns, size, name) of every entry, and the bytes of the entries
        plus the temporary files of live writers. Removes stray temporary
        files (no writer holds their lock: ``_tempfiles``) on the way, and
        records the live ones' count and bytes for ``stats()``."""
        entries = []
        total = 0
        temp_files = temp_bytes = 0
        for e in self._listing():
            name = e.name
            try:
                if _is_entry(name):
                    st = e.stat()
                    entries.append((st.st_mtime_ns, st.st_size, name))
                    total += st.st_size
                elif is_temporary(name) and not remove_if_stray(e.path):
                    temp_bytes += e.stat().st_size
                    temp_files += 1
            except FileNotFoundError:  # removed by another process meanwhile
                pass
        self._temporaries = (temp_files, temp_bytes)
        return entries, total + temp_bytes

    def _evict(self, keep: str | None = None) -> None:
        entries, total = self._scan()
        limit = self.max_bytes
        if limit is not None and total > limit:
            # this process's own recent hits count even where the file's mtime lags
            used = {ent.name: (ent.used, key) for key, ent in self._mapped.items()}
            order = sorted((max(mtime, used.get(name, (0,))[0]), size, name)
                           for mtime, size, name in entries)
            for _, size, name in order:
                if total <= limit:
                    break
                if name == keep:
                    continue
                try:
                    os.unlink(os.path.join(self.directory, name))
                except FileNotFoundError:
                    pass  # evicted by another process: it no longer counts either way
                else:
                    self._evictions += 1
                    log.debug("evicted %s (%d bytes)", name, size)
                if name in used:
                    self._mapped.pop(used[name][1], None)
                total -= size
        self._estimate = total
        self._scanned_at = time.monotonic()

    # -- the directory as a whole ----------------------------------------------------------
    def _names(self) -> list[str]:
        return [e.name for e in self._listing() if _is_entry(e.name)]

    def __len__(self) -> int:
        """The number of entries in the directory (a scan of the directory)."""
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        """The keys of the entries, in no particular order (opens every entry)."""
        for name in self._names():
            key = _stored_key(os.path.join(self.directory, name))
            if key is not None:
                yield key

    def clear(self) -> None:
        """Delete every entry and every stray temporary file (those of
        killed writers); the temporary files of writers in progress stay."""
        self._mapped.clear()
        for e in self._listing():
            if _is_entry(e.name):
                try:
                    os.unlink(e.path)
                except FileNotFoundError:
                    pass
            elif is_temporary(e.name):
                remove_if_stray(e.path)
        self._estimate = 0
        self._scanned_at = time.monotonic()

    def evict(self) -> None:
        """Apply ``max_bytes`` now (also done after every publish that needs it)."""
        self._evict()

    def stats(self) -> dict[str, int | None]:
        """``hits``, ``misses`` (this object's lookups), ``entries`` and
        ``bytes`` (the directory now: the entries and the temporary files of
        writers in progress, which ``max_bytes`` counts too),
        ``temp_files`` and ``temp_bytes`` (those temporary files alone),
        ``max_bytes``, ``evictions`` and ``corrupt`` (entries this object
        removed). Cost: a scan of the directory, which also removes stray
        temporary files (a flock probe of each temporary file)."""
        entries, total = self._scan()
        temp_files, temp_bytes = self._temporaries
        return {"hits": self._hits, "misses": self._misses, "entries": len(entries),
                "bytes": total, "temp_files": temp_files, "temp_bytes": temp_bytes,
                "max_bytes": self.max_bytes, "evictions": self._evictions,
                "corrupt": self._corrupt}

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Drop the entries this object keeps mapped for repeated hits (the
        files stay; views already handed out stay valid, each keeping its own
        mapping). The cache can still be used: the next hit maps again."""
        self._mapped.clear()

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- memoize -----------------------------------------------------------------------------
    @overload
    def memoize(self, func: Callable[..., Any], *, ignore: Iterable[str] = ()) -> _Memoized: ...
    @overload
    def memoize(self, func: None = None, *, ignore: Iterable[str] = ()
                ) -> Callable[[Callable[..., Any]], _Memoized]: ...

    def memoize(self, func: Callable[..., Any] | None = None, *, ignore: Iterable[str] = ()
                ) -> _Memoized | Callable[[Callable[..., Any]], _Memoized]:
        """Decorator: cache ``func``'s results in this cache (see ``bfa.memoize``).
        Use as ``@cache.memoize``, ``@cache.memoize()`` or
        ``@cache.memoize(ignore=["verbose"])``."""
        if func is None:
            return lambda f: self.memoize(f, ignore=ignore)
        return _Memoized(func, self, ignore)

    def __repr__(self) -> str:
        limit = "no limit" if self.max_bytes is None else f"max_bytes={self.max_bytes}"
        return f"<Cache {self.directory!r} {limit}>"

    # A cache is compared by identity, not by contents.
    __eq__ = object.__eq__
    __hash__ = object.__hash__


def _fresh(ent: _Mapped) -> Any:
    """The entry's value to hand out: see ``_SHARED``."""
    value = ent.value
    t = type(value)
    if t in _SHARED:
        return value
    if t is memoryview:
        return value[:]
    if type(value).__name__ == "ndarray":
        return value.view()
    if ent.arch.closed:  # pragma: no cover - nobody closes it
        raise ArchiveError("archive is closed")
    return ent.arch.root["value"]


def _touch(fd: int, now: int) -> None:
    """Mark an entry as just used: its mtime is the LRU clock. A fine-grained
    stamp (the kernel's own clock for utime(NULL) ticks in milliseconds)."""
    try:
        os.utime(fd, ns=(now, now))
    except OSError:  # not the owner: a read-only share of someone else's cache
        try:
            os.utime(fd)
        except OSError:
            pass


def _stored_key(path: str) -> str | None:
    try:
        with Archive.open(path) as arch:
            root = arch.root
            key = root["key"] if type(root) is ArchivedDict else None
    except (OSError, ArchiveError, KeyError):
        return None
    return key if isinstance(key, str) else None


# -- sizes -----------------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1,
          "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
          "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12}
_SIZES_ACCEPTED = ("an int number of bytes >= 0, None (no limit), or a str such as '10GB', "
                   "'512MiB', '1G' or '1.5 TB' (KB/MB/GB/TB: powers of 1000; K/M/G/T and "
                   "KiB/MiB/GiB/TiB: powers of 1024)")


def parse_size(size: int | str | None) -> int | None:
    """A byte count from ``size``: an int (>= 0), None, or a str: a number
    and a unit, ``"10GB"`` (KB, MB, GB, TB: powers of 1000), ``"512MiB"`` or
    ``"1G"`` (KiB.., and K, M, G, T as ``ls -h`` and joblib read them: powers
    of 1024), or bytes (``"4096"``, ``"4096B"``); case and spaces do not
    matter. ValueError or TypeError, saying what is accepted, otherwise."""
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 0:
            raise ValueError(f"max_bytes must be {_SIZES_ACCEPTED}; not {size!r}")
        return size
    if not isinstance(size, str):
        raise TypeError(f"max_bytes must be {_SIZES_ACCEPTED}; not a {type(size).__name__}")
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", size)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"max_bytes must be {_SIZES_ACCEPTED}; not {size!r}")
    from decimal import Decimal

    return int(Decimal(match.group(1)) * unit)


# -- memoize ---------------------------------------------------------------------------------

def memoize(directory_or_cache: str | os.PathLike[str] | Cache, *,
            max_bytes: int | str | None = None,
            ignore: Iterable[str] = ()) -> Callable[[Callable[..., Any]], _Memoized]:
    """Decorator: cache a function's results as archives.

        @bfa.memoize("~/.cache/myapp")          # a directory, or a bfa.Cache
        def features(day: date, model: str) -> dict: ...

    The key is a digest of the function's module and qualified name, its
    source (``inspect.getsource``; the code object when there is no source),
    so editing the function makes new calls miss, and its arguments, bound
    to the signature (defaults applied, ``**kwargs`` sorted): arguments made
    only of None, bool, int, float, str, bytes, and tuples, lists and dicts
    of those are hashed from their ``repr`` (exact for these types and
    cheap); any other arguments from their archived bytes (``bfa.dumps``),
    with NumPy arrays and large ``bytes`` hashed in place, without a copy.
    Arguments and results must be archivable (else ``UnsupportedTypeError``).
    Changes to other functions it calls are not part of the key. A function
    without source (defined in ``python -c``, ``exec``, a REPL) is keyed on
    its code instead: bytecode, constants, names, argument counts and flags,
    not its file or line, so the same function in two scripts shares entries.

    ``ignore=["verbose", "n_jobs"]`` leaves those arguments out of the key
    (as joblib.Memory's ``ignore``): calls that differ only in them share an
    entry. Methods: the instance is an argument like the others, so it must
    be archivable (a pydantic model: keyed on its fields); any other instance
    is refused with a TypeError saying so, unless ``ignore=["self"]`` leaves
    it out of the key (every instance then shares the entries: for results
    that do not depend on it). Or memoize a function taking what the method
    needs as arguments.

    Every call returns the archived result, lazily, as ``Cache.get`` does:
    a view (``ArchivedDict``, ``ArchivedList``), a read-only NumPy array over
    the mapped file, a read-only memoryview for bytes, or a plain scalar;
    ``.to_python()`` gives an independent copy. The first call computes,
    publishes and returns the archived copy too, so both calls return the
    same kinds of objects. Concurrent first calls in several processes each
    compute; all succeed. The wrapper has ``.cache``, ``.key(*args, **kw)``
    and ``.__wrapped__``.
    """
    if callable(directory_or_cache):
        raise TypeError("memoize needs a directory or a Cache: "
                        "@bfa.memoize('~/.cache/myapp'), not a bare @bfa.memoize")
    if isinstance(directory_or_cache, Cache):
        if max_bytes is not None:
            raise TypeError("max_bytes is set on the Cache, not on memoize")
        cache = directory_or_cache
    else:
        cache = Cache(directory_or_cache, max_bytes=max_bytes)
    return lambda func: cache.memoize(func, ignore=ignore)


class _Memoized:
    """The wrapper ``memoize`` returns."""

    def __init__(self, func: Callable[..., Any], cache: Cache, ignore: Iterable[str] = ()) -> None:
        import functools

        if not callable(func):
            raise TypeError(f"memoize decorates a function, not a {type(func).__name__}")
        functools.update_wrapper(self, func)
        self.cache = cache
        self._func = func
        self._ignore = _ignored(func, ignore)
        self._prefix = ""
        self._fdigest = b""                  # set, with _prefix, by _prepare on the first call
        self._sig: inspect.Signature | None = None
        self._names: tuple[str, ...] | None = None  # plain positional parameters, for the fast path
        self._defaults: tuple[Any, ...] = ()

    def _prepare(self) -> None:
        """Name, code and signature of the function, once (getsource is slow)."""
        import inspect

        func = self._func
        name = f"{getattr(func, '__module__', None)}.{getattr(func, '__qualname__', repr(func))}"
        h = hashlib.blake2b(b"bfast_archive.memoize/1\0", digest_size=16)
        h.update(name.encode("utf-8", "surrogatepass") + b"\0")
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError):
            source = None
        if source is not None:
            h.update(b"source\0" + source.encode("utf-8", "surrogatepass"))
        else:
            code = getattr(func, "__code__", None)
            if code is not None:
                h.update(b"code\0" + _code_text(code).encode("utf-8", "surrogatepass"))
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            sig = None
        if sig is not None:
            params = list(sig.parameters.values())
            plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            if all(p.kind in plain for p in params):
                self._names = tuple(p.name for p in params)
                self._defaults = tuple(_EMPTY if p.default is p.empty else p.default
                                       for p in params)
        self._sig = sig
        self._prefix = f"memoize:{name}:"
        self._fdigest = h.digest()

    def _payload(self, args: tuple[Any, ...], kwargs: dict[str, Any]
                 ) -> tuple[tuple[str, Any], ...]:
        """((name, value), ...) of the call, bound to the signature, defaults applied."""
        names = self._names
        if names is not None and not kwargs and len(args) <= len(names):
            if len(args) == len(names):
                return tuple(zip(names, args))
            rest = self._defaults[len(args):]
            if not any(d is _EMPTY for d in rest):
                return tuple(zip(names, args + rest))
        sig = self._sig
        if sig is None:
            return (("*args", args), ("**kwargs", dict(sorted(kwargs.items()))))
        import inspect

        bound = sig.bind(*args, **kwargs)  # TypeError for a call that does not fit
        bound.apply_defaults()
        out = []
        for name, value in bound.arguments.items():
            if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                value = dict(sorted(value.items()))
            out.append((name, value))
        return tuple(out)

    def key(self, *args: Any, **kwargs: Any) -> str:
        """The cache key of the call ``func(*args, **kwargs)``."""
        if not self._fdigest:
            self._prepare()
        payload = self._payload(args, kwargs)
        if self._ignore:
            payload = tuple(item for item in payload if item[0] not in self._ignore)
        h = hashlib.blake2b(self._fdigest, digest_size=20)
        text = _plain_repr(payload)
        if text is not None:
            h.update(b"repr\0" + text.encode("utf-8", "surrogatepass"))
        else:
            h.update(b"archive\0")
            _hash_archived(h, payload, self._prefix)
        return self._prefix + h.hexdigest()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            key = self.key(*args, **kwargs)
        except TypeError as exc:
            if isinstance(exc, UnsupportedTypeError):
                raise
            return self._func(*args, **kwargs)  # the call does not fit: Python says why
        return self._cached(key, args, kwargs)

    def _cached(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The entry for ``key``, computed by the call and published on a miss."""
        cache = self.cache
        value = cache._lookup(key, touch=True)
        if value is not _MISS:
            cache._hits += 1
            return value
        cache._misses += 1
        result = self._func(*args, **kwargs)
        cache._publish(key, result)
        value = cache._lookup(key, touch=False)
        return result if value is _MISS else value

    def __repr__(self) -> str:
        return f"<memoized {self._func!r} in {self.cache!r}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        import functools

        return functools.partial(self._bound_call, obj)

    def _bound_call(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call as a method: the instance is part of the key like any
        argument when it is archivable (a pydantic model), else refused."""
        try:
            key = self.key(obj, *args, **kwargs)
        except UnsupportedTypeError as exc:
            if exc.value is not obj:
                raise
            name = getattr(self._func, "__qualname__", repr(self._func))
            raise TypeError(
                f"memoized method {name}: the instance ({type(obj).__name__}) cannot be "
                f"part of the cache key (it is not archivable); memoize a function taking "
                f"what the method needs, or pass ignore=[{self._first_parameter()!r}] if "
                f"the result does not depend on the instance") from None
        except TypeError:
            return self._func(obj, *args, **kwargs)  # the call does not fit: Python says why
        return self._cached(key, (obj, *args), kwargs)

    def _first_parameter(self) -> str:
        import inspect

        try:
            params = list(inspect.signature(self._func).parameters)
        except (TypeError, ValueError):
            params = []
        return params[0] if params else "self"


def _ignored(func: Callable[..., Any], ignore: Iterable[str]) -> frozenset[str]:
    """The parameter names in ``ignore``, checked against ``func``'s signature."""
    if isinstance(ignore, str):
        raise TypeError(f"ignore must be a list of parameter names, e.g. [{ignore!r}], "
                        f"not a str")
    try:
        names = list(ignore)
    except TypeError:
        raise TypeError(f"ignore must be a list of parameter names, "
                        f"not {type(ignore).__name__}") from None
    if not names:
        return frozenset()
    if not all(isinstance(n, str) for n in names):
        raise TypeError("ignore must be a list of parameter names (str)")
    import inspect

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        raise TypeError(f"ignore needs a function with a signature; "
                        f"{func!r} has none") from None
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"ignore names {', '.join(map(repr, unknown))}, not parameters of "
                         f"{getattr(func, '__qualname__', func)!r} "
                         f"({', '.join(params) or 'none'})")
    return frozenset(names)


def _code_text(code: Any) -> str:
    """A description of a code object that is the same in every process and
    every script holding the same function: bytecode, constants (nested code
    too), names, argument counts and flags; not the file name, line numbers
    or the function's position (``marshal.dumps`` depends on reference counts
    and holds the file name)."""
    parts = [code.co_code.hex(), repr(code.co_names), repr(code.co_varnames),
             repr(code.co_freevars), repr(code.co_cellvars),
             repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                   code.co_flags))]
    parts.extend(_const_text(c) for c in code.co_consts)
    return "\0".join(parts)


def _const_text(c: Any) -> str:
    if hasattr(c, "co_code"):
        return f"code({_code_text(c)})"
    if isinstance(c, tuple):
        return "(" + ",".join(map(_const_text, c)) + ")"
    if isinstance(c, frozenset):  # its iteration order depends on the hash seed
        return "frozenset(" + ",".join(sorted(map(_const_text, c))) + ")"
    return f"{type(c).__name__}:{c!r}"


_REPR_LEAVES = frozenset({int, float, str, bool, type(None), bytes})


def _plain_repr(payload: tuple[tuple[str, Any], ...]) -> str | None:
    """``repr(payload)`` if it holds only None, bool, int, float, str, bytes
    and tuples, lists and str/int-keyed dicts of those (whose repr is exact
    and the same in every process), else None."""
    leaves = _REPR_LEAVES
    for _, value in payload:
        if type(value) not in leaves and not _plain(value, 1):
            return None
    try:
        return repr(payload)
    except ValueError:  # an int too long for str()
        return None


def _plain(x: Any, depth: int) -> bool:
    t = type(x)
    if t in _REPR_LEAVES:
        return True
    if depth > 20:
        return False
    if t is tuple or t is list:
        if set(map(type, x)) <= _REPR_LEAVES:
            return True
        return all(_plain(v, depth + 1) for v in x)
    if t is dict:
        if not set(map(type, x)) <= {str, int}:
            return False
        return all(_plain(v, depth + 1) for v in x.values())
    return False


def _hash_archived(h: Any, payload: Any, what: str) -> None:
    """Feed ``h`` the archived bytes of ``payload`` (``bfa.dumps``), with every
    NumPy array and every large ``bytes`` value replaced by a digest of its
    memory taken in place (no copy of a C-contiguous array), with its dtype
    and shape."""
    from .writer import dumps

    try:
        h.update(dumps(_fingerprint(payload, 0)))
    except UnsupportedTypeError as exc:
        raise UnsupportedTypeError(f"{what.rstrip(':')}: arguments must be archivable to "
                                   f"form a cache key: {exc}", exc.value, exc.path) from None


_BIG = 1 << 16
_FLAT = frozenset({int, float, str, bool, type(None), complex})


def _fingerprint(x: Any, depth: int) -> Any:
    """``x`` with its arrays and large byte strings replaced by digests."""
    t = type(x)
    if t in _FLAT:
        return x
    if t is list or t is tuple:
        if depth > 200 or set(map(type, x)) <= _FLAT:
            return x
        return t(_fingerprint(v, depth + 1) for v in x)
    if t is dict:
        if depth > 200 or set(map(type, x.values())) <= _FLAT:
            return x
        return {k: _fingerprint(v, depth + 1) for k, v in x.items()}
    if t is bytes or t is bytearray:
        if len(x) < _BIG:
            return x
        return ("bfast_archive.memoize:bytes", t.__name__,
                hashlib.blake2b(x, digest_size=32).digest())
    np = _numpy_if_loaded()
    if np is not None and t is np.ndarray and not x.dtype.hasobject and x.dtype.itemsize:
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        raw = x.reshape(-1).view(np.uint8)
        digest = hashlib.blake2b(memoryview(raw), digest_size=32).digest()
        return ("bfast_archive.memoize:ndarray", x.dtype.str, repr(x.dtype.descr),
                list(x.shape), digest)
    return x  # anything else is archived as it is (or rejected by dumps)


def _numpy_if_loaded() -> Any:
    import sys

    return sys.modules.get("numpy")
