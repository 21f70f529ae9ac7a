"""Shared by the fuzz harnesses and the hostile-input tests (not a test module).

- ``golden()``: small archives of every node type (uncompressed, re-framed
  without checksums, compressed), built from fixed values: the seed corpus
  (fuzz/make_corpus.py writes them to fuzz/corpus/) and the originals that
  tests/test_hostile_*.py mutate.
- ``exercise(data)``: every public read call on an archive made from
  ``data`` (loads, from_buffer with and without verify, root, item access
  with present and missing keys, iteration of dicts, lists and tables,
  to_python, verify, array handles and their slices, table columns, model
  views), checked against the promise of docs/SECURITY.md: each call returns
  or raises ArchiveError, KeyError, IndexError or a TypeError for API misuse.
  Anything else (RecursionError, struct.error, UnicodeDecodeError,
  OverflowError, MemoryError, SystemError, AttributeError, ...) propagates.
  Where two public paths read the same value (lazy access and
  ``to_python``, an array and its handle's slices) their results must agree:
  a disagreement raises ``WrongValue``.
- mutation helpers: bit flips, overwrites, truncation, splices, random
  headers, and ``refresh_checksums`` (recompute every checksum a hostile
  writer would, so mutations reach the checks behind them).

The golden archives are built on first use, not at import.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import struct
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pydantic

import bfast_archive as bfa
from bfast_archive._bfa_core import lib
from tests.support.child import python_env

ALLOWED = (bfa.ArchiveError, KeyError, IndexError, TypeError)

# The TypeErrors the library raises on purpose, for API misuse (a container
# call on a scalar, a non-array asked for as an array, ...). Any other
# TypeError comes from inside and breaks the promise.
API_MISUSE = re.compile(
    r"not a container|needs an archive whose root is a dict|, not an array$|"
    r"indices must be integers or slices|len\(\) of a 0-d array|"
    r"a table row's cells are not array nodes|from_buffer needs")

HEADER = struct.Struct("<8sHHIQQQQQQ")
F_COMPRESSED, F_CHECKSUMS = 1, 2


class WrongValue(AssertionError):
    """Two public paths to one value of the same archive disagree."""


# --------------------------------------------------------------------------
# golden values


class Point(pydantic.BaseModel):
    x: int
    y: float = 0.0


class User(pydantic.BaseModel):
    id: int
    name: str
    tags: list[str] = []
    home: Point | None = None


def _table_rows(n: int) -> list:
    return [{"id": i, "x": i / 2, "ok": bool(i % 2), "name": f"n{i}",
             "tags": ["a", "bc"][:i % 3], "when": dt.datetime(2020, 1, 1 + i, 3, 4, 5),
             "misc": [i] if i % 2 else None, "opt": None if i == 2 else -i,
             "ostr": None if i == 1 else "s" * i, "oflt": None if i == 3 else 0.25 * i,
             "obool": None if i == 0 else i > 2}
            for i in range(n)]


def golden_values() -> dict[str, tuple[Any, dict]]:
    """name -> (value, dumps keyword arguments). Together they use every
    slot tag, every column kind, both index widths of key kinds, arrays of
    many dtypes and layouts, and compressed payloads (LZ4 and raw chunks)."""
    tz = dt.timezone(dt.timedelta(hours=2, minutes=30), "X")
    rng = np.random.default_rng(5)
    c = {"compression": "lz4", "chunk_size": 4096}
    return {
        "none": (None, {}),
        "int": (-5, {}),
        "sstr": ("héllo", {}),
        "str": ("a string longer than eight bytes ☃", {}),
        "bytes": (b"bytes longer than eight", {}),
        "bigint": (-(2 ** 100), {}),
        "scalars": ([None, True, False, 0, -1, 2 ** 63 - 1, -(2 ** 63), 2 ** 64, 1.5, math.nan,
                     -math.inf, -0.0, "", "short", "a longer string with ünïcode",
                     "\ud800 lone", b"", b"sb", b"long bytes value, > 8", bytearray(b"ba")], {}),
        "typed": ([dt.date(2020, 2, 29), dt.datetime(2021, 3, 4, 5, 6, 7, 8),
                   dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=tz, fold=1),
                   dt.time(1, 2, 3, 4, tzinfo=dt.timezone.utc), dt.timedelta(-3, 4, 5),
                   uuid.UUID(int=0x1234567890ABCDEF), decimal.Decimal("-1.50E+3"),
                   decimal.Decimal("NaN"), complex(1.5, -2), np.float32(1.5), np.int8(-3),
                   np.datetime64("2020-01-01T00:00", "m"), np.bytes_(b"ab"), np.str_("u")], {}),
        "containers": ({"list": [1, [2, [3]]], "tuple": (1, "a", None),
                        "set": {1, "a", b"b", 2.5}, "frozenset": frozenset({2.5, (1, 2)}),
                        "empty": [[], (), {}, set(), frozenset()], 7: "int key",
                        b"bk": "bytes key", b"a longer bytes key": 0, 2 ** 70: "bigint key",
                        -(2 ** 63): "min key", "nested": {"a": {"b": {"c": [1, 2]}}},
                        "a key longer than eight": (None,)}, {}),
        "wide_dict": ({f"key{i}": i for i in range(24)}, {}),
        "deep": (_nest(40), {}),
        "arrays": ({"f4": np.arange(6, dtype="<f4").reshape(2, 3),
                    "be": np.arange(4, dtype=">i2"), "bool": np.array([True, False, True]),
                    "c16": np.array([1 + 2j, -0.0j]), "M8": np.array(["2020-01-01"], "M8[D]"),
                    "m8": np.array([5, -1], "m8[s]"), "S": np.array([b"ab", b"c"]),
                    "U": np.array(["x", "yz"]),
                    "struct": np.array([(1, b"ab"), (2, b"c")], [("a", "<i4"), ("b", "S3")]),
                    "sub": np.zeros(2, [("v", "<f4", (2,))]), "zerod": np.array(3.5),
                    "empty": np.zeros((0, 3)), "fortran": np.asfortranarray(
                        np.arange(6.0).reshape(2, 3)), "u8": np.arange(10, dtype=np.uint8)}, {}),
        "table": (_table_rows(5), {}),
        # 70 rows: tables of 64 rows or more are converted and rebuilt in C (csrc/pytable.c)
        "table_long": ([{"id": i, "name": f"n{i}é" if i % 9 == 0 else f"n{i}",
                         "tags": ["a", "bc"][:i % 3], "ostr": None if i % 7 == 0 else "s" * (i % 5)}
                        for i in range(70)], {}),
        "model": (User(id=1, name="ana", tags=["x", "y"], home=Point(x=1, y=2.5)), {}),
        "model_list": ([User(id=i, name=f"u{i}", tags=["t"] * (i % 2),
                             home=Point(x=i) if i % 2 else None) for i in range(4)], {}),
        "c_small": ({"a": [1, 2, 3], "s": "text " * 20, "d": {"k": None}}, c),
        "c_multi": ({"ints": list(range(600)), "t": _table_rows(6)}, c),
        # two external payloads just over 64 KiB: a 2-d array and a bytes value
        "c_payloads": ({"grid": np.arange(16_400, dtype="<i4").reshape(-1, 10) % 7,
                        "blob": b"ab" * 32_800, "meta": {"name": "run", "lr": 1e-3}}, c),
        "c_raw": ({"noise": rng.integers(0, 256, 70_000, dtype=np.uint8), "n": 1}, c),
    }


def _nest(depth: int) -> list:
    value: list = [0, "leaf"]
    for i in range(depth):
        value = [value, i]
    return value


def without_checksums(data: bytes) -> bytes:
    """An uncompressed archive re-framed without its checksum directory
    (flags 0): readers accept both, and header fields are then reached
    without the header checksum standing in front of them."""
    magic, major, minor, flags, size, w0, p, nodes_end, sections, _ = HEADER.unpack_from(data)
    assert not flags & F_COMPRESSED
    head = HEADER.pack(magic, major, minor, 0, nodes_end, w0, p, nodes_end, 0, 0)
    return head + bytes(data[64:nodes_end])


_GOLDEN: dict[str, bytes] | None = None


def golden() -> dict[str, bytes]:
    """name -> archive bytes. Uncompressed archives also appear re-framed
    without checksums, as ``<name>.plain``."""
    global _GOLDEN
    if _GOLDEN is None:
        out = {}
        for name, (value, kwargs) in golden_values().items():
            data = bfa.dumps(value, **kwargs)
            out[name] = data
            if not kwargs:
                out[f"{name}.plain"] = without_checksums(data)
        _GOLDEN = out
    return _GOLDEN


# --------------------------------------------------------------------------
# mutations


def refresh_checksums(data: bytes | bytearray) -> bytes:
    """Recompute every checksum that can be located: section or chunk
    XXH64s of the directory (entries that lie inside the buffer) and the
    header checksum. A hostile writer does this; so do the tests, to reach
    the structural checks behind the checksums."""
    buf = bytearray(data)
    if len(buf) < 64 or buf[:8] != b"\x89BFA\r\n\x1a\n":
        return bytes(buf)
    flags = struct.unpack_from("<I", buf, 12)[0]
    if not flags & F_CHECKSUMS:
        return bytes(buf)
    sections = struct.unpack_from("<Q", buf, 48)[0]
    if sections % 8 == 0 and 64 <= sections and sections + 32 <= len(buf):
        nc, np_, nk, _ = struct.unpack_from("<4Q", buf, sections)
        at = sections + 32
        if flags & F_COMPRESSED:
            at += 40 * np_ if np_ < len(buf) else len(buf)
            entries, size = nk, 32
        else:
            entries, size = nc, 24
        for i in range(min(entries, max(0, (len(buf) - at) // size))):
            e = at + i * size
            off, n = struct.unpack_from("<QQ", buf, e)
            if off + n <= len(buf):
                struct.pack_into("<Q", buf, e + 16, lib.bfa_xxh64(bytes(buf[off:off + n]), n, 0))
    struct.pack_into("<Q", buf, 56, lib.bfa_xxh64(bytes(buf[:56]), 56, 0))
    return bytes(buf)


def reframe_compressed(data: bytes, image: bytes) -> bytes:
    """A compressed archive ``data`` with its nodes replaced by ``image`` (a
    nodes image as ``nodes_image`` returns, edited): payload 0 is stored as
    RAW chunks, the other payloads' chunks are copied as they are, and
    every checksum is valid. Lets tests edit the nodes of compressed archives."""
    sections, = struct.unpack_from("<Q", data, 48)
    nc, np_, nk, _ = struct.unpack_from("<4Q", data, sections)
    pay_at = sections + 32 + 24 * nc
    chunk_at = pay_at + 40 * np_
    payloads = [struct.unpack_from("<5Q", data, pay_at + 40 * p) for p in range(np_)]
    chunks = [struct.unpack_from("<QQQII", data, chunk_at + 32 * k) for k in range(nk)]
    out = bytearray(64)
    pay_entries, chunk_entries = [], []
    for p, (size, cs, first, n, _) in enumerate(payloads):
        out += bytes(-len(out) % 64)
        start = len(chunk_entries)
        if p == 0:
            body = image[64:]
            size = len(body)
            for k in range(0, size, cs):
                piece = body[k:k + cs]
                chunk_entries.append((len(out), len(piece), lib.bfa_xxh64(piece, len(piece), 0),
                                      0, 0))
                out += piece
        else:
            for off, stored, xxh, codec, _ in chunks[first:first + n]:
                chunk_entries.append((len(out), stored, xxh, codec, 0))
                out += data[off:off + stored]
        pay_entries.append((size, cs, start, len(chunk_entries) - start, 0))
    out += bytes(-len(out) % 8)
    sections = len(out)
    out += struct.pack("<4Q", 0, len(pay_entries), len(chunk_entries), 0)
    for e in pay_entries:
        out += struct.pack("<5Q", *e)
    for e in chunk_entries:
        out += struct.pack("<QQQII", *e)
    head = bytearray(data[:64])
    struct.pack_into("<Q", head, 16, len(out))
    head[24:40] = image[24:40]
    struct.pack_into("<QQ", head, 40, len(image), sections)
    struct.pack_into("<Q", head, 56, lib.bfa_xxh64(bytes(head[:56]), 56, 0))
    out[:64] = head
    return bytes(out)


def flip_bit(data: bytes, pos: int, bit: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 1 << bit
    return bytes(b)


def set_byte(data: bytes, pos: int, value: int) -> bytes:
    b = bytearray(data)
    b[pos] = value
    return bytes(b)


def set_word(data: bytes, pos: int, word: int) -> bytes:
    b = bytearray(data)
    b[pos:pos + 8] = struct.pack("<Q", word)[:len(b) - pos]
    return bytes(b)


def splice(a: bytes, b: bytes, i: int, j: int) -> bytes:
    """The first ``i`` bytes of ``a`` followed by ``b`` from byte ``j`` on."""
    return bytes(a[:i]) + bytes(b[j:])


def interesting_words(data: bytes) -> list[int]:
    n = len(data)
    return [0, 1, 7, 8, 16, 63, 64, 2 ** 31, 2 ** 32, 2 ** 56 - 1, 2 ** 63, 2 ** 64 - 1,
            n, max(0, n - 8), max(0, n - 16), n + 8, 1 << 26, (1 << 26) + 1]


# --------------------------------------------------------------------------
# the promise, call by call


# Library bugs already reported, each with its own strict-xfail test (see
# KNOWN_BUGS below and tests/test_hostile_mutations.py). While one is open
# the broad checks tolerate it, so they keep looking for new ones; the hits
# are counted in KNOWN_HITS. When the library fixes one, its xfail test
# XPASSes (strict): delete its entry here.
KNOWN_BUGS: dict[str, tuple[Any, str, str]] = {
    # id: (exception type(s), message regex, file of the raising frame)
    # (none open)
}
TOLERATE_KNOWN = True
KNOWN_HITS: dict[str, int] = {}


def known_bug(exc: BaseException) -> str | None:
    """The id of the known bug ``exc`` is an instance of, or None: its type
    and message match, and a frame of its traceback is in the named file
    of the library."""
    files = []
    tb = exc.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    for bug, (kind, pattern, where) in KNOWN_BUGS.items():
        if isinstance(exc, kind) and re.search(pattern, str(exc)) and any(
                re.search(rf"bfast_archive/({where})$", f) for f in files):
            return bug
    return None


def result(outcome: tuple[bool, Any], default: Any = None) -> Any:
    """The value of a ``guard`` outcome, or ``default`` if it raised."""
    return outcome[1] if outcome[0] else default


def guard(fn: Callable, *args: Any) -> tuple[bool, Any]:
    """Call ``fn``; (True, result), or (False, the exception) for an allowed
    error (or a known bug, while TOLERATE_KNOWN). Anything else propagates."""
    try:
        return True, fn(*args)
    except ALLOWED as exc:
        if type(exc) is TypeError and not API_MISUSE.search(str(exc)):
            return _unexpected(exc)
        return False, exc
    except Exception as exc:
        return _unexpected(exc)


def _unexpected(exc: Exception) -> tuple[bool, Any]:
    bug = known_bug(exc) if TOLERATE_KNOWN else None
    if bug is None:
        raise exc
    KNOWN_HITS[bug] = KNOWN_HITS.get(bug, 0) + 1
    return False, exc


def same(a: Any, b: Any, depth: int = 0) -> bool:
    """Exact equality of two plain values: types, float bits, container
    order, arrays by dtype, shape and bytes."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and _significant(a) == _significant(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, dict):
        return (len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
                and all(same(a[k], b[k], depth + 1) for k in a))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and sorted(map(repr, a)) == sorted(map(repr, b))
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, (dt.datetime, dt.time, dt.date, dt.timedelta, decimal.Decimal)):
        return repr(a) == repr(b)
    return a == b or repr(a) == repr(b)


