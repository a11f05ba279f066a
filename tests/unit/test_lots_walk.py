"""``apply_quantity``'s shortcut for a change that closes nothing (a new position, or more
of one) equals the general walk through the lots, digit for digit, for both cost bases;
changes against the position still take the walk (closes, partial closes, flips)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_helpers import digits

from portfolio_tx.ledger import CostBasis
from portfolio_tx.ledger.lots import Lot, LotChange, _walk, apply_quantity
from portfolio_tx.ledger.money import exact


def _decimal(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda n, k: Decimal(n).scaleb(k), st.integers(low, high), st.integers(-places, 1)
    )


quantities = _decimal(1, 10**8, 18)
prices = _decimal(1, 10**8, 18)
books = st.tuples(st.booleans(), st.lists(st.tuples(quantities, prices), max_size=4)).map(
    lambda spec: tuple(
        Lot(q if spec[0] else -q, (q if spec[0] else -q) * p) for q, p in spec[1]
    )
)


@exact
def _both(
    lots: tuple[Lot, ...], signed: Decimal, price: Decimal, basis: CostBasis
) -> tuple[LotChange, LotChange]:
    direction = 1 if signed > 0 else -1
    return apply_quantity(lots, signed, price, basis), _walk(
        lots, direction, abs(signed), price, basis
    )


@settings(max_examples=500, deadline=None)
@given(books, quantities, st.booleans(), prices, st.sampled_from(list(CostBasis)))
def test_the_shortcut_equals_the_walk(
    lots: tuple[Lot, ...], quantity: Decimal, buy: bool, price: Decimal, basis: CostBasis
) -> None:
    fast, walked = _both(lots, quantity if buy else -quantity, price, basis)
    assert fast == walked
    assert digits(fast) == digits(walked)


def test_a_close_still_realizes_through_the_walk() -> None:
    lots = (Lot(Decimal(2), Decimal(200)),)
    change, _ = _both(lots, Decimal(-3), Decimal(150), CostBasis.FIFO)
    assert change.lots == (Lot(Decimal(-1), Decimal(-150)),)  # flipped short
    assert change.realized == Decimal(100)  # (150 - 100) · 2
