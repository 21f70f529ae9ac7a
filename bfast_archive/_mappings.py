"""Read-only file mappings, reused across ``Archive.open`` calls on an unchanged file.

Mapping a file costs system calls that dominate a small read: ``open``,
``fstat``, ``mmap``, the first page fault, and ``munmap`` when the archive
goes away (about 17 us together from Python on the reference machine, where
the lookup and the read itself take about 10 us). Programs that open the same
archive over and over (a cache hit per request, a loop over runs) pay that
every time. So the mapping of each recently opened path is kept: the next
``open`` of the path does one ``stat`` and, if it names the same file
(device, inode and size unchanged), uses the existing mapping. That ``stat``
and the comparison are one call into the C core (``bfa_file_matches``; the
result object of ``os.stat`` cost more than the rest of a warm open), and
what the reader parsed from the mapping while its mtime is unchanged too
(the checked header, the snapshot an open made with the same options, the
root's slots, table geometry, arrays made once: ``caches``) serves the next
open as it is.

Why that is safe:
- Writers replace archives (``dump`` renames a new file over the path), so a
  new version is a new inode and gets a new mapping; the old mapping is
  dropped from here at once (archives and arrays still using it keep it).
  While a mapping exists, its inode cannot be freed and reused.
- The mapping is shared (``MAP_SHARED``, read-only): it shows the file's
  current bytes exactly as a fresh mapping would, so even a file rewritten in
  place (outside the promise, docs/SECURITY.md) reads the same either way. A
  size change is a different key: a mapping is never used past the file's end.

``bfa.load`` (which reads everything once) does not keep its mapping.

Costs: at most ``MAX_IDLE_MAPPINGS`` paths keep a mapping after their
archives are closed (address space; the pages are the page cache's, but
the pages a program touched count in its RSS, as ``RssFile``, while the
mapping is kept, and the kernel can drop them as any clean cache page). A
mapping keeps its file's blocks allocated after the file is deleted or
replaced, until the path is opened again or ``release_mappings()`` runs.
"""
from __future__ import annotations

import errno
import mmap
import os
import stat
import threading
from collections import OrderedDict
from typing import Any

from ._native import ffi, lib

file_matches = lib.bfa_file_matches

MAX_IDLE_MAPPINGS = 16
Identity = tuple[str, int, int, int, int]  # ("file", device, inode, size, mtime_ns)

_lock = threading.Lock()
# path -> (mapping, caches, identity, probe): an entry is replaced whole, never
# changed, so a reader that took one sees its parts together. ``probe``: the
# path as bytes and the identity's four numbers as C reads them, for
# ``bfa_file_matches``; None where the core has no stat(2)
_maps: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

_U64 = (1 << 64) - 1
_C_STAT = file_matches(ffi.NULL, ffi.NULL) == -1


def _probe(name: str, ident: Identity) -> tuple[bytes, Any] | None:
    if not _C_STAT:
        return None
    return os.fsencode(name), ffi.new("uint64_t[4]", [v & _U64 for v in ident[1:]])


def kept_mapping(name: str) -> tuple[Any, ...] | None:
    """The kept entry ``(mapping, caches, identity, probe)`` of ``name`` if
    the path still names the file it maps (the same device, inode, size and
    mtime), checked in one C call: stat(2) and the comparison, instead of
    os.stat, whose result object costs more than the rest of a warm open.
    None if there is no entry, the file differs or stat fails (``map_file``
    then looks again, with os.stat, and says why)."""
    entry = _maps.get(name)
    if entry is None:
        return None
    probe = entry[3]
    if probe is None or file_matches(probe[0], probe[1]) != 1:
        return None
    try:
        _maps.move_to_end(name)  # atomic under the GIL
    except KeyError:  # dropped meanwhile by another thread: still valid here
        pass
    return entry


def map_file(name: str, min_size: int, keep: bool = True
             ) -> tuple[mmap.mmap, dict[str, Any] | None, Identity]:
    """``(mapping, caches, identity)`` for the file at ``name``: the mapping is
    read-only and shared, reused if this path was mapped before and still
    names the same file, and kept for later calls if ``keep``. ``caches`` is
    a dict the reader may fill with what it parsed from the file's bytes
    (table geometry, array descriptors, the root's slots); it is shared by
    every archive over this mapping while the file's mtime is unchanged too,
    and None for a mapping that is not kept. ``identity`` is the mapped
    file's ``("file", device, inode, size, mtime_ns)`` (what pickling by
    reference records, ``_refs.py``).
    Raises OSError (no such file ...), or ``TooSmall`` if the file is
    shorter than ``min_size`` bytes (nothing is mapped then)."""
    entry = kept_mapping(name)
    if entry is not None:
        return entry[0], entry[1], entry[2]
    try:
        st = os.stat(name)
    except OSError:
        st = None
    if st is not None:
        entry = _maps.get(name)
        if entry is not None:
            now = identity(st)
            if entry[2] != now:
                if entry[2][1:4] != now[1:4]:
                    entry = None  # another file now: mapped below
                else:  # touched: what was parsed may be stale
                    entry = (entry[0], {}, now, _probe(name, now))
                    with _lock:
                        _maps[name] = entry
        if entry is not None:
            try:
                _maps.move_to_end(name)  # atomic under the GIL
            except KeyError:  # dropped meanwhile by another thread: still valid here
                pass
            return entry[0], entry[1], entry[2]
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)  # the file actually opened: the key is its identity
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        if st.st_size < min_size:
            raise TooSmall(st.st_size)
        try:
            mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except OSError as exc:  # a special file: the error names it
            raise OSError(exc.errno, exc.strerror, name) from None
    finally:
        os.close(fd)
    ident = identity(st)
    if not keep:
        forget(name)  # an older file's mapping: not to be reused
        return mm, None, ident
    caches: dict[str, Any] = {}
    entry = (mm, caches, ident, _probe(name, ident))
    with _lock:
        _maps[name] = entry
        _maps.move_to_end(name)
        while len(_maps) > MAX_IDLE_MAPPINGS:
            _maps.popitem(last=False)
    return mm, caches, ident


def identity(st: os.stat_result) -> Identity:
    """The identity of a local file: ``("file", device, inode, size,
    mtime_ns)``. Another file at the same path (a rewrite, a copy) differs
    in inode, size or mtime; a copy on another machine differs too."""
    return ("file", st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def forget(name: str, mm: mmap.mmap | None = None) -> None:
    """Drop ``name``'s kept mapping (only if it is ``mm``, when given)."""
    with _lock:
        entry = _maps.get(name)
        if entry is not None and (mm is None or entry[0] is mm):
            del _maps[name]


def release_mappings() -> int:
    """Drop every kept file mapping; return how many were dropped.

    A mapping is unmapped once no open archive, array or memoryview uses it,
    so after this call (and after closing your archives and dropping their
    arrays) no file is mapped by bfast_archive: the blocks of deleted or
    replaced archives are freed. O(number of kept mappings)."""
    with _lock:
        n = len(_maps)
        _maps.clear()
    return n


class TooSmall(Exception):
    """The file is shorter than the caller's minimum (its size is args[0])."""
