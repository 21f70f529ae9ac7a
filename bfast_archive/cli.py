"""The command line tool: ``bfast-archive <command>`` or ``python -m bfast_archive <command>``.

    inspect FILE [PATH] [--depth N]   a tree of the archive, payloads unread
    get FILE PATH [--raw]             one value as JSON (or its raw bytes); --path-json
    convert IN OUT                    JSON / JSON Lines / MessagePack / .npz / .npy /
                                      Parquet / CSV <-> archive; --compression lz4, --allow-nan
    verify FILE...                    full integrity check, exit status 0 or 1
    demo                              the README's demo

Errors in the input (missing file, not an archive, a bad path) print one line,
``bfast-archive: FILE: problem``, on stderr and exit with status 1; usage
errors exit with status 2; an internal error (a bug) prints one line too and
exits with status 3; an interrupt exits with 130. No traceback, ever.
"""
from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import os
import struct
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

PROG = "bfast-archive"

# Extensions -> formats for `convert`.
_FORMATS = {".bfa": "bfa", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".msgpack": "msgpack", ".mpk": "msgpack", ".msgp": "msgpack",
            ".npz": "npz", ".npy": "npy", ".parquet": "parquet", ".pq": "parquet",
            ".csv": "csv"}
_FROM_ARCHIVE = ("json", "jsonl", "parquet", "csv", "bfa")
_TABULAR = ("parquet", "csv")  # through pyarrow: an Arrow table, stored as a frame


class Failure(Exception):
    """A problem with the input: reported as ``bfast-archive: FILE: problem``."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


# -- shared helpers ----------------------------------------------------------------

def _human(n: float) -> str:
    """1234567 -> '1.2 MiB'."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} TiB"  # pragma: no cover


def _os_problem(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def _archive_problem(exc: Exception, path: str) -> str:
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _open(path: str) -> Any:
    """``Archive.open(path)``, every failure turned into a Failure naming ``path``."""
    from .errors import ArchiveError
    from . import Archive

    if os.path.isdir(path):
        raise Failure(path, "is a directory")
    try:
        return Archive.open(path)
    except OSError as exc:
        raise Failure(path, _os_problem(exc)) from None
    except ArchiveError as exc:
        raise Failure(path, _archive_problem(exc, path)) from None
    except ValueError as exc:  # mmap refuses special files
        raise Failure(path, f"cannot map the file ({exc})") from None


def _file_version(path: str) -> str:
    """'major.minor' from the header (the archive is open already, so it is valid)."""
    try:
        with open(path, "rb") as f:
            _, major, minor = struct.unpack("<8sHH", f.read(12))
        return f"{major}.{minor}"
    except (OSError, struct.error):
        return "?"


def _split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part != ""]


def _steps(args: argparse.Namespace) -> Sequence[str | int]:
    """The steps of PATH: split on '/', or with --path-json a JSON array of
    str keys and int keys / indices (for keys holding '/', or str keys that
    look like ints)."""
    path = args.path or ""
    if not getattr(args, "path_json", False):
        return _split_path(path)
    try:
        steps = json.loads(path) if path.strip() else []
    except ValueError as exc:
        raise Failure(args.file, f"--path-json: PATH is not JSON: {exc}") from None
    if not isinstance(steps, list) or not all(
            isinstance(s, str) or (isinstance(s, int) and not isinstance(s, bool))
            for s in steps):
        raise Failure(args.file, "--path-json: PATH must be a JSON array of strings (keys) "
                                 "and integers (int keys, indices), e.g. '[\"a/b\", 3]'")
    return steps


def _label(steps: Sequence[str | int]) -> str:
    return "/".join(map(str, steps))


def _index(part: Any, value: Any, where: str, file: str, what: str) -> int:
    """``part`` as an index into the ``len(value)`` items of ``what`` at ``where``."""
    n = len(value)
    try:
        index = part if isinstance(part, int) else int(part)
    except ValueError:
        raise Failure(file, f"{part!r} is not an index into the {what} at {where} "
                            f"({n:,} items)") from None
    if not -n <= index < n:
        raise Failure(file, f"index {index} out of range for the {what} at {where} "
                            f"({n:,} items)")
    return index


def _resolve(root: Any, steps: Sequence[str | int], file: str, exact: bool = False) -> Any:
    """Follow the steps of ``users/3/name``: dict keys (str, else an int key),
    list indices, array rows (``emb/5``). ``exact`` (--path-json): str steps
    are str keys only, int steps int keys or indices."""
    from . import ArchivedDict, ArchivedList

    value = root
    for i, part in enumerate(steps):
        where = _label(steps[:i]) or "the root"
        if isinstance(value, ArchivedDict):
            key: str | int | None = part
            if not exact and part not in value:
                try:
                    key = int(part)
                except ValueError:
                    key = None
            if key is None or key not in value:
                raise Failure(file, f"no key {part!r} in the dict at {where}")
            value = _child(value, key, more=i + 1 < len(steps))
        elif isinstance(value, (ArchivedList, tuple, list)):
            if exact and not isinstance(part, int):
                raise Failure(file, f"{part!r} is not an index into the list at {where}")
            value = value[_index(part, value, where, file, "list")]
        elif _is_ndarray(value) or type(value).__name__ == "ArrayHandle":
            if not value.shape:
                raise Failure(file, f"cannot look up {part!r}: the array at {where} has no "
                                    f"axes")
            if exact and not isinstance(part, int):
                raise Failure(file, f"{part!r} is not an index into the array at {where}")
            value = value[_index(part, value, where, file, "array")]
        else:
            raise Failure(file, f"cannot look up {part!r}: the value at {where} is "
                                f"{_kind(value)}, not a dict, list or array")
    return value


