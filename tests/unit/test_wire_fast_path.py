"""The fast decimal → wire bytes path equals the quantizing reference, digit for digit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portfolio_tx.wire.records import EXACT, WIRE, DecimalType


def _outcome(kind: DecimalType, value: Decimal) -> bytes | str:
    try:
        return kind.unscaled_bytes(value)
    except (ValueError, ArithmeticError):
        return "rejected"


def _reference(kind: DecimalType, value: Decimal) -> bytes | str:
    try:
        return kind.unscaled_bytes_reference(value)
    except (ValueError, ArithmeticError):
        return "rejected"


# integers of up to 80 digits at exponents from -60 to +40: values with fewer and more
# decimals than the scale, ties at the rounding digit, and values past the precision
decimals = st.builds(
    lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
    st.lists(st.integers(0, 9), min_size=1, max_size=80),
    st.integers(-60, 40),
    st.booleans(),
)


@pytest.mark.parametrize("kind", [WIRE, EXACT], ids=["wire", "exact"])
@given(value=decimals)
@example(value=Decimal("0.0000000000000000005"))  # a tie at scale 18: half-even to 0
@example(value=Decimal("0.0000000000000000015"))  # ... and to 2e-18
@example(value=Decimal("99999999999999999999.999999999999999999"))  # the largest WIRE
@example(value=Decimal("99999999999999999999.9999999999999999995"))  # rounds past it
@example(value=Decimal("-0"))
@example(value=Decimal("1E+90"))
def test_fast_path_equals_reference(kind: DecimalType, value: Decimal) -> None:
    assert _outcome(kind, value) == _reference(kind, value)


def test_the_known_encodings() -> None:
    # hand-worked: 1.5 at scale 18 is 1500000000000000000 = 0x14D1120D7B160000
    assert WIRE.unscaled_bytes(Decimal("1.5")) == bytes.fromhex("14d1120d7b160000")
    # -1e-18 is the unscaled integer -1: one byte, two's complement
    assert WIRE.unscaled_bytes(Decimal("-0.000000000000000001")) == b"\xff"
    assert WIRE.unscaled_bytes(Decimal("0")) == b"\x00"
    with pytest.raises(ValueError, match="does not fit"):
        WIRE.unscaled_bytes(Decimal("1E+20"))
