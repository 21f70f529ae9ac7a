"""A persistent thread pool for byte work done in C with the GIL released.

Compression, decompression and checksums call C over ranges of chunks; each
call releases the GIL, so ranges run in parallel on threads. Starting a
``ThreadPoolExecutor`` per call costs ~100-300 us (thread creation and
joining), which is as much as decoding a few MiB: the pool here is created
once per process, on first use, and the calling thread runs the first task
itself: a call with two tasks hands at most one to a worker.

A forked child gets a fresh pool (the parent's worker threads do not exist
there). A task that itself calls ``run_parallel`` from a worker runs its
tasks inline, so workers never wait on each other.
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

if TYPE_CHECKING:  # imported with the pool: concurrent.futures brings logging (~5 ms cold)
    from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_size = 0
_in_worker = threading.local()
_T = TypeVar("_T")
_R = TypeVar("_R")


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into at most ``parts`` contiguous, near-equal ranges."""
    parts = max(1, min(parts, n))
    step = -(-n // parts) if n else 0
    return [(a, min(n, a + step)) for a in range(0, n, step)] if n else []


def _mark_worker() -> None:
    _in_worker.active = True


def _get_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool with at least ``workers`` threads (grown if needed)."""
    global _pool, _pool_pid, _pool_size
    pool = _pool
    if pool is not None and _pool_pid == os.getpid() and _pool_size >= workers:
        return pool
    from concurrent.futures import ThreadPoolExecutor

    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < workers:
            # an older, smaller pool is left to finish what it runs; its idle
            # threads exit when the interpreter does
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bfast_archive",
                                       initializer=_mark_worker)
            _pool_pid = os.getpid()
            _pool_size = workers
        return _pool


def run_parallel(fn: Callable[[_T], _R], tasks: Sequence[_T], threads: int) -> list[_R]:
    """``[fn(t) for t in tasks]``, on up to ``threads`` threads (the caller's
    included); results in task order. The first exception a task raises is
    re-raised after every task has finished (none is left running on buffers
    the caller may free). One thread, or one task, runs inline."""
    n = len(tasks)
    if threads <= 1 or n <= 1 or getattr(_in_worker, "active", False):
        return [fn(t) for t in tasks]
    workers = min(threads, n) - 1  # the caller is one of the threads
    pool = _get_pool(workers)
    # every thread takes the next task until none is left
    results: list[Any] = [None] * n  # each slot filled by its task before the return
    errors: list[BaseException] = []
    next_index = iter(range(n))
    take = threading.Lock()

    def drain() -> None:
        while True:
            with take:
                i = next(next_index, None)
            if i is None:
                return
            try:
                results[i] = fn(tasks[i])
            except BaseException as e:  # noqa: BLE001 - re-raised below, after the others
                errors.append(e)
                return

    futures = [pool.submit(drain) for _ in range(workers)]
    drain()
    for f in futures:
        f.result()
    if errors:
        raise errors[0]
    return results