def _child(d: Any, key: Any, more: bool) -> Any:
    """``d[key]``; an array that more steps index into comes as a lazy handle
    (a compressed archive then decompresses only the chunks of the rows read)."""
    from . import ArchivedDict

    if more and type(d) is ArchivedDict:
        try:
            return d.array(key)
        except TypeError:  # not an array
            pass
    return d[key]


def _kind(value: Any) -> str:
    from . import ArchivedDict, ArchivedList

    if isinstance(value, ArchivedDict):
        return "a dict"
    if isinstance(value, ArchivedList):
        return "a tuple" if value.is_tuple else "a list"
    if isinstance(value, memoryview):
        return "bytes"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _is_ndarray(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.ndarray)


class _Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        try:
            self.enabled = sys.stderr.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.t0 = time.monotonic()
        self.last = 0.0
        self.label = ""

    def phase(self, label: str) -> None:
        self.label = label
        self._show(label)

    def update(self, done: int, total: int, unit: str = "") -> None:
        """Show ``done`` of ``total`` (bytes, or ``unit`` if given), at most 10 times a second."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        pct = 100.0 * done / total if total else 100.0
        amount = (f"{done:,} / {total:,} {unit}" if unit
                  else f"{_human(done)} / {_human(total)}")
        self._show(f"{self.label} {pct:3.0f}% ({amount})")

    def _show(self, text: str) -> None:
        if self.enabled:
            self.last = time.monotonic()
            sys.stderr.write(f"\r\033[K{PROG}: {text}")
            sys.stderr.flush()

    def finish(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{PROG}: {text} ({time.monotonic() - self.t0:.1f} s)\n")
            sys.stderr.flush()


# -- JSON rendering ----------------------------------------------------------------------

def _json_key(key: Any) -> Any:
    if isinstance(key, (str, int)):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key).decode("latin-1")
    return str(key)


def _json_default(full_arrays: bool) -> Callable[[Any], Any]:
    """Converts values JSON has no form for (``_json_chunks`` asks it for
    anything but str, numbers, bool, None, dicts and lists). ``full_arrays``: arrays
    as nested lists and bytes as base64 text (convert); otherwise arrays as
    dtype, shape and a short summary and large bytes summarised (get)."""
    def default(value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            try:
                return sorted(value)
            except TypeError:
                return list(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value) if full_arrays or len(value) <= 4096 else bytes(value[:32])
            if full_arrays:
                return base64.b64encode(data).decode("ascii")
            out = {"type": "bytes", "length": len(value)}
            if len(value) <= 4096:
                out["base64"] = base64.b64encode(data).decode("ascii")
            else:
                out["head_hex"] = data.hex()
            return out
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if isinstance(value, _dt.timedelta):
            return value.total_seconds()
        if isinstance(value, complex):
            return [value.real, value.imag]
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(value, np.ndarray):
                if full_arrays:
                    return value.tolist()
                return _array_summary(value)
            if isinstance(value, np.generic):
                item = value.item()
                return item if not isinstance(item, bytes) else item.decode("latin-1")
        return str(value)  # UUID, Decimal, ...

    return default


def _array_summary(arr: Any) -> dict[str, Any]:
    """dtype, shape and a few values; reads only the values it shows."""
    import numpy as np

    out = {"type": "ndarray", "dtype": str(arr.dtype), "shape": list(arr.shape),
           "nbytes": int(arr.nbytes)}
    if arr.size <= 100 and not arr.dtype.names:
        out["data"] = arr.tolist()
    else:
        out["summary"] = np.array2string(arr, threshold=10, edgeitems=3, max_line_width=100)
    return out


def _float_json(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (_INF, -_INF):
        return "Infinity" if v > 0 else "-Infinity"
    return float.__repr__(v)


_INF = float("inf")
_END = object()


def _scalar_json(v: Any, quote: Callable[[str], str]) -> str | None:
    """The JSON text of a str, number, bool or None (as ``json.dumps`` writes
    it), or None for anything else."""
    if isinstance(v, str):
        return quote(v)
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int) and not isinstance(v, bool):
        return int.__repr__(v)
    if isinstance(v, float):
        return _float_json(v)
    return None


def _json_chunks(value: Any, file: str, full_arrays: bool, indent: int | None,
                 ensure_ascii: bool = False) -> Iterator[str]:
    """The JSON text of ``value`` in pieces, formatted as ``json.dump`` does
    (``indent``; without it ``", "`` and ``": "``). Written without recursion,
    so nesting up to ``max_depth`` is fine; deeper is a Failure naming
    ``file``. Archive views are read as they are written; other values go
    through ``_json_default``. Lone surrogates in strings come out as they
    are (the output stream writes them as ``\\udXXX`` escapes)."""
    from json.encoder import encode_basestring, encode_basestring_ascii

    from .format import DEFAULT_MAX_DEPTH
    from . import ArchivedDict, ArchivedList

    quote = encode_basestring_ascii if ensure_ascii else encode_basestring
    convert = _json_default(full_arrays)
    stack: list[list[Any]] = []  # per open container: [children iterator, is a dict, any child yet]
    while True:
        text = _scalar_json(value, quote)
        children = None
        while text is None:
            if isinstance(value, (ArchivedDict, dict)):
                children = iter(value.items()), True
                break
            if isinstance(value, (ArchivedList, list, tuple)):
                children = iter(value), False
                break
            value = convert(value)
            text = _scalar_json(value, quote)
        if children is None:
            yield text  # type: ignore[misc]  # (not None when children is: see the loop)
        else:
            if len(stack) >= DEFAULT_MAX_DEPTH:
                raise Failure(file, f"nesting deeper than max_depth={DEFAULT_MAX_DEPTH}: "
                                    f"not written as JSON")
            stack.append([children[0], children[1], False])
            yield "{" if children[1] else "["
        while stack:  # the next value: the next child of the innermost open container
            top = stack[-1]
            child: Any = next(top[0], _END)  # (an item, a (key, value) pair, or _END)
            if child is _END:
                stack.pop()
                close = "}" if top[1] else "]"
                if top[2] and indent is not None:
                    close = "\n" + " " * (indent * len(stack)) + close
                yield close
                continue
            if indent is not None:
                sep = ("," if top[2] else "") + "\n" + " " * (indent * len(stack))
            else:
                sep = ", " if top[2] else ""
            top[2] = True
            if top[1]:
                key, value = child
                key = _json_key(key)
                yield sep + quote(key if isinstance(key, str) else int.__repr__(key)) + ": "
            else:
                value = child
                if sep:
                    yield sep
            break
        else:
            return


def _dump_json(value: Any, out: Any, file: str, full_arrays: bool, indent: int | None,
               ensure_ascii: bool = False) -> None:
    """Write ``value`` as JSON to the text stream ``out`` (see ``_json_chunks``)."""
    out.writelines(_json_chunks(value, file, full_arrays, indent, ensure_ascii))


# -- inspect -----------------------------------------------------------------------------

_SAMPLE = 1000          # containers bigger than this are sized from a sample
_MAX_KEYS = 20          # dict keys listed per dict
_MAX_ITEMS = 3          # list items listed per list (tables: their first row)
_SIZE_DEPTH = 200       # levels below a value that its size counts (the walk recurses)


def _scalar_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, memoryview):
        return value.nbytes
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(8, (value.bit_length() + 8) // 8)
    if isinstance(value, (float, _dt.date, _dt.time, _dt.timedelta)):
        return 8
    if isinstance(value, complex):
        return 16
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    return len(str(value))


if TYPE_CHECKING:
    from typing import TypeAlias

    # a line of the tree: (text, the value, prefix of its children's lines, level)
    _Line: TypeAlias = tuple[str, Any, str, int]


class _Inspector:
    """Describes values for ``inspect`` without reading their payloads. On a
    compressed archive, arrays in dicts are reached through ``d.array(key)``
    handles (dtype, shape, size) so that nothing is decompressed."""

    def __init__(self, compressed: bool) -> None:
        self.lazy_arrays = compressed
        self.budget = 200_000  # values visited for sizes; past it, samples shrink to one item

    # -- children ---------------------------------------------------------------
    def items(self, d: Any) -> Iterator[tuple[Any, Any]]:
        from . import ArchivedDict

        # (not table rows: ArchivedRow inherits an .array() that does not apply to it)
        if not (self.lazy_arrays and type(d) is ArchivedDict and hasattr(d, "array")):
            yield from d.items()
            return
        for key in d:
            try:
                yield key, d.array(key)
            except TypeError:  # not an array
                yield key, d[key]

    def children(self, value: Any) -> tuple[list[tuple[str, Any]], str | None]:
        """(label, child) pairs to show, and a note about those left out."""
        from . import ArchivedDict, ArchivedList, ArchivedTable

        if isinstance(value, ArchivedDict):
            kids: list[tuple[str, Any]] = []
            for i, (k, v) in enumerate(self.items(value)):
                if i == _MAX_KEYS:
                    rest = len(value) - _MAX_KEYS
                    return kids, f"... {rest:,} more key{'s' if rest != 1 else ''}"
                kids.append((k if isinstance(k, str) else repr(k), v))
            return kids, None
        if isinstance(value, ArchivedList) and len(value):
            table = isinstance(value, ArchivedTable)
            shown = 1 if table else min(len(value), _MAX_ITEMS)
            rest = len(value) - shown
            noun = "row" if table else "item"
            return ([(f"[{i}]", value[i]) for i in range(shown)],
                    f"... {rest:,} more {noun}{'s' if rest != 1 else ''}" if rest else None)
        return [], None

    # -- sizes -------------------------------------------------------------------
    def size(self, value: Any, sample: int = _SAMPLE, depth: int = 0) -> tuple[int, bool]:
        """(data bytes, exact): string, bytes and array payloads, 8 per number.
        Containers past ``sample`` items are estimated from an evenly spread
        sample (dicts: their first items); below ``_SIZE_DEPTH`` levels,
        nothing is counted (and the size is marked inexact)."""
        from . import ArchivedDict, ArchivedList

        self.budget -= 1
        mapping = isinstance(value, ArchivedDict)
        if not (mapping or isinstance(value, (ArchivedList, set, frozenset, tuple, list))):
            return _scalar_size(value), True
        if depth >= _SIZE_DEPTH:
            return 0, False
        n = len(value)
        if self.budget <= 0:
            sample = 1
        inner = max(8, sample // 8)
        exact = n <= sample
        count = n if exact else sample
        total = 0
        picked: Iterator[Any]
        if mapping:
            for i, (k, v) in enumerate(self.items(value)):
                if i == count:
                    break
                size, ok = self.size(v, inner, depth + 1)
                total += _scalar_size(k) + size
                exact &= ok
        else:
            if isinstance(value, ArchivedList):
                step = n / count if count else 1
                picked = (value[int(i * step)] for i in range(count))
            else:
                picked = iter(list(value)[:count])
            for v in picked:
                size, ok = self.size(v, inner, depth + 1)
                total += size
                exact &= ok
        return (total if n <= sample else int(total * n / max(count, 1))), exact

    def size_text(self, value: Any) -> str:
        n, exact = self.size(value)
        return ("" if exact else "~") + _human(n)

    # -- one line per value ----------------------------------------------------------------
    def describe(self, value: Any) -> str:
        """Type, length, dtype/shape and size; reads no payload."""
        from . import ArchivedDict, ArchivedList, ArchivedTable

        if isinstance(value, ArchivedTable):
            cols = value.columns
            shown = ", ".join(map(str, cols[:8])) + (", ..." if len(cols) > 8 else "")
            return (f"table, {len(value):,} rows x {len(cols)} columns ({shown}), "
                    f"{self.size_text(value)}")
        if isinstance(value, ArchivedDict):
            noun = "key" if len(value) == 1 else "keys"
            return f"dict, {len(value):,} {noun}, {self.size_text(value)}"
        if isinstance(value, ArchivedList):
            noun = "item" if len(value) == 1 else "items"
            kind = "tuple" if value.is_tuple else "list"
            return f"{kind}, {len(value):,} {noun}, {self.size_text(value)}"
        if _is_ndarray(value) or type(value).__name__ == "ArrayHandle":
            order = ""
            flags = getattr(value, "flags", None)
            if flags is not None and value.ndim > 1 and flags.f_contiguous \
                    and not flags.c_contiguous:
                order = ", Fortran order"
            shape = tuple(value.shape)
            text = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
            return f"ndarray {value.dtype} {text}{order}, {_human(value.nbytes)}"
        if isinstance(value, memoryview):
            return f"bytes, {_human(value.nbytes)}"
        if isinstance(value, str):
            nbytes = len(value.encode("utf-8", "surrogatepass"))
            return f"str, {_human(nbytes)} = {_preview(value)}"
        if isinstance(value, (set, frozenset)):
            return f"{type(value).__name__}, {len(value):,} items, {self.size_text(value)}"
        return f"{type(value).__name__} = {_preview(value)}"

    def emit(self, pending: list[_Line], note: str | None, prefix: str, depth: int, out: Any
             ) -> None:
        """Write lines (and, below ``depth``, subtrees) for the children in ``pending``."""
        for line, kid, kid_prefix, level in pending:
            out.write(line + "\n")
            if level < depth:
                kids, kid_note = self.children(kid)
                self.emit(self.lines(kids, kid_note, kid_prefix, level + 1), kid_note,
                          kid_prefix, depth, out)
        if note is not None:
            out.write(f"{prefix}└── {note}\n")

    def lines(self, kids: list[tuple[str, Any]], note: str | None, prefix: str, level: int
              ) -> list[_Line]:
        out: list[_Line] = []
        for i, (label, kid) in enumerate(kids):
            last = i == len(kids) - 1 and note is None
            out.append((f"{prefix}{'└── ' if last else '├── '}{label}: {self.describe(kid)}",
                        kid, prefix + ("    " if last else "│   "), level))
        return out


def _preview(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cmd_inspect(args: argparse.Namespace) -> int:
    if not 0 <= args.depth <= 200:
        raise Failure(args.file, "--depth must be between 0 and 200")
    arch = _open(args.file)
    with arch:
        size = os.path.getsize(args.file)
        compressed = bool(getattr(arch, "compressed", False))
        insp = _Inspector(compressed)
        steps = _steps(args)
        value = _resolve(arch.root, steps, args.file, args.path_json)  # (a bad path: no output)
        out = sys.stdout
        out.write(f"{args.file}: {_human(size)}, bfast archive format "
                  f"{_file_version(args.file)}, {'compressed' if compressed else 'uncompressed'}")
        if compressed and not steps and size:
            data, exact = insp.size(value)
            out.write(f", {'' if exact else '~'}{data / size:.1f}x "
                      f"({_human(data)} of data)")
        out.write("\n")
        label = _label(steps) or "root"
        out.write(f"{label}: {insp.describe(value)}\n")
        kids, note = insp.children(value)
        if args.depth >= 1:
            insp.emit(insp.lines(kids, note, "", 1), note, "", args.depth, out)
        elif kids:
            out.write("└── ... (use --depth 1 or more to show the children)\n")
    return 0


# -- get -----------------------------------------------------------------------------------

def cmd_get(args: argparse.Namespace) -> int:
    arch = _open(args.file)
    with arch:
        value = _resolve(arch.root, _steps(args), args.file, args.path_json)
        if args.raw:
            _write_raw(value, args)
            return 0
        from . import ArchivedDict, ArchivedList

        indent = 2 if isinstance(value, (ArchivedDict, ArchivedList)) else None
        # lone surrogates come out as \udXXX escapes (main() sets errors=backslashreplace);
        # on a stream that is not UTF-8, everything past ASCII is escaped
        encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "_")
        _dump_json(value, sys.stdout, args.file, full_arrays=False, indent=indent,
                   ensure_ascii=encoding not in ("utf_8", "utf8"))
        sys.stdout.write("\n")
    return 0


def _write_raw(value: Any, args: argparse.Namespace) -> None:
    out = sys.stdout.buffer
    if isinstance(value, memoryview):
        out.write(value)
    elif isinstance(value, str):
        out.write(value.encode("utf-8", "surrogatepass"))
    elif _is_ndarray(value):
        import numpy as np

        arr = value if value.flags.c_contiguous else np.ascontiguousarray(value)
        if arr.size:
            out.write(arr.reshape(-1).view(np.uint8).data)  # (memoryview(...))
    else:
        raise Failure(args.file, f"--raw needs bytes, a str or an array; "
                                 f"{args.path or 'the root'} is {_kind(value)}")
    out.flush()


# -- convert -------------------------------------------------------------------------------

def _format_of(path: str, given: str | None, which: str) -> str:
    if given:
        return given
    ext = os.path.splitext(path)[1].lower()
    fmt = _FORMATS.get(ext)
    if fmt is None:
        known = ", ".join(sorted(_FORMATS))
        side, flag = ("input", "--from") if which == "from" else ("output", "--to")
        raise Failure(path, f"cannot tell the {side} format from the extension {ext!r} "
                            f"(known: {known}); use {flag}")
    return fmt


class _JSONProblem(ValueError):
    """Valid for json.loads, refused here: NaN/Infinity, nesting too deep."""


def _refuse_constant(name: str) -> float:
    raise _JSONProblem(f"invalid JSON: {name} is not JSON (RFC 8259); --allow-nan reads "
                       f"NaN, Infinity and -Infinity as floats")


def _json_loads(data: bytes, allow_nan: bool) -> Any:
    """``json.loads`` with room for nesting up to ``max_depth`` (its C parser
    counts levels against the recursion limit); deeper input, and NaN or
    Infinity unless ``allow_nan``, is a _JSONProblem."""
    from ._limits import recursion_headroom
    from .format import DEFAULT_MAX_DEPTH

    try:
        with recursion_headroom(DEFAULT_MAX_DEPTH):
            return json.loads(data, parse_constant=None if allow_nan else _refuse_constant)
    except RecursionError:
        raise _JSONProblem(f"nesting deeper than an archive holds "
                           f"(max_depth={DEFAULT_MAX_DEPTH})") from None


def _read_input(path: str, fmt: str, progress: _Progress, allow_nan: bool = False) -> Any:
    try:
        size = os.path.getsize(path)
        if os.path.isdir(path):
            raise Failure(path, "is a directory")
        progress.phase(f"reading {path} ({_human(size)})")
        if fmt == "json":
            with open(path, "rb") as f:
                data = f.read()
            try:
                return _json_loads(data, allow_nan)
            except json.JSONDecodeError as exc:
                raise Failure(path, f"invalid JSON: {exc}") from None
            except UnicodeDecodeError as exc:
                raise Failure(path, f"not UTF-8 text: {exc.reason}") from None
            except _JSONProblem as exc:
                raise Failure(path, str(exc)) from None
        if fmt == "jsonl":
            return _read_jsonl(path, size, progress, allow_nan)
        if fmt == "msgpack":
            return _read_msgpack(path, size, progress)
        if fmt in ("npz", "npy"):
            return _read_numpy(path, fmt)
        if fmt in _TABULAR:
            return _read_tabular(path, fmt, size, progress)
        raise AssertionError(fmt)  # pragma: no cover
    except OSError as exc:
        raise Failure(path, _os_problem(exc)) from None


def _read_jsonl(path: str, size: int, progress: _Progress, allow_nan: bool) -> list[Any]:
    rows = []
    done = 0
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            done += len(line)
            if line.strip():
                try:
                    rows.append(_json_loads(line, allow_nan))
                except json.JSONDecodeError as exc:
                    raise Failure(path, f"line {lineno}: invalid JSON: {exc}") from None
                except UnicodeDecodeError as exc:
                    raise Failure(path, f"line {lineno}: not UTF-8 text: {exc.reason}") from None
                except _JSONProblem as exc:
                    raise Failure(path, f"line {lineno}: {exc}") from None
            if lineno % 1024 == 0:
                progress.update(done, size)
    return rows


def _read_msgpack(path: str, size: int, progress: _Progress) -> Any:
    try:
        import msgpack
    except ImportError:
        raise Failure(path, "reading MessagePack needs the msgpack package "
                            "(pip install msgpack)") from None
    with open(path, "rb") as f:
        data = f.read()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, timestamp=3,
                                max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    objects = []
    try:
        for obj in unpacker:
            objects.append(obj)
            progress.update(unpacker.tell(), size)
    except (ValueError, msgpack.UnpackException) as exc:
        raise Failure(path, f"invalid MessagePack: {exc or type(exc).__name__}") from None
    if not objects:
        raise Failure(path, "empty MessagePack file")
    # one object is the value; several concatenated objects become a list
    return objects[0] if len(objects) == 1 else objects


def _read_numpy(path: str, fmt: str) -> Any:
    import zipfile

    import numpy as np

    try:
        if fmt == "npy":
            # mapped, not read: dump streams it from the mapping (as a plain ndarray view:
            # the writer does not take the np.memmap subclass)
            return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise Failure(path, "not an .npz archive (it holds a single array: use .npy)")
            return {name: npz[name] for name in npz.files}
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise Failure(path, f"cannot read {fmt}: {exc}") from None


def _pyarrow(path: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise Failure(path, "Parquet and CSV need pyarrow (pip install bfast-archive[frames])") \
            from None
    return pyarrow


def _read_tabular(path: str, fmt: str, size: int, progress: _Progress) -> Any:
    """A Parquet (row group by row group) or CSV (block by block) file as a
    ``pyarrow.Table``, with progress by bytes read."""
    pa = _pyarrow(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            groups = []
            for i in range(pf.num_row_groups):
                groups.append(pf.read_row_group(i))
                progress.update(size * (i + 1) // pf.num_row_groups, size)
            return pa.concat_tables(groups) if groups else pf.schema_arrow.empty_table()
        import pyarrow.csv as pcsv

        with open(path, "rb") as f:
            reader = pcsv.open_csv(f)
            batches = []
            for batch in reader:
                batches.append(batch)
                progress.update(f.tell(), size)
            return pa.Table.from_batches(batches, schema=reader.schema)
    except pa.ArrowException as exc:
        raise Failure(path, f"cannot read {fmt}: {exc}") from None


def _write_tabular(root: Any, dst: str, fmt: str) -> None:
    """An archive whose root is a table (or a frame) as Parquet or CSV,
    written to a temporary file and renamed."""
    from . import ArchivedTable

    if not isinstance(root, ArchivedTable):
        raise Failure(dst, f"{fmt} output needs an archive whose root is a table or data "
                           f"frame, not {_kind(root)}")
    pa = _pyarrow(dst)
    table = root.to_arrow()
    tmp = os.path.join(os.path.dirname(os.path.abspath(dst)),
                       f".{os.path.basename(dst)}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, tmp)
        os.replace(tmp, dst)
    except pa.ArrowException as exc:
        _unlink(tmp)
        raise Failure(dst, f"cannot write {fmt}: {exc}") from None
    except OSError as exc:
        _unlink(tmp)
        raise Failure(dst, _os_problem(exc)) from None


def _dump_options(args: argparse.Namespace) -> dict[str, Any]:
    """``dump``'s options from the command line, checked before any input is read."""
    comp = args.compression
    if comp is None or comp.lower() == "none":
        return {}
    from .framing import check_options

    try:
        check_options(comp, 1 << 20, None)
    except ValueError as exc:
        raise Failure(args.output, f"--compression: {exc}") from None
    return {"compression": comp}