def _significant(a: np.ndarray) -> bytes:
    """An array's element bytes without struct padding (NumPy leaves the
    padding of a copied structured array uninitialised)."""
    if a.dtype.names:
        return b"".join(_significant(np.asarray(a[name])) for name in a.dtype.names)
    return np.ascontiguousarray(a).tobytes()


class Walker:
    """One archive's tour of the public API, with a budget of values."""

    def __init__(self, arch: bfa.Archive, budget: int = 400, max_depth: int = 48) -> None:
        self.arch = arch
        self.budget = budget
        self.max_depth = max_depth
        self.values = 0

    def _spend(self) -> bool:
        self.budget -= 1
        return self.budget >= 0

    # lazy value -> plain value, through the public API only (lookups by the
    # iterated keys, index access); None if any step raised an allowed error
    def plain(self, v: Any, depth: int = 0) -> tuple[bool, Any]:
        if depth > self.max_depth or not self._spend():
            return False, None
        if isinstance(v, bfa.ArchivedTable):
            ok, rows = guard(list, v)
            if not ok:
                return False, None
            out = []
            for row in rows:
                ok, item = self.plain(row, depth + 1)
                if not ok:
                    return False, None
                out.append(item)
            return True, out
        if isinstance(v, bfa.ArchivedDict):
            ok, keys = guard(list, v)
            if not ok:
                return False, None
            out = {}
            for k in keys:
                ok, item = guard(v.__getitem__, k)
                if not ok:
                    return False, None
                ok, item = self.plain(item, depth + 1)
                if not ok:
                    return False, None
                out[k] = item
            return True, out
        if isinstance(v, bfa.ArchivedList):
            out = []
            for i in range(len(v)):
                ok, item = guard(v.__getitem__, i)
                if not ok:
                    return False, None
                ok, item = self.plain(item, depth + 1)
                if not ok:
                    return False, None
                out.append(item)
            return True, tuple(out) if v.is_tuple else out
        if isinstance(v, memoryview):
            return True, bytes(v)
        if isinstance(v, np.ndarray):
            return True, v.copy()
        return True, v

    def check_same(self, what: str, lazy: Any, full: Any) -> None:
        ok, plain = self.plain(lazy)
        if ok and not same(plain, full):
            raise WrongValue(f"{what}: lazy access gives {plain!r:.300}, "
                             f"to_python gives {full!r:.300}")

    def visit(self, v: Any, depth: int = 0) -> None:
        """Every public call on value ``v`` and, recursively, its children."""
        if depth > self.max_depth or not self._spend():
            return
        self.values += 1
        if isinstance(v, bfa.ArchivedTable):
            self._table(v, depth)
        elif isinstance(v, bfa.ArchivedDict):
            self._dict(v, depth)
        elif isinstance(v, bfa.ArchivedList):
            self._list(v, depth)
        elif isinstance(v, np.ndarray):
            if v.flags.writeable and v.base is not None and not v.flags.owndata:
                # views over the archive must be read-only
                raise WrongValue("an array view over the archive is writeable")
            v.tobytes()
            repr(v.dtype), v.shape
        elif isinstance(v, memoryview):
            if not v.readonly:
                raise WrongValue("a memoryview over the archive is writeable")
            bytes(v)
        else:
            repr(v)

    def _to_python(self, v: Any, what: str, depth: int) -> None:
        # a view's to_python() and its comparison cost its whole subtree:
        # done near the top only (the root's is compared in exercise())
        if depth > 3:
            return
        ok, full = guard(v.to_python)
        if ok:
            self.check_same(what, v, full)

    def _dict(self, d: bfa.ArchivedDict, depth: int) -> None:
        guard(repr, d)
        n = len(d)
        ok, keys = guard(list, d)
        keys = keys if ok else None
        if ok and len(keys) != n:
            raise WrongValue(f"dict iterates {len(keys)} keys, len() says {n}")
        for k in (keys or [])[:64]:
            ok, value = guard(d.__getitem__, k)
            if not ok:
                if isinstance(value, KeyError):
                    # iteration checked the whole node: each key it gives is found
                    raise WrongValue(f"{k!r} is iterated but d[{k!r}] raises KeyError")
                continue
            if guard(d.__contains__, k) != (True, True):
                raise WrongValue(f"{k!r} is iterated and looked up but `in` says no")
            self.visit(value, depth + 1)
            if isinstance(value, np.ndarray):
                self._handle(d, k, value)
        for missing in ("\x00no such key", "", 0, -1, 2 ** 63, -(2 ** 80), b"", b"\xff" * 9,
                        3.5, None, (1,)):
            guard(d.get, missing)
            guard(d.__contains__, missing)
            guard(d.array, missing)
        ok, values = guard(lambda: list(d.values()))
        ok, items = guard(lambda: list(d.items()))
        if ok and keys is not None and [k for k, _ in items] != keys:
            raise WrongValue("items() and iteration disagree on the keys")
        self._to_python(d, "dict", depth)

    def _handle(self, d: bfa.ArchivedDict, key: Any, full: Any) -> None:
        ok, h = guard(d.array, key)
        if not ok:
            return
        ok, arr = guard(np.asarray, h)
        if not ok:
            return
        if not same(arr, full):
            raise WrongValue(f"np.asarray(arch.array({key!r})) differs from arch[{key!r}]")
        h.shape, h.dtype, h.ndim, h.nbytes, repr(h)
        guard(len, h)
        n = arr.shape[0] if arr.ndim else 0
        for index in (0, -1, n, -n - 1, slice(None), slice(1, 3), slice(None, None, 2),
                      slice(None, None, -1), slice(n, 0), (0,), (slice(0, 2), 0)):
            ok, got = guard(h.__getitem__, index)
            try:  # NumPy's own indexing of the whole array: the reference
                want = np.asarray(arr[index])
            except Exception:  # noqa: BLE001 - not the library's promise
                continue
            if ok and not same(np.asarray(got), want):
                raise WrongValue(f"arch.array({key!r})[{index!r}] differs from the array's")

    def _list(self, v: bfa.ArchivedList, depth: int) -> None:
        guard(repr, v)
        n = len(v)
        for i in list(range(min(n, 32))) + [-1, -n, n, -n - 1, 2 ** 63, -(2 ** 64)]:
            ok, item = guard(v.__getitem__, i)
            if ok:
                self.visit(item, depth + 1)
        guard(v.__getitem__, slice(None, None, -2))
        guard(v.__getitem__, "0")
        guard(lambda: [x for x in v])
        guard(lambda: v == [])
        self._to_python(v, "tuple" if v.is_tuple else "list", depth)

    def _table(self, t: bfa.ArchivedTable, depth: int) -> None:
        guard(repr, t)
        n = len(t)
        names = result(guard(lambda: t.columns))
        for name in (names or [])[:16] + ["\x00missing", 0]:
            ok, col = guard(t.column, name)
            if ok and names is not None and name in names and isinstance(col, np.ndarray) \
                    and not isinstance(col, np.ma.MaskedArray) and col.dtype != np.bool_:
                # a whole numeric column equals its cells, read one by one
                for i in range(min(n, 16)):
                    ok2, cell = guard(lambda: t[i][name])
                    if ok2 and not same(col[i].item(), cell):
                        raise WrongValue(f"column {name!r}[{i}] = {col[i]!r} but the cell "
                                         f"reads {cell!r}")
        for i in list(range(min(n, 16))) + [-1, n]:
            ok, row = guard(t.__getitem__, i)
            if not ok:
                continue
            keys = result(guard(list, row), [])
            for k in keys[:16]:
                ok, cell = guard(row.__getitem__, k)
                if ok:
                    self.visit(cell, depth + 1)
                guard(row.__contains__, k)
            guard(row.__getitem__, "\x00missing")
            guard(row.array, "id")
            ok, full = guard(row.to_python)
            if ok:
                self.check_same(f"table row {i}", row, full)
        guard(t.__getitem__, slice(0, 3))
        guard(lambda: [r for r in t])
        self._to_python(t, "table", depth)


