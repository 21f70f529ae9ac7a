"""The persistent thread pool behind compression, decoding and verify()."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import _parallel
from bfast_archive._parallel import run_parallel, split_range


def test_split_range_covers_every_index_once():
    for n in range(0, 40):
        for parts in range(1, 9):
            ranges = split_range(n, parts)
            assert [i for a, b in ranges for i in range(a, b)] == list(range(n))
            assert len(ranges) <= parts


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("ntasks", [0, 1, 2, 3, 17])
def test_results_come_back_in_task_order(threads, ntasks):
    def slow_square(x):
        time.sleep(0.001 * ((x * 7) % 3))  # finish out of order
        return x * x

    assert run_parallel(slow_square, list(range(ntasks)), threads) == [x * x for x in range(ntasks)]


def test_tasks_really_run_on_more_than_one_thread():
    seen = set()
    barrier = threading.Barrier(2, timeout=10)

    def task(_):
        seen.add(threading.get_ident())
        barrier.wait()  # deadlocks (BrokenBarrierError after 10 s) if run one at a time

    run_parallel(task, [0, 1], 2)
    assert len(seen) == 2


@pytest.mark.parametrize("ntasks", [2, 9])
def test_an_exception_is_raised_after_every_task_finished(ntasks):
    finished = []

    def task(x):
        if x == 1:
            raise ValueError("task 1 failed")
        time.sleep(0.02)
        finished.append(x)

    with pytest.raises(ValueError, match="task 1 failed"):
        run_parallel(task, list(range(ntasks)), 2)
    if ntasks == 2:
        assert finished == [0]  # the other task ran to its end before the raise
    # after the raise nothing is still running: the count stays put
    count = len(finished)
    time.sleep(0.05)
    assert len(finished) == count


def test_a_nested_call_from_a_worker_runs_inline():
    def outer(x):
        return run_parallel(lambda y: (x, y), [0, 1, 2], 2)

    assert run_parallel(outer, [0, 1], 2) == [[(0, 0), (0, 1), (0, 2)], [(1, 0), (1, 1), (1, 2)]]


def test_the_pool_is_reused_between_calls():
    run_parallel(lambda x: x, [0, 1], 2)
    pool = _parallel._pool
    run_parallel(lambda x: x, [0, 1], 2)
    assert _parallel._pool is pool


def test_many_caller_threads_share_the_pool():
    out = {}

    def caller(k):
        out[k] = run_parallel(lambda x: x + k, list(range(6)), 2)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert out == {k: [x + k for x in range(6)] for k in range(8)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_working_pool(tmp_path):
    data = {"a": np.arange(3 << 20, dtype=np.int64) % 13}
    path = tmp_path / "x.bfa"
    bfa.dump(data, path, compression="lz4", chunk_size=1 << 16, threads=2)
    with bfa.Archive.open(path, threads=2) as arch:  # the parent's pool exists now
        assert np.array_equal(arch["a"], data["a"])
    pid = os.fork()
    if pid == 0:  # child: must not wait forever on the parent's (absent) workers
        code = 1
        try:
            with bfa.Archive.open(path, threads=2) as arch:
                code = 0 if np.array_equal(arch["a"], data["a"]) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung decoding on the parent's pool")