def cmd_convert(args: argparse.Namespace) -> int:
    from .errors import ArchiveError, NestingError, UnsupportedTypeError
    from .writer import dump

    src, dst = args.input, args.output
    fin = _format_of(src, args.from_format, "from")
    fout = _format_of(dst, args.to_format, "to")
    if fin != "bfa" and fout != "bfa":
        raise Failure(dst, f"converting {fin} to {fout}: one side must be an archive (.bfa)")
    if fin == "bfa" and fout not in _FROM_ARCHIVE:
        raise Failure(dst, f"an archive converts to {', '.join(_FROM_ARCHIVE)}, not {fout}")
    if fout != "bfa" and args.compression not in (None, "none"):
        raise Failure(dst, "--compression applies to archive output only")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise Failure(dst, "input and output are the same file")
    options = _dump_options(args) if fout == "bfa" else {}
    progress = _Progress()
    if fout == "bfa":
        if fin == "bfa":
            arch = _open(src)
            progress.phase(f"reading {src}")
            try:
                with arch:
                    obj = arch.to_python()
            except ArchiveError as exc:
                raise Failure(src, _archive_problem(exc, src)) from None
        else:
            obj = _read_input(src, fin, progress, args.allow_nan)
        progress.phase(f"writing {dst}")
        try:
            size = dump(obj, dst, **options)
        except (UnsupportedTypeError, NestingError) as exc:
            raise Failure(src, f"cannot archive: {exc}") from None
        except (ValueError, TypeError) as exc:
            raise Failure(dst, str(exc)) from None
        except OSError as exc:
            raise Failure(dst, _os_problem(exc)) from None
        progress.finish(f"wrote {dst} ({_human(size)})")
        return 0
    arch = _open(src)
    with arch:
        progress.phase(f"writing {dst}")
        try:
            if fout in _TABULAR:
                _write_tabular(arch.root, dst, fout)
            else:
                _write_json(arch.root, src, dst, fout, progress)
        except ArchiveError as exc:
            raise Failure(src, _archive_problem(exc, src)) from None
    progress.finish(f"wrote {dst} ({_human(os.path.getsize(dst))})")
    return 0