def exercise(data: bytes | bytearray | memoryview, *, verify: bool = False,
             models: bool = True, budget: int = 400, max_depth: int | None = None,
             path: str | None = None) -> dict:
    """Run the public read API over ``data``; raise if the promise breaks.
    With ``path`` (a file holding ``data``) also ``load`` and
    ``Archive.open``. Returns what was reached, for statistics."""
    stats = {"opened": False, "loaded": False, "verified": False, "values": 0}
    depth = {} if max_depth is None else {"max_depth": max_depth}
    # the structural checks alone (verify=False) are the oracle; a load that
    # also verifies the checksums raises or gives the same value
    loaded, full = guard(lambda: bfa.loads(data, verify=False))
    stats["loaded"] = loaded
    ok, checked = guard(bfa.loads, data)
    if ok and not (loaded and same(checked, full)):
        raise WrongValue("loads(verify=True) returned what loads(verify=False) did not")
    if path is not None:
        ok, from_file = guard(lambda: bfa.load(path, verify=False))
        if ok != loaded or ok and not same(from_file, full):
            raise WrongValue("load(path) and loads(bytes) disagree")
        ok, arch = guard(lambda: bfa.Archive.open(path, verify=verify, **depth))
        if ok:
            with arch:
                ok, root = guard(lambda: arch.root)
                if ok:
                    Walker(arch, budget // 4).visit(root)
                guard(arch.verify)
    ok, arch = guard(lambda: bfa.Archive.from_buffer(data, verify=verify, **depth))
    if not ok:
        return stats
    stats["opened"] = True
    with arch:
        repr(arch), arch.nbytes, arch.closed
        guard(lambda: arch.checksummed)
        guard(lambda: arch.compressed)
        ok, root = guard(lambda: arch.root)
        if ok:
            w = Walker(arch, budget)
            w.visit(root)
            stats["values"] = w.values
            if loaded:
                w.budget = budget
                w.check_same("root", root, full)
            if isinstance(root, bfa.ArchivedDict):
                keys = result(guard(list, root), [])
                for k in keys[:8]:
                    ok, a = guard(arch.__getitem__, k)
                    ok2, b = guard(root.__getitem__, k)
                    if ok and ok2 and type(a) is not type(b):
                        raise WrongValue(f"arch[{k!r}] and arch.root[{k!r}] differ in type")
                    if ok and isinstance(a, np.ndarray):
                        w._handle(root, k, a)
                    else:
                        guard(arch.array, k)
            guard(arch.__getitem__, "\x00missing")
            guard(arch.__getitem__, 0)
        ok, n = guard(arch.verify)
        stats["verified"] = ok
        ok, again = guard(arch.to_python)
        if ok and loaded and not same(again, full) and max_depth is None:
            raise WrongValue("Archive.to_python() differs from loads()")
        if models:
            _models(data)
    # a closed archive: views raise ArchiveError, nothing else
    guard(lambda: arch.root)
    guard(arch.to_python)
    return stats


def _models(data: Any) -> None:
    """Model views and model loads (docs/SECURITY.md: model views are in the
    promise). A model view's attribute read of a field the archive does not
    hold raises AttributeError, as ``getattr`` does."""
    ok, arch = guard(lambda: bfa.Archive.from_buffer(data, model=User))
    if not ok:
        return
    with arch:
        ok, root = guard(lambda: arch.root)
        if ok:
            views = [root]
            if hasattr(root, "to_models"):  # ArchivedModelList
                guard(len, root)
                views = result(guard(lambda: list(root)[:4]), [])
                guard(root.to_models)
                guard(root.column, "id")
            for view in views:
                if type(view).__name__ != "ArchivedModel":
                    continue  # a scalar root or item: there is no model view
                for name in ("id", "name", "tags", "home"):
                    ok, value = _field(view, name)
                    if ok and name == "home" and type(value).__name__ == "ArchivedModel":
                        _field(value, "x"), _field(value, "y")
                guard(view.to_python)
                if hasattr(view, "to_model"):
                    guard(view.to_model)
    guard(lambda: bfa.loads(data, model=User))
    guard(lambda: bfa.loads(data, model=User, trusted=True))
    guard(lambda: bfa.loads(data, model=User, trusted=True, verify=False))


def _field(view: Any, name: str) -> tuple[bool, Any]:
    try:
        return guard(getattr, view, name)
    except AttributeError as exc:
        if "the archive has no value for" in str(exc):
            return False, exc
        raise


# --------------------------------------------------------------------------
# the nodes of a compressed archive, and inputs to keep away from known
# bugs that cannot be caught as exceptions


def nodes_image(data: bytes) -> bytes | None:
    """The bytes the nodes are read from: ``data`` itself, or for a
    compressed archive the decoded payload 0 after the header (None if it
    cannot be decoded). Pure Python and lz4, independent of the reader."""
    if len(data) < 64 or data[:8] != b"\x89BFA\r\n\x1a\n":
        return None
    flags = struct.unpack_from("<I", data, 12)[0]
    if not flags & F_COMPRESSED:
        return bytes(data)
    import lz4.block

    try:
        sections = struct.unpack_from("<Q", data, 48)[0]
        nc, np_, nk, _ = struct.unpack_from("<4Q", data, sections)
        size, cs, first, n, _ = struct.unpack_from("<5Q", data, sections + 32 + 24 * nc)
        if size > 1 << 24 or n > 4096 or cs == 0:
            return None
        out = bytearray(data[:64])
        chunks = sections + 32 + 24 * nc + 40 * np_
        for k in range(first, first + n):
            off, stored, _, codec, _ = struct.unpack_from("<QQQII", data, chunks + 32 * k)
            raw = min(cs, size - (k - first) * cs)
            piece = bytes(data[off:off + stored])
            out += piece if codec == 0 else lz4.block.decompress(piece, uncompressed_size=raw)
        return bytes(out)
    except Exception:  # noqa: BLE001 - a mutated directory: nothing to scan
        return None


def known_trouble(data: bytes) -> str | None:
    """The id of a known, reported bug that ``data`` would trigger and that
    cannot be caught as an exception (a hang, a multi-gigabyte allocation),
    or None. Callers skip such inputs, so a hang they are known to cause
    does not stop a test run or a fuzzer. None at present: the one there was
    (a dict count over 2^62 hung bfa_nbuckets_for) was fixed in 5b2dc67."""
    return None


# --------------------------------------------------------------------------
# an electric fence: inputs placed against a PROT_NONE page, so a C read
# past the end (or, start-aligned, before the start) of the buffer faults at
# once instead of reading neighbouring heap memory


class Fence:
    """A reusable arena ``[guard page][capacity bytes][guard page]``."""

    def __init__(self, capacity: int = 1 << 20) -> None:
        import ctypes
        import mmap

        page = mmap.PAGESIZE
        self.page = page
        self.capacity = -(-capacity // page) * page
        self.mm = mmap.mmap(-1, self.capacity + 2 * page)
        self._anchor = ctypes.c_char.from_buffer(self.mm)  # keeps the mapping alive
        base = ctypes.addressof(self._anchor)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for at in (base, base + page + self.capacity):
            if libc.mprotect(at, page, 0) != 0:
                raise OSError(ctypes.get_errno(), "mprotect failed")
        self.base = base

    def place(self, data: bytes, at_end: bool = True) -> memoryview | bytes:
        """``data`` copied into the arena against a guard page; a memoryview
        of it (or ``data`` itself if it does not fit)."""
        n = len(data)
        if n > self.capacity:
            return data
        start = self.page + (self.capacity - n if at_end else 0)
        self.mm[start:start + n] = data
        return memoryview(self.mm)[start:start + n]


# --------------------------------------------------------------------------
# isolation: inputs run in worker processes, so a hang or a crash of one
# input is a finding reported with that input, not the end of the test run


def _serve() -> None:
    """Worker process main (started by Isolated): jobs on fd 0, results on
    the original fd 1; anything the code under test prints goes to stderr."""
    import faulthandler
    import os
    from multiprocessing.connection import Connection

    faulthandler.enable()
    inbox, outbox = Connection(os.dup(0), writable=False), Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    fence = None
    while True:
        try:
            job = inbox.recv()
        except EOFError:
            return
        if job is None:
            return
        key, data, opts = job
        opts = dict(opts)
        check = opts.pop("check", None)
        at_end = opts.pop("at_end", None)
        before = dict(KNOWN_HITS)
        try:
            if at_end is not None:
                fence = fence or Fence()
                buf = fence.place(data, at_end)
            else:
                buf = data
            stats = (globals()[check] if check else exercise)(buf, **opts)
            hits = {k: v - before.get(k, 0) for k, v in KNOWN_HITS.items()
                    if v != before.get(k, 0)}
            outbox.send((key, "known" if hits else "ok", (stats, hits)))
        except BaseException as exc:  # noqa: BLE001 - every failure is reported
            import traceback

            outbox.send((key, "fail", "".join(traceback.format_exception(exc))[-3000:]))


class Isolated:
    """``run(jobs)`` exercises each ``(key, data, options)`` in one of
    ``workers`` fresh Python processes, with a per-input ``timeout``.
    Options go to ``exercise`` except ``at_end`` (place the input in a
    Fence, against its end or its start) and ``check`` (the name of another
    function of this module to run instead). Outcomes: ok, known (a known bug was hit and
    tolerated), skipped (a known hang or bomb, not run), fail (a broken
    promise: the traceback), hang, crash (the exit status)."""

    def __init__(self, workers: int = 2, timeout: float = 20.0) -> None:
        self.n = workers
        self.timeout = timeout
        self.idle: list = []

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> tuple:
        import os
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.support import hostile; hostile._serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=python_env())
        proc.send_conn = Connection(os.dup(proc.stdin.fileno()), readable=False)
        conn = Connection(os.dup(proc.stdout.fileno()), writable=False)
        proc.stdin.close()
        proc.stdout.close()
        return proc, conn

    def run(self, jobs: Any, on_result: Callable | None = None) -> dict:
        """Run ``jobs`` (an iterable of (key, data, options)); the outcome of
        each, by key: (outcome, detail)."""
        import time
        from multiprocessing.connection import wait

        results: dict = {}
        jobs = iter(jobs)
        idle = self.idle
        while len(idle) < self.n:
            idle.append(self._start())
        busy: dict = {}  # conn -> (proc, key, data, started)

        def finish(key: Any, outcome: str, detail: Any, data: bytes) -> None:
            results[key] = (outcome, detail)
            if on_result is not None:
                on_result(key, outcome, detail, data)

        exhausted = False
        while True:
            while idle and not exhausted:
                job = next(jobs, None)
                if job is None:
                    exhausted = True
                    break
                key, data, opts = job
                trouble = known_trouble(data) if TOLERATE_KNOWN else None
                if trouble:
                    KNOWN_HITS[trouble] = KNOWN_HITS.get(trouble, 0) + 1
                    finish(key, "skipped", trouble, data)
                    continue
                proc, conn = idle.pop()
                proc.send_conn.send((key, data, opts))
                busy[conn] = (proc, key, data, time.monotonic())
            if not busy:
                break
            for conn in wait(list(busy), timeout=0.5):
                proc, key, data, _ = busy.pop(conn)
                try:
                    _, outcome, detail = conn.recv()
                except (EOFError, OSError):
                    finish(key, "crash", proc.wait(10), data)
                    idle.append(self._start())
                    continue
                if outcome == "known":
                    for bug, n in detail[1].items():
                        KNOWN_HITS[bug] = KNOWN_HITS.get(bug, 0) + n
                finish(key, outcome, detail, data)
                idle.append((proc, conn))
            now = time.monotonic()
            for conn, (proc, key, data, started) in list(busy.items()):
                if now - started > self.timeout:
                    del busy[conn]
                    proc.kill()
                    proc.wait(10)
                    finish(key, "hang", self.timeout, data)
                    idle.append(self._start())
        return results

    def close(self) -> None:
        for proc, conn in self.idle:
            try:
                proc.send_conn.send(None)
            except OSError:
                pass
            try:
                proc.wait(10)
            except Exception:  # noqa: BLE001
                proc.kill()
                proc.wait(10)
            proc.send_conn.close()
            conn.close()
        self.idle = []


# --------------------------------------------------------------------------
# the single-byte sweep's check of one mutant (run in an Isolated worker)

_VALUES: dict[str, Any] = {}


def sweep_one(buf: Any, *, name: str, full: bool, oracle: str | None) -> dict:
    """``exercise`` (when ``full``) plus an oracle against the golden value:
    'changed' -- the mutant differs from a checksummed uncompressed archive,
    whose checksums cover every byte: verify must refuse it; 'value' -- if
    verify passes and the archive reads back, it must read back as the
    golden value (a compressed archive's directory is not checksummed)."""
    stats = exercise(buf, models=name.startswith("model"), budget=200) if full else {}
    if oracle is not None:
        ok, arch = guard(lambda: bfa.Archive.from_buffer(buf, verify=True))
        if ok and oracle == "changed":
            raise WrongValue(f"{name}: verify() accepted a changed byte")
        if ok:
            value = _VALUES.get(name)
            if value is None:
                value = _VALUES[name] = bfa.loads(golden()[name])
            ok, got = guard(arch.to_python)
            if ok and not same(got, value):
                raise WrongValue(f"{name}: verify() passed and to_python() gives another "
                                 f"value: {got!r:.200}")
            arch.close()
    return stats
