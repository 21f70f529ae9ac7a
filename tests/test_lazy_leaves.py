"""Lazy reads of the scalar nodes that hold no child slots (BIGINT, DATE,
UUID, DECIMAL) decode them in place, without a copy-out walk: the same
value, type and errors as a full load."""
from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bfast_archive as bfa
from bfast_archive import _decode
from tests.support.format_helpers import plain_archive
from tests.support.strategies import decimals

T_DECIMAL = 21
LEAVES = (st.integers(min_value=2 ** 63, max_value=2 ** 200)
          | st.integers(min_value=-(2 ** 200), max_value=-(2 ** 63) - 1)
          | st.dates() | st.uuids() | decimals
          | st.decimals(allow_nan=True, allow_infinity=True))


def exact(a, b) -> bool:
    return type(a) is type(b) and (str(a) == str(b) if isinstance(a, decimal.Decimal) else a == b)


@given(st.lists(LEAVES, min_size=1, max_size=6))
def test_a_lazy_read_gives_what_a_load_gives(values):
    blob = bfa.dumps(values)
    loaded = bfa.loads(blob)
    with bfa.Archive.from_buffer(blob) as arch:
        lazy = [arch.root[i] for i in range(len(values))]
    assert all(exact(a, b) for a, b in zip(lazy, loaded)) and all(exact(a, b) for a, b in zip(lazy, values))


def test_leaf_nodes_in_a_record_table_read_lazily():
    rows = [{"id": uuid.UUID(int=i), "price": decimal.Decimal(f"{i}.50"), "day": dt.date(2020, 1, 1) + dt.timedelta(days=i),
             "big": 2 ** 70 + i} for i in range(80)]
    with bfa.Archive.from_buffer(bfa.dumps(rows)) as arch:
        assert isinstance(arch.root, bfa.ArchivedTable)
        for i in (0, 41, 79):
            row = arch.root[i]
            assert [row[k] for k in rows[i]] == list(rows[i].values())
            assert type(row["price"]) is decimal.Decimal and str(row["price"]) == f"{i}.50"


def test_the_leaf_decoders_are_the_full_loads_own():
    """The in-place path calls the decoders a load calls, so it refuses what a load refuses."""
    assert all(_decode._LEAVES[tag] is _decode._SCALARS[tag] for tag in _decode._LEAVES)


@pytest.mark.parametrize("text", [b"1e5", b"+1", b"01", b"", b"NaN0"])
def test_a_lazy_read_refuses_a_non_canonical_decimal_as_a_load_does(text):
    data = plain_archive(T_DECIMAL, len(text), 64, text)
    with pytest.raises(bfa.ArchiveError, match="decimal"):
        bfa.loads(data)
    with bfa.Archive.from_buffer(data) as arch, pytest.raises(bfa.ArchiveError, match="decimal"):
        arch.root


def test_max_depth_zero_still_refuses_a_leaf_read():
    with bfa.Archive.from_buffer(bfa.dumps([uuid.UUID(int=5)]), max_depth=0) as arch, \
            pytest.raises(bfa.ArchiveError, match="max_depth=0"):
        arch.root[0]