def _write_json(root: Any, src: str, dst: str, fmt: str, progress: _Progress) -> None:
    """Write ``root`` as JSON (or JSON Lines, one line per item of a list
    root, with progress by items) to ``dst``, atomically. Lone surrogates
    are written as ``\\udXXX`` escapes, as ``json.dumps`` writes them."""
    from . import ArchivedList

    if fmt == "jsonl" and not isinstance(root, ArchivedList):
        raise Failure(dst, f"JSON Lines output needs an archive whose root is a list, "
                           f"not {_kind(root)}")
    directory = os.path.dirname(os.path.abspath(dst))
    tmp = os.path.join(directory, f".{os.path.basename(dst)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace") as out:
            if fmt == "jsonl":
                total = len(root)
                for done, item in enumerate(root, 1):
                    _dump_json(item, out, src, full_arrays=True, indent=None)
                    out.write("\n")
                    if done % 256 == 0 or done == total:
                        progress.update(done, total, "items")
            else:
                _dump_json(root, out, src, full_arrays=True, indent=None)
                out.write("\n")
        os.replace(tmp, dst)
    except OSError as exc:
        _unlink(tmp)
        raise Failure(dst, _os_problem(exc)) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- verify --------------------------------------------------------------------------------

def _walk(root: Any) -> tuple[int, int, int]:
    """Read every value of the archive, checking every node the reader checks
    and every dict key against its hash index. Returns (values, arrays, array bytes)."""
    from . import ArchivedDict, ArchivedList, ArchivedTable

    values = arrays = array_bytes = 0
    stack = [root]
    while stack:
        value = stack.pop()
        values += 1
        if isinstance(value, ArchivedTable):
            rows = value.to_python()  # bulk: checks every column
            values += len(rows) * len(value.columns)
        elif isinstance(value, ArchivedDict):
            for key, child in value.items():
                value[key]  # the hash index finds every key
                stack.append(child)
        elif isinstance(value, ArchivedList):
            stack.extend(value)
        elif _is_ndarray(value):
            arrays += 1
            array_bytes += value.nbytes
    return values, arrays, array_bytes


