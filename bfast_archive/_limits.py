"""Recursion headroom for the writer's and the materialiser's recursive walks."""
from __future__ import annotations

import gc
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

FRAMES_PER_LEVEL = 6  # deepest chain: _mat, decoder, _fields, _mat_node, listcomp


class recursion_headroom:
    """Make sure a walk ``max_depth`` levels deep cannot hit RecursionError.

    Python 3.11+ runs Python-to-Python calls without growing the C stack, so a
    higher limit is safe for these pure-Python walks. The limit is process
    wide, so walks share it: the first walk to start raises it (never lowers
    it), and it is put back only when the last walk in any thread ends, and
    only if nobody else changed it meanwhile.
    """

    __slots__ = ("needed",)
    _lock = threading.Lock()
    _active = 0
    _saved = 0  # the limit before the first active walk raised it (set as it starts)
    _raised_to: int | None = None

    def __init__(self, max_depth: int) -> None:
        self.needed = FRAMES_PER_LEVEL * max_depth + 200

    def __enter__(self) -> None:
        cls = recursion_headroom
        with cls._lock:
            if cls._active == 0:
                cls._saved = sys.getrecursionlimit()
                cls._raised_to = None
            cls._active += 1
            if sys.getrecursionlimit() < self.needed:
                sys.setrecursionlimit(self.needed)
                cls._raised_to = self.needed

    def __exit__(self, *exc: object) -> None:
        cls = recursion_headroom
        with cls._lock:
            cls._active -= 1
            if (cls._active == 0 and cls._raised_to is not None
                    and sys.getrecursionlimit() == cls._raised_to):
                sys.setrecursionlimit(cls._saved)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a materialisation builds
    many containers. The objects built are acyclic, so there is nothing for
    it to find; without the pause, CPython re-scans the growing result on
    every generation-0 threshold. A collector the caller disabled stays off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
