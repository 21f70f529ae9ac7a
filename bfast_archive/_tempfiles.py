"""The temporary files of ``dump`` and the one rule that says which are stray.

``dump`` writes ``.NAME.PID.RANDOM.bfa-tmp`` in the target's directory and
renames it over the target when it is whole. From the moment it creates the
file until it has renamed or removed it, the writer holds an exclusive
``flock`` on it. The kernel drops that lock when the writer's process ends,
however it ends (SIGKILL, power loss of that host, OOM kill), so:

    a temporary file is *stray* exactly when nobody holds its lock.

Whoever takes the lock (non-blocking) may remove the file: ``dump`` does so
for the temporaries of its own target, ``Cache`` for every temporary in its
directory when it scans it (``stats()``, ``clear()``, eviction). No process
id and no age is involved, so the rule holds for a directory shared by
several hosts, as far as their ``flock`` locks reach each other: on a local
filesystem always; over NFS the Linux client turns ``flock`` into NFS
byte-range locks that the server arbitrates (NFSv4, or v3 with lockd), but a
mount with ``local_lock=flock``/``nolock`` keeps them on one host, and then a
writer on another host can have its temporary file removed (its ``dump``
fails with ``FileNotFoundError``; nothing published is ever damaged). Where
locks are not available at all (no ``fcntl``, ``ENOLCK``), no temporary file
is ever judged stray.

The file is created with mode 0o666 and the kernel applies the umask (and a
directory's default ACL), as ``open(path, "w")`` would; the process umask
is never read or changed (changing it races with other threads).
"""
from __future__ import annotations

import os
import secrets

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, nothing judged stray
    fcntl = None  # type: ignore[assignment]

TMP_SUFFIX = ".bfa-tmp"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_NOFOLLOW
_PROBE = os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)


def is_temporary(name: str) -> bool:
    """Is ``name`` (a file name) one of ``dump``'s temporary files?"""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def _try_lock(fd: int) -> bool | None:
    """Take the exclusive flock of ``fd`` without waiting: True if taken,
    False if another open file holds it, None if locks are unavailable."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EINVAL...: this filesystem does not lock
        return None
    return True


def create(directory: str, name: str) -> tuple[int, str]:
    """Create and lock a new temporary file for target ``name`` in
    ``directory``; return its descriptor and path. The caller keeps the
    descriptor open (and so the lock held) until it has renamed or removed
    the file. Cost: an open and a flock (a retry if a cleaner removed the
    file between the two, which the lock-then-check below detects)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(6)}{TMP_SUFFIX}")
        try:
            fd = os.open(tmp, _CREATE, 0o666)
        except FileExistsError:
            continue
        try:
            locked = _try_lock(fd)
            # unlocked between open and flock, a cleaner may have taken and removed it
            if locked is None or (locked and os.fstat(fd).st_nlink > 0):
                return fd, tmp
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise FileExistsError(f"could not create a temporary file for {name!r} in {directory!r}")


def remove_if_stray(path: str) -> bool:
    """Remove the temporary file at ``path`` if no writer holds its lock;
    True if it was removed. Cost: an open, a flock and, for a stray, an
    unlink. A file that cannot be opened or locked is left alone."""
    try:
        fd = os.open(path, _PROBE)
    except OSError:  # gone meanwhile, or not readable by us: not ours to judge
        return False
    try:
        if not _try_lock(fd):
            return False
        mine = os.fstat(fd)
        try:
            now = os.stat(path, follow_symlinks=False)
            if (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev):
                return False  # renamed away and the name reused meanwhile
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True
    finally:
        os.close(fd)


def remove_stray(directory: str, prefix: str = ".") -> None:
    """Remove the stray temporary files in ``directory`` whose names start
    with ``prefix`` (``dump`` passes ``.NAME.``: its own target's)."""
    try:
        with os.scandir(directory) as it:
            names = [e.name for e in it if e.name.startswith(prefix) and is_temporary(e.name)]
    except OSError:
        return
    for entry in names:
        remove_if_stray(os.path.join(directory, entry))