def _read_through(path: str) -> int:
    """Read the whole file with read(2): an I/O error shows up here as an
    OSError, not as a crash while a mapping is read."""
    total = 0
    buf = bytearray(1 << 20)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return total
            total += n


def _verify_one(path: str) -> tuple[bool, str]:
    from .errors import ArchiveError

    try:
        if os.path.isdir(path):
            return False, "is a directory"
        size = _read_through(path)
        arch = _open(path)
        with arch:
            checked = ""
            if arch.checksummed:
                arch.verify()
                checked = ", checksums match"
            values, arrays, array_bytes = _walk(arch.root)
    except Failure as exc:
        return False, exc.problem
    except OSError as exc:
        return False, _os_problem(exc)
    except ArchiveError as exc:
        return False, _archive_problem(exc, path)
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    arrays_text = (f", {arrays:,} array{'s' if arrays != 1 else ''} ({_human(array_bytes)})"
                   if arrays else "")
    noun = "value" if values == 1 else "values"
    return True, f"{_human(size)}, {values:,} {noun}{arrays_text}{checked}"


def cmd_verify(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        ok, text = _verify_one(path)
        if ok:
            print(f"OK: {path}: {text}", flush=True)
        else:
            _flush_quietly()
            print(f"FAILED: {path}: {text}", file=sys.stderr, flush=True)
        if not ok:
            status = 1
    return status


# -- demo ----------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(runs=args.runs)
    return 0


# -- the parser ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Zero-copy archives for Python: inspect, read, convert and "
                               "verify .bfa files.",
        epilog="Run '%(prog)s COMMAND --help' for the options of a command. Exit status: "
               "0 done, 1 a problem with an input file or its contents (one line on stderr, "
               "'bfast-archive: FILE: problem'), 2 a usage error, 3 an internal error (a bug), "
               "130 interrupted.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "inspect", help="show a tree of the archive: types, lengths, dtypes, shapes, sizes",
        description="Show a tree of the archive (or of the value at PATH): types, lengths, "
                    "dtypes and shapes, sizes. Payloads are not read. Sizes count the data "
                    "held (string, bytes and array payloads, 8 bytes per number); containers "
                    "of more than 1,000 items are sized from a sample, marked '~'. Lists show "
                    "their first 3 items, tables their first row.")
    p.add_argument("file", metavar="FILE", help="the archive")
    p.add_argument("path", metavar="PATH", nargs="?", default="",
                   help="the value to start from, e.g. users/3 or meta (default: the root)")
    p.add_argument("--depth", type=int, default=3, metavar="N",
                   help="levels of children to show (default: 3; 0: the value alone)")
    _path_json_option(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "get", help="print one value, by path, as JSON",
        description="Print the value at PATH as JSON. PATH steps through dict keys, list "
                    "indices and array rows, separated by '/': users/3/name, meta/lr, emb, "
                    "emb/5. A step is a str key, else an int key. For keys holding '/' (or "
                    "str keys that look like numbers) give PATH as a JSON array with "
                    "--path-json: '[\"a/b\", 3]'. Arrays print as dtype, shape and a short "
                    "summary (small arrays in full); bytes as base64 (large ones as length "
                    "and first bytes); lone surrogates in strings as \\udXXX escapes.")
    p.add_argument("file", metavar="FILE", help="the archive")
    p.add_argument("path", metavar="PATH", help="the value's path; '' or / for the root")
    p.add_argument("--raw", action="store_true",
                   help="write the value's raw bytes to stdout instead (bytes, str as UTF-8, "
                        "arrays in C order)")
    _path_json_option(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser(
        "convert", help="convert JSON, JSON Lines, MessagePack, .npz, .npy, Parquet, CSV "
                        "<-> an archive",
        description="Convert IN to OUT; formats follow the extensions: .json, .jsonl/.ndjson "
                    "(one value per line; the archive holds a list), .msgpack/.mpk (several "
                    "concatenated objects become a list; needs the msgpack package), .npz "
                    "(a dict of arrays), .npy (one array), .parquet/.pq and .csv (through "
                    "pyarrow: stored as a data frame) into .bfa; and .bfa into .json or "
                    ".jsonl (arrays as nested lists, bytes as base64), .parquet or .csv (an "
                    "archive whose root is a table or data frame). A progress line goes to "
                    "stderr when it is a terminal.")
    p.add_argument("input", metavar="IN", help="the input file")
    p.add_argument("output", metavar="OUT", help="the output file (written atomically)")
    p.add_argument("--from", dest="from_format", choices=sorted(set(_FORMATS.values())),
                   help="the input format, if the extension does not say")
    p.add_argument("--to", dest="to_format", choices=sorted(set(_FROM_ARCHIVE)),
                   help="the output format, if the extension does not say")
    p.add_argument("--compression", metavar="CODEC",
                   help="compress the archive written (lz4); checked before the input is read")
    p.add_argument("--allow-nan", action="store_true",
                   help="read NaN, Infinity and -Infinity in JSON input as floats (they are "
                        "not JSON, RFC 8259: refused by default)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "verify", help="full integrity check; exit status 0 if intact, 1 if not",
        description="Read every byte and every value of each FILE, checking every node, "
                    "every dict index and (when the archive has them) every checksum. Prints "
                    "one line per file, 'OK: ...' on stdout or 'FAILED: ...' on stderr; exits "
                    "0 if all are intact, 1 otherwise.")
    p.add_argument("files", metavar="FILE", nargs="+", help="the archives")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="write a few hundred MB, then time open + read one "
                                    "field against pickle.load (under a minute)",
                       description="The README's demo: write a few hundred MB of records and "
                                   "arrays to a temporary directory, time open + read one "
                                   "field against pickle.load in fresh processes, clean up.")
    p.add_argument("--runs", type=int, default=3, help="fresh-process runs per reader")
    p.set_defaults(func=cmd_demo)
    return parser


