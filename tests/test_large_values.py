"""Sizes past 32-bit offsets: opt-in (BFA_SLOW_TESTS=1), they write ~9 GB."""
import os

import numpy as np
import pytest

import bfast_archive as bfa

slow = pytest.mark.skipif(not os.environ.get("BFA_SLOW_TESTS"),
                          reason="writes several GB; set BFA_SLOW_TESTS=1")
BIG = (1 << 32) + 4096 + 3  # just past 4 GiB, and not a multiple of anything handy


@slow
def test_array_and_bytes_over_4_gib(tmp_path):
    arr = np.zeros(BIG, np.uint8)
    arr[-1] = 7
    arr[1 << 32] = 9
    blob = bytearray(BIG)
    blob[-1] = 5
    path = tmp_path / "big.bfa"
    size = bfa.dump({"arr": arr, "blob": blob, "after": "end"}, path)
    assert size > 2 * BIG
    del arr, blob
    with bfa.Archive.open(path) as arch:
        a = arch["arr"]
        assert a.shape == (BIG,) and a[-1] == 7 and a[1 << 32] == 9
        b = arch["blob"]
        assert b.nbytes == BIG and b[-1] == 5
        assert arch["after"] == "end"


@slow
def test_dict_with_two_million_keys():
    d = {f"k{i}": i for i in range(2_000_000)}
    arch = bfa.Archive.from_buffer(bfa.dumps(d))
    assert len(arch.root) == 2_000_000
    for i in (0, 1, 999_999, 1_999_999):
        assert arch.root[f"k{i}"] == i
    assert "k2000000" not in arch.root
