"""What this process maps, and where an array's memory comes from: for the
tests of zero-copy reads and of mapping reuse."""
from __future__ import annotations

import os

import numpy as np


def file_mappings(path) -> list[tuple[int, int]]:
    """Address ranges at which this process maps ``path`` (from /proc/self/maps)."""
    real = os.path.realpath(path)
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() in (real, real + " (deleted)"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((lo, hi))
    return ranges


def base_chain_end(arr):
    """Follow ``.base`` through arrays and memoryviews to the buffer's owner."""
    obj = arr
    for _ in range(50):
        if isinstance(obj, np.ndarray) and obj.base is not None:
            obj = obj.base
        elif isinstance(obj, memoryview):
            obj = obj.obj
        else:
            return obj
    raise AssertionError("base chain does not end")
