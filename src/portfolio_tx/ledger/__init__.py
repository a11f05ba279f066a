"""The accounting core: Decimal money, lots, staging, valuation and the decision.

Stdlib only, no I/O. A cycle flows through pure stages, each returning data:
``open_cycle`` → ``stage_*`` → ``decide`` (or ``discard``) → a ``Decision``.
"""

from portfolio_tx.ledger.cycle import (
    StagedCycle,
    fill_problem,
    open_cycle,
    stage_cash_delta,
    stage_fill,
    stage_lot_add,
    stage_lot_remove,
    stage_lot_update,
    stage_pnl,
    stage_position_delta,
    stage_strategy,
)
from portfolio_tx.ledger.lots import Lot, apply_quantity
from portfolio_tx.ledger.money import LEDGER_CONTEXT, ZERO, D, canonical, money2, to_wire
from portfolio_tx.ledger.state import PortfolioState, Position
from portfolio_tx.ledger.types import CostBasis, DiscardReason, OutcomeKind, PnlKind, Side
from portfolio_tx.ledger.validation import Decision, decide, discard, epsilon_for

__all__ = [
    "D",
    "LEDGER_CONTEXT",
    "ZERO",
    "CostBasis",
    "Decision",
    "DiscardReason",
    "Lot",
    "OutcomeKind",
    "PnlKind",
    "PortfolioState",
    "Position",
    "Side",
    "StagedCycle",
    "apply_quantity",
    "canonical",
    "decide",
    "discard",
    "epsilon_for",
    "fill_problem",
    "money2",
    "open_cycle",
    "stage_cash_delta",
    "stage_fill",
    "stage_lot_add",
    "stage_lot_remove",
    "stage_lot_update",
    "stage_pnl",
    "stage_position_delta",
    "stage_strategy",
    "to_wire",
]
