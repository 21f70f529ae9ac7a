"""Recursion headroom for the writer's and the materialiser's recursive walks."""
from __future__ import annotations

import gc
import sys
from contextlib import contextmanager
from typing import Iterator

FRAMES_PER_LEVEL = 6  # deepest chain: _mat, decoder, _fields, _mat_node, listcomp


@contextmanager
def recursion_headroom(max_depth: int) -> Iterator[None]:
    """Make sure a walk ``max_depth`` levels deep cannot hit RecursionError.

    Python 3.11+ runs Python-to-Python calls without growing the C stack, so a
    higher limit is safe for these pure-Python walks. The limit is only ever
    raised, and put back afterwards unless someone else changed it meanwhile.
    """
    needed = FRAMES_PER_LEVEL * max_depth + 200
    old = sys.getrecursionlimit()
    if old >= needed:
        yield
        return
    sys.setrecursionlimit(needed)
    try:
        yield
    finally:
        if sys.getrecursionlimit() == needed:
            sys.setrecursionlimit(old)


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
