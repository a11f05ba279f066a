"""Valuing the final staged state and deciding COMMIT or DISCARD (CONTRACT §2).

    staged_total  T = cash′ + Σ qty′ · m′
    expected      X = previous_equity + transfers + funding + reported_realized − fees
                      + (U′ − U_prev)
    delta         Δ = T − X
    epsilon       ε = max(1.00, 0.0001 · previous_equity)   unless overridden
    COMMIT  iff  |Δ| ≤ ε  and every held symbol has a mark

A commit books the ledger's realized P&L, never upstream's report: what the staged cash and
lot book say was realized (``booked_realized``: lot closes plus funding), so that
``equity == transfers + realized_pnl − fees + unrealized`` holds exactly for every committed
state; the accepted Δ is added to the cumulative ``residual``.

Everything here is pure: a Decision is data, the caller writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from portfolio_tx.ledger.cycle import StagedCycle
from portfolio_tx.ledger.lots import lots_cost, lots_quantity
from portfolio_tx.ledger.money import ZERO, exact
from portfolio_tx.ledger.state import (
    PortfolioState,
    Position,
    freeze_lots,
    freeze_marks,
    freeze_strategies,
    unrealized_pnl,
)
from portfolio_tx.ledger.types import DiscardReason, OutcomeKind

EPSILON_FLOOR = Decimal("1.00")
EPSILON_RATE = Decimal("0.0001")


@exact
def epsilon_for(previous_equity: Decimal, override: Decimal | None = None) -> Decimal:
    """The tolerance: ``override`` when given, else max(1.00, 0.0001 · previous equity)."""
    if override is not None:
        return override
    return max(EPSILON_FLOOR, EPSILON_RATE * previous_equity)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one cycle and every figure behind it.

    On COMMIT ``state`` is the new committed state; on DISCARD it is the previous state,
    untouched. ``cash``/``positions_value``/``total`` are the staged figures when the cycle
    was valued, else the previous state's; ``delta`` is 0 when validation did not run.
    """

    outcome: OutcomeKind
    reason: DiscardReason | None
    cycle_id: int | None
    state: PortfolioState
    previous_equity: Decimal
    cash: Decimal
    positions_value: Decimal
    total: Decimal
    expected_equity: Decimal
    delta: Decimal
    epsilon: Decimal

    @property
    def committed(self) -> bool:
        return self.outcome is OutcomeKind.COMMIT

    @property
    def positions(self) -> tuple[Position, ...]:
        return self.state.positions()


@exact
def discard(
    previous: PortfolioState,
    reason: DiscardReason,
    *,
    cycle_id: int | None = None,
    previous_equity: Decimal | None = None,
    epsilon: Decimal | None = None,
) -> Decision:
    """A DISCARD decided without valuing the cycle (incomplete, missing mark, invalid...)."""
    equity = previous.equity if previous_equity is None else previous_equity
    positions_value = previous.equity - previous.cash
    return Decision(
        outcome=OutcomeKind.DISCARD,
        reason=reason,
        cycle_id=cycle_id,
        state=previous,
        previous_equity=equity,
        cash=previous.cash,
        positions_value=positions_value,
        total=previous.equity,
        expected_equity=previous.equity,
        delta=ZERO,
        epsilon=epsilon_for(equity, epsilon),
    )


@exact
def decide(
    staged: StagedCycle,
    marks: Mapping[str, Decimal],
    *,
    cycle_id: int | None = None,
    previous_equity: Decimal | None = None,
    epsilon: Decimal | None = None,
) -> Decision:
    """Value the final staged state at ``marks`` and decide it.

    ``previous_equity`` defaults to the base state's equity; ``epsilon`` overrides the rule.
    A held symbol without a mark discards with MISSING_MARK; it is never priced at zero.
    """
    base = staged.base
    held = staged.held_symbols()
    if any(marks.get(symbol) is None for symbol in held):
        return discard(
            base,
            DiscardReason.MISSING_MARK,
            cycle_id=cycle_id,
            previous_equity=previous_equity,
            epsilon=epsilon,
        )
    equity = base.equity if previous_equity is None else previous_equity
    tolerance = epsilon_for(equity, epsilon)
    positions_value = sum((lots_quantity(staged.lots[s]) * marks[s] for s in held), ZERO)
    total = staged.cash + positions_value
    unrealized_after = unrealized_pnl(staged.lots, marks)
    expected = (
        equity
        + staged.transfers
        + staged.funding
        + staged.reported_realized
        - staged.fees
        + (unrealized_after - base.unrealized())
    )
    delta = total - expected
    if abs(delta) > tolerance:
        return Decision(
            outcome=OutcomeKind.DISCARD,
            reason=DiscardReason.VALIDATION_FAILED,
            cycle_id=cycle_id,
            state=base,
            previous_equity=equity,
            cash=staged.cash,
            positions_value=positions_value,
            total=total,
            expected_equity=expected,
            delta=delta,
            epsilon=tolerance,
        )
    committed = PortfolioState(
        cash=staged.cash,
        realized_pnl=base.realized_pnl + booked_realized(staged),
        fees=base.fees + staged.fees,
        equity=total,
        lots=freeze_lots(staged.lots),
        marks=freeze_marks({symbol: marks[symbol] for symbol in held}),
        last_cycle=base.last_cycle if cycle_id is None else cycle_id,
        version=base.version + 1,
        transfers=base.transfers + staged.transfers,
        residual=base.residual + delta,
        strategies=freeze_strategies(staged.strategies, staged.lots),
    )
    return Decision(
        outcome=OutcomeKind.COMMIT,
        reason=None,
        cycle_id=cycle_id,
        state=committed,
        previous_equity=equity,
        cash=staged.cash,
        positions_value=positions_value,
        total=total,
        expected_equity=expected,
        delta=delta,
        epsilon=tolerance,
    )


@exact
def booked_realized(staged: StagedCycle) -> Decimal:
    """The realized P&L a commit of ``staged`` books: what its cash and lots say.

    The change of cash plus the change of the lots' total cost, less the transfers, plus the
    fees. For fills and reports this is exactly the lots' realized P&L plus funding (each
    fill moves cash and cost by the same amount, up to what it realizes and pays in fees);
    cash the staged trades do not explain (a library caller's ``stage_cash_delta`` that does
    not match its position legs, or a lot edit) is booked as realized too, so the books
    always balance. Upstream's REALIZED report never enters it.
    """
    base = staged.base
    cost_after = sum((lots_cost(held) for held in staged.lots.values()), ZERO)
    return (staged.cash - base.cash) + (cost_after - base.cost()) - staged.transfers + staged.fees


def reconciles(staged: StagedCycle) -> bool:
    """True when upstream's realized report equals the ledger's own realized P&L."""
    return staged.reported_realized == staged.ledger_realized
