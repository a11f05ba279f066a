"""``stage_fills`` (one pass over a cycle's fills, the worker's path) equals ``stage_fill``
one fill at a time, digit for digit: the staged cash, lots, fees and realized P&L, and the
decision taken on them, over random runs of buys and sells (flips through zero, shorts,
rebates, partial and whole closes), both cost bases, on a base state that already holds
lots, with and without lot-defined symbols. A bad fill stages nothing of its run."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_helpers import digits

from portfolio_tx import ledger
from portfolio_tx.errors import ValidationError
from portfolio_tx.ledger import CostBasis, PortfolioState, Side
from portfolio_tx.ledger import journal as ops
from portfolio_tx.store.memory import MemoryStateStore
from portfolio_tx.transaction import PortfolioTransaction

SYMBOLS = ("BTC", "ETH", "SOL")


def _decimal(low: int, high: int, places: int, up: int = 0) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda n, k: Decimal(n).scaleb(k), st.integers(low, high), st.integers(-places, up)
    )


fills = st.lists(
    st.builds(
        ops.Fill,
        st.sampled_from(SYMBOLS),
        st.sampled_from(list(Side)),
        _decimal(1, 10**6, 6, up=1),
        _decimal(1, 10**8, 8, up=1),
        _decimal(-(10**4), 10**4, 4),  # rebates too
    ),
    max_size=14,
)


def _base(opening: list[ops.Fill], basis: CostBasis) -> PortfolioState:
    """A committed state holding whatever ``opening`` left open, marked at 100."""
    staged = ops.replay(PortfolioState(), basis, opening)
    decision = ledger.decide(staged, dict.fromkeys(staged.held_symbols(), Decimal(100)))
    return decision.state if decision.committed else PortfolioState()


@settings(max_examples=300, deadline=None)
@given(fills, fills, st.sampled_from(list(CostBasis)))
def test_one_pass_equals_fill_by_fill(
    opening: list[ops.Fill], run: list[ops.Fill], basis: CostBasis
) -> None:
    staged = ledger.open_cycle(_base(opening, basis), basis)
    expected = staged
    for fill in run:
        expected = ledger.stage_fill(
            expected, fill.symbol, fill.side, fill.quantity, fill.price, fill.fee
        )
    folded = ops.step_fills(staged, run, frozenset())
    assert folded == expected
    assert digits(folded) == digits(expected)
    assert list(folded.lots) == list(expected.lots)  # the same symbol order, too


@settings(max_examples=100, deadline=None)
@given(fills, st.sampled_from(SYMBOLS), st.sampled_from(list(CostBasis)))
def test_a_lot_defined_symbol_is_stepped_as_before(
    run: list[ops.Fill], defined: str, basis: CostBasis
) -> None:
    staged = ledger.open_cycle(PortfolioState(), basis)
    lot_defined = frozenset({defined})
    expected = staged
    for fill in run:
        expected = ops.step(expected, fill, lot_defined)
    assert digits(ops.step_fills(staged, run, lot_defined)) == digits(expected)


@settings(max_examples=100, deadline=None)
@given(fills, st.sampled_from(list(CostBasis)))
def test_the_transaction_stages_and_decides_the_same_way(
    run: list[ops.Fill], basis: CostBasis
) -> None:
    def transaction() -> PortfolioTransaction:
        return PortfolioTransaction(MemoryStateStore(), "s1", cost_basis=basis, cycle_id=1)

    one_by_one, in_one_pass = transaction(), transaction()
    for fill in run:
        one_by_one.stage_fill(fill.symbol, fill.side, fill.quantity, fill.price, fill.fee)
    in_one_pass.stage_fills((f.symbol, f.side.value, f.quantity, f.price, f.fee) for f in run)
    assert digits(in_one_pass.staged) == digits(one_by_one.staged)
    marks = dict.fromkeys(SYMBOLS, Decimal("101.25"))
    assert in_one_pass.commit(marks) == one_by_one.commit(marks)
    assert digits(in_one_pass.decision) == digits(one_by_one.decision)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (("ETH", "HOLD", "1", "10", "0"), "unknown side 'HOLD'"),
        (("ETH", "BUY", "0", "10", "0"), "quantity must be positive"),
        (("ETH", "SELL", "1", "-10", "0"), "price must be positive"),
        (("ETH", "BUY", "1", "x", "0"), "price"),
    ],
)
def test_a_bad_fill_stages_nothing_of_its_run(
    bad: tuple[str, str, str, str, str], message: str
) -> None:
    tx = PortfolioTransaction(MemoryStateStore(), "s1", cycle_id=1)
    tx.stage_fill("BTC", "BUY", "1", "100", "0")
    before = tx.staged
    with pytest.raises(ValidationError, match=message):
        tx.stage_fills([("BTC", "BUY", "2", "100", "1"), bad, ("SOL", "BUY", "1", "5", "0")])
    assert tx.staged is before
    assert tx.staged.cash == Decimal(-100)
