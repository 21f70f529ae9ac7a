"""A whole read checks what it reads: load, loads and to_python verify the
archive's XXH64 checksums (docs/format/layout.md, "Directory"), so a damaged byte
gives ArchiveError, never altered data; verify=False skips them; a lazy
Archive.open hashes nothing."""
from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import payloads
from tests.support.format_helpers import read_header


def _sample() -> dict:
    """A small archive touching every kind of node and referent."""
    return {
        "ints": list(range(40)) + [2 ** 70, -(2 ** 65)],
        "text": "a string long enough to be a referent, with ünïcödé",
        "blob": bytes(range(48)),
        "arr": np.arange(24, dtype="<i4").reshape(4, 6),
        "rec": np.zeros(3, [("a", "<f8"), ("b", "|S5")]),
        "users": [{"id": i, "name": f"user {i}", "score": i / 3, "ok": i % 2 == 0,
                   "tags": ["x", "yy"]} for i in range(6)],
        "misc": (dt.datetime(2024, 5, 6, 7, 8, 9), dt.timedelta(days=3), 1 + 2j,
                 decimal.Decimal("3.14"), uuid.UUID(int=7), np.float32(1.5),
                 frozenset({1, 2}), None, True),
    }


def _same(a, b) -> bool:
    """Equal values, types and bits: their canonical archives are equal."""
    return bfa.dumps(a) == bfa.dumps(b)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_a_flipped_bit_anywhere_never_loads_as_altered_data():
    value = _sample()
    data = bfa.dumps(value)
    assert len(data) < 8192
    nodes_end = read_header(data)["nodes_end"]
    silent = []
    for bit in range(8 * len(data)):
        try:
            back = bfa.loads(_flip(data, bit))
        except bfa.ArchiveError:
            continue
        assert _same(back, value), f"bit {bit} (byte {bit // 8}) loaded as altered data"
        silent.append(bit // 8)
    # every byte of the header and the nodes is under a checksum
    assert not [at for at in silent if at < nodes_end]


def test_a_flipped_bit_in_a_compressed_archive_never_loads_as_altered_data():
    value = _sample()
    rng = np.random.default_rng(3)
    value["noise"] = rng.integers(0, 256, 70_000, dtype=np.uint8)  # a RAW payload, read in place
    value["zeros"] = np.zeros(70_000, np.uint8)                     # an LZ4 payload
    data = bfa.dumps(value, compression="lz4")
    # every byte of the header, the nodes' chunk and the start of the payloads,
    # then every 37th byte, and the whole directory
    sections_off = read_header(data)["sections_off"]
    for at in [*range(2000), *range(2000, sections_off, 37), *range(sections_off, len(data))]:
        try:
            back = bfa.loads(_flip(data, 8 * at + at % 8))
        except bfa.ArchiveError:
            continue
        assert _same(back, value), f"byte {at} loaded as altered data"


def test_verify_false_skips_the_checksums():
    text = "x" * 200
    data = bfa.dumps({"t": text})
    bad = data.replace(text.encode(), b"y" + text[1:].encode())
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch"):
        bfa.loads(bad)
    assert bfa.loads(bad, verify=False) == {"t": "y" + text[1:]}


def test_load_names_the_damaged_file(tmp_path):
    path = tmp_path / "damaged.bfa"
    bfa.dump({"t": "z" * 300}, path)
    data = bytearray(path.read_bytes())
    data[data.index(b"zzzz")] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(bfa.ArchiveError, match=r"damaged\.bfa: checksum mismatch"):
        bfa.load(path)
    assert bfa.load(path, verify=False)["t"][0] == "{"


def test_open_hashes_nothing_and_lazy_reads_stay_per_access(tmp_path, monkeypatch):
    path = tmp_path / "a.bfa"
    bfa.dump({"t": "z" * 300, "n": 5}, path)
    data = bytearray(path.read_bytes())
    data[data.index(b"zzzz")] ^= 1
    path.write_bytes(bytes(data))
    calls = []
    monkeypatch.setattr(payloads.FileLayer, "_verify_entries",
                        lambda self, *a: calls.append(a))
    with bfa.Archive.open(path) as arch:
        assert arch["n"] == 5 and arch["t"][0] == "{"
    assert calls == []


def test_archive_to_python_verifies():
    bad = bytearray(bfa.dumps({"t": "q" * 300}))
    bad[bad.index(b"qqqq")] ^= 4
    arch = bfa.Archive.from_buffer(bytes(bad))
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch"):
        arch.to_python()
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch"):
        arch.root.to_python()
    assert arch.to_python(verify=False)["t"][0] == "u"


def test_view_to_python_checks_the_sections_below_its_node():
    # sections are cut at large regions: "early" lies in the first, "late" in
    # the last (a large bytes value, not an array: array data is laid out first)
    value = {"early": ["e" * 100] * 3, "big": bytes(3 << 20), "late": ["l" * 100]}
    data = bytearray(bfa.dumps(value))
    assert struct.unpack_from("<Q", data, read_header(bytes(data))["sections_off"])[0] >= 3
    data[data.rindex(b"llll")] ^= 1
    arch = bfa.Archive.from_buffer(bytes(data))
    assert arch["early"].to_python() == ["e" * 100] * 3   # its sections are intact
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch"):
        arch["late"].to_python()


def test_sections_are_hashed_once_per_archive(monkeypatch):
    arch = bfa.Archive.from_buffer(bfa.dumps({"a": [1, 2], "b": ["x" * 100]}))
    calls = []
    real = payloads.FileLayer._verify_entries
    monkeypatch.setattr(payloads.FileLayer, "_verify_entries",
                        lambda self, *a: calls.append(a[:2]) or real(self, *a))
    for _ in range(3):
        arch.to_python()
        arch["b"].to_python()
    assert calls == [(0, 1)]


def test_table_row_to_python_verifies():
    data = bytearray(bfa.dumps([{"name": "n" * 80 + str(i)} for i in range(5)]))
    data[data.index(b"nnnn")] ^= 1
    arch = bfa.Archive.from_buffer(bytes(data))
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch"):
        arch.root[3].to_python()


def test_model_load_verifies():
    from pydantic import BaseModel

    class M(BaseModel):
        name: str

    data = bytearray(bfa.dumps(M(name="m" * 100)))
    data[data.index(b"mmmm")] ^= 1
    for trusted in (False, True):
        with pytest.raises(bfa.ArchiveError, match="checksum mismatch"):
            bfa.loads(bytes(data), model=M, trusted=trusted)
        assert bfa.loads(bytes(data), model=M, trusted=trusted, verify=False).name[0] == "l"


def test_compressed_payload_read_in_place_is_verified_when_copied():
    noise = np.random.default_rng(1).integers(0, 256, 1 << 17, dtype=np.uint8)  # stays RAW
    data = bytearray(bfa.dumps({"noise": noise}, compression="lz4"))
    at = data.index(noise[:64].tobytes()) + 1000
    data[at] ^= 1
    arch = bfa.Archive.from_buffer(bytes(data))
    assert arch["noise"][1000 - 0] != noise[1000]      # a lazy view reads in place, unchecked
    with pytest.raises(bfa.ArchiveError, match="checksum mismatch"):
        bfa.loads(bytes(data))
    assert bfa.loads(bytes(data), verify=False)["noise"][1000] != noise[1000]
