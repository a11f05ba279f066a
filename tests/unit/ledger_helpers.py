"""Small builders for ledger tests: a cycle as data, run through the pure core."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import Any

from portfolio_tx import ledger
from portfolio_tx.ledger import CostBasis, D, Decision, PnlKind, PortfolioState, Side

FillSpec = tuple[str, str, str, str, str]  # symbol, side, quantity, price, fee
PnlSpec = tuple[str, str]  # kind, amount


def run_cycle(
    state: PortfolioState,
    fills: Iterable[FillSpec] = (),
    pnl: Iterable[PnlSpec] = (),
    marks: Mapping[str, str] | None = None,
    *,
    cycle_id: int | None = None,
    basis: CostBasis = CostBasis.FIFO,
    epsilon: Decimal | None = None,
) -> Decision:
    staged = ledger.open_cycle(state, basis)
    for symbol, side, quantity, price, fee in fills:
        staged = ledger.stage_fill(staged, symbol, Side(side), D(quantity), D(price), D(fee))
    for kind, amount in pnl:
        staged = ledger.stage_pnl(staged, PnlKind(kind), D(amount))
    return ledger.decide(
        staged,
        {symbol: D(price) for symbol, price in (marks or {}).items()},
        cycle_id=cycle_id,
        epsilon=epsilon,
    )


def position(state: PortfolioState, symbol: str) -> tuple[Decimal, Decimal] | None:
    """(quantity, avg entry price) of ``symbol`` or None when flat."""
    for held in state.positions():
        if held.symbol == symbol:
            return held.quantity, held.avg_entry_price
    return None


def digits(value: Any) -> Any:
    """Every Decimal inside ``value`` (a dataclass, mapping, tuple or list of them) as
    (sign, digits, exponent): equal only when equal digit for digit and exponent for exponent."""
    if isinstance(value, Decimal):
        return value.as_tuple()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: digits(getattr(value, f.name)) for f in fields(value)}
    if hasattr(value, "items"):
        return {key: digits(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [digits(item) for item in value]
    return value