def _path_json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path-json", action="store_true",
                   help="PATH is a JSON array of steps: strings are str keys, integers int "
                        "keys or indices, e.g. '[\"a/b\", 3]' (for keys holding '/')")


def _version() -> str:
    from . import __version__
    from .format import VERSION_MAJOR, VERSION_MINOR_LATEST

    return f"{PROG} {__version__} (archive format {VERSION_MAJOR}.{VERSION_MINOR_LATEST})"


def _escaping_surrogates(stream: Any) -> None:
    """Write lone surrogates (str values and keys may hold them) as \\udXXX
    escapes instead of failing with UnicodeEncodeError."""
    try:
        stream.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError, OSError):  # not a TextIOWrapper: left as it is
        pass


# Exit statuses (also in --help).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status: 0 done, 1 a problem with
    an input file or its contents, 2 a usage error (argparse exits), 3 an
    internal error, 130 interrupted. Problems print one line on stderr, never
    a traceback."""
    from .errors import ArchiveError, BfastError

    _escaping_surrogates(sys.stdout)
    _escaping_surrogates(sys.stderr)
    args = build_parser().parse_args(argv)
    file = getattr(args, "file", None) or getattr(args, "input", None) or PROG
    try:
        status: int = args.func(args)
        return status
    except Failure as exc:
        return _report(exc.file, exc.problem)
    except ArchiveError as exc:  # damage met while reading, past the open
        return _report(file, _archive_problem(exc, file))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (| head): not an error worth a traceback
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILURE
    except OSError as exc:  # an I/O error met past the checks (disk, NFS, ...)
        return _report(exc.filename or file, _os_problem(exc))
    except BfastError as exc:
        return _report(file, str(exc))
    except (RecursionError, MemoryError) as exc:
        return _report(file, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug: still one line, but said to be one
        _report(file, f"internal error, please report it: {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL


def _report(file: Any, problem: str) -> int:
    """Print ``bfast-archive: FILE: problem`` on stderr; return EXIT_FAILURE."""
    _flush_quietly()
    print(f"{PROG}: {file}: {problem}", file=sys.stderr)
    return EXIT_FAILURE


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
