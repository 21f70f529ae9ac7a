"""DECIMAL text (docs/format/layout.md, "Byte strings"): a reader accepts exactly
the text ``str(Decimal)`` writes, and every Decimal round-trips exactly."""
from __future__ import annotations

import decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bfast_archive as bfa
from tests.support.format_helpers import plain_archive
from tests.support.strategies import decimals

T_DECIMAL = 21


def _decimal_archive(text: bytes) -> bytes:
    return plain_archive(T_DECIMAL, len(text), 64, text)


@pytest.mark.parametrize("text", [b"1e5", b"+1", b".5", b"5.", b"inf", b"nan", b"snan",
                                  b"1.5e-7", b" 1", b"1 ", b"1_000", b"Inf", b"-inf",
                                  b"NaN0", b"1E5", b"01", b"-00", b"", b"abc", b"1E+05"])
def test_non_canonical_decimal_text_is_refused(text):
    with pytest.raises(bfa.ArchiveError, match="decimal"):
        bfa.loads(_decimal_archive(text))


@pytest.mark.parametrize("text", ["1E+5", "1", "0.5", "5", "Infinity", "NaN", "sNaN", "1.5E-7",
                                  "-0", "-0.000", "NaN123", "-sNaN7", "1.10", "-Infinity"])
def test_canonical_decimal_text_is_read(text):
    back = bfa.loads(_decimal_archive(text.encode()))
    assert type(back) is decimal.Decimal and str(back) == text


def test_hand_built_archive_matches_the_writer():
    value = decimal.Decimal("-1.50E+7")
    assert str(bfa.loads(_decimal_archive(str(value).encode()))) == str(value)


@given(decimals | st.decimals(allow_nan=True, allow_infinity=True)
       | st.builds(lambda s, d, e: decimal.Decimal((s, d, e)), st.integers(0, 1),
                   st.tuples(*[st.integers(0, 9)] * 3), st.integers(-10 ** 17, 10 ** 17)))
def test_every_decimal_round_trips_exactly(value):
    back = bfa.loads(bfa.dumps(value))
    assert type(back) is decimal.Decimal and str(back) == str(value)
    assert back.is_signed() == value.is_signed() and back.as_tuple() == value.as_tuple()
