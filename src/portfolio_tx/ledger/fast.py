"""``decide_fast``: ``validation.decide``, the same Decimal operations in the same order,
without the reference's layering cost.

``validation.decide`` stays the rule as written in CONTRACT §2 and the reference: it sums a
symbol's lot quantities and costs up to three times (value, unrealized, booked realized),
through nested helpers that each re-check the decimal context. Here each symbol's quantity
and cost are summed once and reused, in the one context the caller entered. Every addition
and product is the reference's, in the reference's order, so the results are the same
Decimal values digit for digit and exponent for exponent: the ledger context is wide enough
that none of them rounds, and a sum's exponent depends only on its operands.
``tests/unit/test_fast_decide.py`` holds the two equal, decision for decision, on random
staged cycles (fills, lot edits, both cost bases, missing marks, overrides).

This is the transaction's commit path (library and worker alike); ``decide`` is what
everything else calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

from portfolio_tx.ledger.cycle import StagedCycle
from portfolio_tx.ledger.lots import Lot
from portfolio_tx.ledger.money import ZERO, exact
from portfolio_tx.ledger.state import PortfolioState, freeze_strategies
from portfolio_tx.ledger.types import DiscardReason, OutcomeKind
from portfolio_tx.ledger.validation import Decision, discard, epsilon_for

# the empty mappings the ledger shares (a state without lots, marks or labels)
_NO_LOTS: Mapping[str, tuple[Lot, ...]] = PortfolioState().lots
_NO_MARKS: Mapping[str, Decimal] = PortfolioState().marks
_NO_STRATEGIES: Mapping[str, str] = PortfolioState().strategies
_NONE: dict[str, tuple[Decimal, Decimal]] = {}


def _sums(lots: Mapping[str, tuple[Lot, ...]]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per symbol (in the mapping's order): Σ lot quantity and Σ lot cost, each from ZERO."""
    found: dict[str, tuple[Decimal, Decimal]] = {}
    for symbol, held in lots.items():
        quantity = cost = ZERO
        for lot in held:
            quantity += lot.quantity
            cost += lot.cost
        found[symbol] = (quantity, cost)
    return found


def _unrealized(
    sums: Mapping[str, tuple[Decimal, Decimal]], marks: Mapping[str, Decimal]
) -> Decimal:
    """Σ quantity · mark − cost over the symbols that have a mark, in ``sums``' order."""
    total = ZERO
    for symbol, (quantity, cost) in sums.items():
        mark = marks.get(symbol)
        if mark is not None:
            total += quantity * mark - cost
    return total


def _cost(sums: Mapping[str, tuple[Decimal, Decimal]]) -> Decimal:
    """Σ cost, in ``sums``' order."""
    total = ZERO
    for _, cost in sums.values():
        total += cost
    return total


@exact
def decide_fast(
    staged: StagedCycle,
    marks: Mapping[str, Decimal],
    *,
    cycle_id: int | None = None,
    previous_equity: Decimal | None = None,
    epsilon: Decimal | None = None,
) -> Decision:
    """``validation.decide(staged, marks, ...)``, equal in every figure."""
    base = staged.base
    lots = staged.lots
    held = sorted(symbol for symbol, kept in lots.items() if kept) if lots else []
    for symbol in held:
        if marks.get(symbol) is None:
            return discard(
                base,
                DiscardReason.MISSING_MARK,
                cycle_id=cycle_id,
                previous_equity=previous_equity,
                epsilon=epsilon,
            )
    equity = base.equity if previous_equity is None else previous_equity
    tolerance = epsilon_for(equity, epsilon)
    after = _sums(lots) if lots else _NONE
    positions_value = ZERO
    for symbol in held:
        positions_value += after[symbol][0] * marks[symbol]
    total = staged.cash + positions_value
    unrealized_after = _unrealized(after, marks)
    before = _sums(base.lots) if base.lots else _NONE
    unrealized_before = _unrealized(before, base.marks)
    expected = (
        equity
        + staged.transfers
        + staged.funding
        + staged.reported_realized
        - staged.fees
        + (unrealized_after - unrealized_before)
    )
    delta = total - expected
    if abs(delta) > tolerance:
        return Decision(
            OutcomeKind.DISCARD,
            DiscardReason.VALIDATION_FAILED,
            cycle_id,
            base,
            equity,
            staged.cash,
            positions_value,
            total,
            expected,
            delta,
            tolerance,
        )
    cost_after = _cost(after)
    cost_before = _cost(before)
    booked = (staged.cash - base.cash) + (cost_after - cost_before) - staged.transfers + staged.fees
    committed = PortfolioState(
        staged.cash,
        base.realized_pnl + booked,
        base.fees + staged.fees,
        total,
        MappingProxyType({symbol: tuple(kept) for symbol, kept in lots.items() if kept})
        if lots
        else _NO_LOTS,
        MappingProxyType({symbol: marks[symbol] for symbol in held}) if held else _NO_MARKS,
        base.last_cycle if cycle_id is None else cycle_id,
        base.version + 1,
        base.transfers + staged.transfers,
        base.residual + delta,
        freeze_strategies(staged.strategies, lots) if staged.strategies else _NO_STRATEGIES,
    )
    return Decision(
        OutcomeKind.COMMIT,
        None,
        cycle_id,
        committed,
        equity,
        staged.cash,
        positions_value,
        total,
        expected,
        delta,
        tolerance,
    )
