"""Bulk data first (docs/format/canonical-form.md): the element data of the
large arrays a bounded scan finds is laid out before any node, so the nodes
(and the root) sit together at the end of an uncompressed archive."""
import numpy as np
import pydantic
import pytest

import bfast_archive as bfa
from bfast_archive import _bulk
from bfast_archive import format as F
from tests.support.format_helpers import read_header

A = np.arange(40_000, dtype=np.float32).reshape(-1, 100)       # 160,000 bytes
B = np.arange(50_000, 70_000, dtype=np.int64)                  # 160,000 bytes
SMALL = np.arange(10, dtype=np.int16)


def at(data: bytes, arr: np.ndarray) -> int:
    return bytes(data).index(arr.tobytes())


def test_large_arrays_come_first_in_scan_order_and_nodes_last():
    value = {"meta": {"name": "run", "b": B}, "users": [{"id": i} for i in range(100)],
             "a": A, "small": SMALL}
    data = bfa.dumps(value)
    assert at(data, B) == 64                       # depth first: meta's array before "a"
    assert at(data, A) == 64 + len(B.tobytes())    # 64-aligned, back to back
    nodes_end = read_header(data)["nodes_end"]
    assert nodes_end - (at(data, A) + A.nbytes) < 4096   # every node after the bulk data
    assert at(data, SMALL) > at(data, A)           # small arrays stay with their nodes
    back = bfa.loads(data)
    assert np.array_equal(back["a"], A) and np.array_equal(back["meta"]["b"], B)
    assert np.array_equal(back["small"], SMALL)


def test_views_of_laid_out_arrays_share_the_mapping(tmp_path):
    bfa.dump({"a": A, "b": B}, tmp_path / "x.bfa")
    with bfa.Archive.open(tmp_path / "x.bfa") as arch:
        a = arch["a"]
        assert np.array_equal(a, A) and not a.flags.owndata
        assert a.__array_interface__["data"][0] % 64 == 0
        base = a
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        assert not isinstance(base, np.ndarray) or not base.flags.owndata


def test_an_array_met_twice_is_stored_twice_like_two_equal_arrays():
    same = bfa.dumps({"x": A, "y": A, "z": [A]})
    assert same == bfa.dumps({"x": A.copy(), "y": A.copy(), "z": [A.copy()]})
    back = bfa.loads(same)
    assert all(np.array_equal(v, A) for v in (back["x"], back["y"], back["z"][0]))


def test_memmap_fortran_and_strided_arrays_are_laid_out_first(tmp_path):
    mm = np.memmap(tmp_path / "m.dat", dtype=np.float64, mode="w+", shape=(300, 100))
    mm[:] = np.arange(30_000).reshape(300, 100)
    fortran = np.asfortranarray(np.arange(30_000, 60_000, dtype=np.float64).reshape(300, 100))
    strided = np.arange(60_000, 100_000, dtype=np.float64)[::2]
    data = bfa.dumps({"mm": mm, "f": fortran, "s": strided})
    assert at(data, np.asarray(mm)) == 64
    assert at(data, fortran.T) == 64 + mm.nbytes           # stored in Fortran order
    assert at(data, np.ascontiguousarray(strided)) == 64 + mm.nbytes + fortran.nbytes
    back = bfa.loads(data)
    assert np.array_equal(back["mm"], mm) and back["f"].flags.f_contiguous
    assert np.array_equal(back["f"], fortran) and np.array_equal(back["s"], strided)


def test_arrays_past_the_scan_limit_are_written_with_their_nodes():
    filler = list(range(_bulk.SCAN_LIMIT))
    data = bfa.dumps({"filler": filler, "late": A})
    assert at(data, A) > 64 + 8 * len(filler)
    assert np.array_equal(bfa.loads(data)["late"], A)
    data = bfa.dumps({"filler": filler[:-10], "early": A})
    assert at(data, A) == 64


def test_records_are_not_entered_by_the_scan():
    rows = [{"id": i, "emb": A + i} for i in range(F.TABLE_MIN_ROWS)]
    found = _bulk.large_arrays({"rows": rows, "a": A})
    assert [a is A for _, a in found] == [True]
    back = bfa.loads(bfa.dumps({"rows": rows, "a": A}))
    assert all(np.array_equal(r["emb"], A + i) for i, r in enumerate(back["rows"]))


class Bundle(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    name: str
    emb: np.ndarray


class Doubled(Bundle):
    @pydantic.field_serializer("emb")
    def _double(self, v: np.ndarray) -> np.ndarray:
        return v * 2


def test_model_fields_are_scanned():
    data = bfa.dumps({"bundle": Bundle(name="b", emb=A)})
    assert at(data, A) == 64
    assert np.array_equal(bfa.loads(data)["bundle"]["emb"], A)


def test_a_model_with_a_serializer_is_not_entered():
    data = bfa.dumps({"bundle": Doubled(name="d", emb=A), "b": B})
    assert at(data, B) == 64
    assert np.array_equal(bfa.loads(data)["bundle"]["emb"], A * 2)


def test_an_array_laid_out_first_but_not_written_gives_the_layout_without_bulk_first(monkeypatch):
    value = {"b": B, "small": SMALL}
    monkeypatch.setattr(_bulk, "large_arrays", lambda root: [])
    expected = bfa.dumps(value)
    # a scan that found an array the walk does not write (as a serializer
    # replacing a value could make it): no data may be left unreferenced
    monkeypatch.setattr(_bulk, "large_arrays", lambda root: [(id(A), A), (id(B), B)])
    assert bfa.dumps(value) == expected
    assert np.array_equal(bfa.loads(expected)["b"], B)


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_archiving_a_view_gives_the_bytes_of_its_value(compression):
    arch = bfa.Archive.from_buffer(bfa.dumps({"v": {"a": A, "l": [B, SMALL]}}, compression=compression))
    for view in (arch.root, arch["v"], arch["v"]["l"]):
        assert bfa.dumps(view) == bfa.dumps(view.to_python())


def test_archiving_an_array_handle_lays_its_data_out_first():
    arch = bfa.Archive.from_buffer(bfa.dumps({"a": A, "b": B}))
    data = bfa.dumps({"h": arch.array("a"), "b": B})
    assert at(data, A) == 64
    assert data == bfa.dumps({"h": A, "b": B})


def test_compressed_archives_keep_large_arrays_as_payloads():
    data = bfa.dumps({"a": A}, compression="lz4")
    assert read_header(data)["nodes_end"] < A.nbytes
    assert np.array_equal(bfa.loads(data)["a"], A)
