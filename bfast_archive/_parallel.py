"""A small thread pool for byte work done in C with the GIL released."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into at most ``parts`` contiguous, near-equal ranges."""
    parts = max(1, min(parts, n))
    step = -(-n // parts) if n else 0
    return [(a, min(n, a + step)) for a in range(0, n, step)] if n else []


def run_parallel(fn: Callable[[Any], Any], tasks: Sequence[Any], threads: int) -> list:
    """``[fn(t) for t in tasks]``, on up to ``threads`` threads; results in
    task order. One thread, or one task, runs inline without a pool."""
    if threads <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    with ThreadPoolExecutor(max_workers=min(threads, len(tasks))) as pool:
        return list(pool.map(fn, tasks))
