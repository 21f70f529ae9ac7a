"""Pickling archives and their views by reference.

An ``Archive`` opened from a file pickles as an ``ArchiveRef``: the file's
absolute path, its identity when it was opened (``("file", device, inode,
size, mtime_ns)``, ``_mappings.identity``) and the options it was opened
with. Unpickling opens the file again with those options (``reopen``) and
refuses, with ``ArchiveError`` naming the path, a file whose identity is not
the pickled one: rewritten, replaced, touched, or a copy (a copy is another
file, on this machine or on another one). A view pickles as its archive and
its coordinates in it (a node's offset, a row number); the same identity
guarantees they name the same node, so a view is never rebuilt over other
bytes.

The pickle of an archive is small (a path and a few numbers) and unpickling
costs what ``Archive.open`` costs (a ``stat`` for a file this process has
mapped before; a compressed archive decompresses its nodes again). Views
pickled together share one archive when unpickled (pickle's memo); each
``pickle.loads`` opens its own.

An archive opened from a URL pickles the same way: the URL, the object's
identity (ETag or generation, version, size) and the options, its
``storage_options`` included (credentials in them travel with the pickle,
as in Dask's graphs); a replaced object is refused when unpickled.

An archive over a caller's buffer (``Archive.from_buffer``) has no file to
name and cannot be pickled by reference: ``TypeError``.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

from ._urls import is_url
from .errors import ArchiveError

if TYPE_CHECKING:
    from .archive import Archive


class ArchiveRef(NamedTuple):
    """What an archive pickles as: enough to open the same file again."""

    path: str          # absolute, or a URL
    identity: tuple[Any, ...]        # ("file", device, inode, size, mtime_ns) or
    #                                  ("remote", etag, version, size)
    options: tuple[tuple[str, Any], ...]  # Archive.open's keyword options


def check_identity(name: str, pickled: tuple[Any, ...], now: tuple[Any, ...]) -> None:
    """The one comparison of a reference's identity with the current one:
    ArchiveError naming ``name`` unless they are the same object. (A remote
    object's identity, an ETag or version and a size, compares here too.)"""
    if pickled != now:
        raise ArchiveError(
            f"{name}: the file changed since the archive was pickled (identity "
            f"{_shown(pickled)} then, {_shown(now)} now): it is refused, as its offsets "
            f"may name other bytes. A copy of the file, here or on another machine, is a "
            f"different file")


def _shown(identity: tuple[Any, ...]) -> str:
    if identity and identity[0] == "file" and len(identity) == 5:
        _, dev, ino, size, mtime = identity
        return f"device {dev}, inode {ino}, {size} bytes, mtime_ns {mtime}"
    return repr(identity)


def check_unchanged(ref: ArchiveRef) -> None:
    """ArchiveError unless the file at ``ref.path`` is still the file
    ``ref`` names (or if it is gone). Cost: one ``stat``."""
    from ._mappings import identity as identity_of

    try:
        st = os.stat(ref.path)
    except FileNotFoundError:
        raise ArchiveError(f"{ref.path}: the file of the pickled archive is gone") from None
    check_identity(ref.path, ref.identity, identity_of(st))


def reopen(ref: ArchiveRef) -> Archive:
    """Open the archive ``ref`` names, as it was opened (same options), and
    check that the file is the one pickled (before reading it, and the file
    actually mapped). Cost: ``Archive.open`` and a ``stat``."""
    from .archive import Archive

    path, identity, options = ref
    if not is_url(path):  # (a remote object's identity is checked once it is open)
        check_unchanged(ref)
    try:
        arch = Archive.open(path, **dict(options))
    except FileNotFoundError:
        raise ArchiveError(f"{path}: the file of the pickled archive is gone") from None
    assert arch._ref is not None  # (a file's archive)
    try:
        check_identity(path, identity, arch._ref.identity)
    except ArchiveError:
        arch.close()
        raise
    return arch
