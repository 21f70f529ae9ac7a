"""Behaviours that were once deviations of the reader from the spec and now
follow it (CHANGELOG.md, 0.1.0, "Deviations from the format": the "no longer
deviations" paragraph): each is checked here so that the deviation cannot
silently come back."""
from __future__ import annotations

import decimal
import struct

import pytest

import bfast_archive as bfa
from tests.support.format_helpers import fix_checksums, read_header


def _share_first_item(value: list) -> bytes:
    """The archive of ``value`` (a list) with its second slot naming the
    first slot's referent (V12: a shared referent)."""
    raw = bytearray(bfa.dumps(value))
    node = read_header(bytes(raw))["root_payload"]
    first = struct.unpack_from("<QQ", raw, node + 8)
    struct.pack_into("<QQ", raw, node + 24, *first)
    return fix_checksums(bytes(raw))


@pytest.mark.parametrize("value", [[2 ** 800, 2 ** 801], [decimal.Decimal("1" * 100),
                                                         decimal.Decimal("2" * 100)]],
                         ids=["bigint", "decimal"])
def test_large_bigint_or_decimal_referent_shared_is_refused_on_copy(value):
    data = _share_first_item(value)
    with pytest.raises(bfa.ArchiveError, match="referenced twice"):
        bfa.loads(data)
    root = bfa.Archive.from_buffer(data).root
    assert root[0] == root[1] == value[0]  # lazy reads: one value at a time


def test_model_body_of_another_type_is_refused():
    from pydantic import BaseModel

    class M(BaseModel):
        x: int

    raw = bytearray(bfa.dumps(M(x=5)))
    node = read_header(bytes(raw))["root_payload"]
    struct.pack_into("<Qq", raw, node + 24, 3, 5)  # body: INT 5
    with pytest.raises(bfa.ArchiveError, match="body"):
        bfa.loads(fix_checksums(bytes(raw)))
