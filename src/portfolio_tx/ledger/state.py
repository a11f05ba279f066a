"""Committed portfolio state of one session, and its read-only views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from portfolio_tx.ledger.lots import Lot, lots_cost, lots_quantity
from portfolio_tx.ledger.money import ZERO, exact

_NO_LOTS: Mapping[str, tuple[Lot, ...]] = MappingProxyType({})
_NO_MARKS: Mapping[str, Decimal] = MappingProxyType({})
_NO_STRATEGIES: Mapping[str, str] = MappingProxyType({})


class Position(NamedTuple):
    """A symbol's aggregate: net quantity, quantity-weighted cost of the remaining lots."""

    symbol: str
    quantity: Decimal
    avg_entry_price: Decimal
    mark_price: Decimal | None


@dataclass(frozen=True, slots=True)
class PortfolioState:
    """What a session has after its last committed cycle (CONTRACT §2).

    ``lots`` holds only symbols with open lots; ``marks`` are the marks the last commit used
    and ``equity`` is ``cash`` plus the positions valued at those marks. ``realized_pnl`` is
    the ledger's figure (lot closes plus funding, never upstream's claim), ``fees`` and
    ``transfers`` are cumulative, and ``residual`` is the cumulative Δ of the committed
    cycles: how far upstream's accepted reports were from the ledger. For every committed
    state, exactly: ``equity == transfers + realized_pnl − fees + unrealized()``
    (``books_balance``). ``version`` counts commits and is the optimistic lock of the store;
    ``last_cycle`` is the last cycle id committed (``None`` before the first).
    ``strategies`` is the library caller's strategy label per held symbol (no accounting).
    """

    cash: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    equity: Decimal = ZERO
    lots: Mapping[str, tuple[Lot, ...]] = field(default_factory=lambda: _NO_LOTS)
    marks: Mapping[str, Decimal] = field(default_factory=lambda: _NO_MARKS)
    last_cycle: int | None = None
    version: int = 0
    transfers: Decimal = ZERO
    residual: Decimal = ZERO
    strategies: Mapping[str, str] = field(default_factory=lambda: _NO_STRATEGIES)

    @exact
    def positions(self) -> tuple[Position, ...]:
        """One Position per held symbol, sorted by symbol."""
        return tuple(
            position_of(symbol, lots, self.marks.get(symbol))
            for symbol, lots in sorted(self.lots.items())
        )

    @exact
    def unrealized(self) -> Decimal:
        """Σ over lots of qty · (mark − cost) at the marks of the last commit."""
        return unrealized_pnl(self.lots, self.marks)

    @exact
    def books_imbalance(self) -> Decimal:
        """``equity − (transfers + realized_pnl − fees + unrealized)``: exactly 0 for every
        state the ledger commits; anything else means the books do not reconcile."""
        return self.equity - (self.transfers + self.realized_pnl - self.fees + self.unrealized())

    @exact
    def cost(self) -> Decimal:
        """Total signed cost of every open lot."""
        return sum((lots_cost(held) for held in self.lots.values()), ZERO)


def freeze_lots(lots: Mapping[str, tuple[Lot, ...]]) -> Mapping[str, tuple[Lot, ...]]:
    """A read-only copy without empty symbols."""
    return MappingProxyType({symbol: tuple(held) for symbol, held in lots.items() if held})


def freeze_marks(marks: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    return MappingProxyType(dict(marks))


def freeze_strategies(
    strategies: Mapping[str, str], held: Mapping[str, tuple[Lot, ...]]
) -> Mapping[str, str]:
    """A read-only copy of the strategy labels of the symbols still held."""
    kept = {symbol: label for symbol, label in strategies.items() if held.get(symbol)}
    return MappingProxyType(kept) if kept else _NO_STRATEGIES


def position_of(symbol: str, lots: tuple[Lot, ...], mark: Decimal | None) -> Position:
    """``lots_quantity`` and ``lots_cost`` (the same sums from ZERO, in lot order) and the
    average entry price; runs in the ledger's context (the caller's ``exact``)."""
    quantity = cost = ZERO
    for lot in lots:
        quantity += lot.quantity
        cost += lot.cost
    return Position(symbol, quantity, cost / quantity if quantity else ZERO, mark)


def unrealized_pnl(lots: Mapping[str, tuple[Lot, ...]], marks: Mapping[str, Decimal]) -> Decimal:
    """Σ over lots of qty · mark − cost; a symbol without a mark contributes nothing.

    Callers make sure every held symbol has a mark before they rely on the figure.
    """
    total = ZERO
    for symbol, held in lots.items():
        mark = marks.get(symbol)
        if mark is None:
            continue
        total += lots_quantity(held) * mark - lots_cost(held)
    return total
