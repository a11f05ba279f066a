"""Staging a cycle: pure functions from a StagedCycle to the next one.

Nothing here validates the totals; interim states can swing as far as they like. Only
``validation.decide`` looks at the final staged state. Input checks (positive quantity and
price, a known side) raise ``ValidationError`` at once, since a bad event must never be
staged; ``fill_problem`` returns the same finding as data for callers that route rather
than raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from portfolio_tx.errors import ValidationError
from portfolio_tx.ledger.lots import Lot, apply_quantity
from portfolio_tx.ledger.money import ZERO, exact
from portfolio_tx.ledger.state import PortfolioState
from portfolio_tx.ledger.types import CostBasis, PnlKind, Side

_SIDES = frozenset(side.value for side in Side)


@dataclass(frozen=True, slots=True)
class StagedCycle:
    """The previous committed state plus everything staged on top of it so far.

    ``cash`` and ``lots`` are the staged values; the other amounts are this cycle's sums of
    the terms of the validation equation (CONTRACT §2). ``strategies`` are the library
    caller's labels per symbol (no accounting).
    """

    base: PortfolioState
    basis: CostBasis
    cash: Decimal
    lots: Mapping[str, tuple[Lot, ...]]
    fees: Decimal = ZERO
    transfers: Decimal = ZERO
    funding: Decimal = ZERO
    reported_realized: Decimal = ZERO
    ledger_realized: Decimal = ZERO
    strategies: Mapping[str, str] = field(default_factory=dict)

    def held_symbols(self) -> tuple[str, ...]:
        """Symbols with a non-zero staged quantity, sorted: each needs a mark to commit."""
        return tuple(sorted(symbol for symbol, lots in self.lots.items() if lots))


def _evolve(
    staged: StagedCycle,
    *,
    cash: Decimal | None = None,
    lots: Mapping[str, tuple[Lot, ...]] | None = None,
    fees: Decimal | None = None,
    transfers: Decimal | None = None,
    funding: Decimal | None = None,
    reported_realized: Decimal | None = None,
    ledger_realized: Decimal | None = None,
    strategies: Mapping[str, str] | None = None,
) -> StagedCycle:
    """``dataclasses.replace`` for a StagedCycle (whose fields are never None), without its
    per-field introspection: that cost more than the step itself."""
    return StagedCycle(
        staged.base,
        staged.basis,
        staged.cash if cash is None else cash,
        staged.lots if lots is None else lots,
        staged.fees if fees is None else fees,
        staged.transfers if transfers is None else transfers,
        staged.funding if funding is None else funding,
        staged.reported_realized if reported_realized is None else reported_realized,
        staged.ledger_realized if ledger_realized is None else ledger_realized,
        staged.strategies if strategies is None else strategies,
    )


def open_cycle(base: PortfolioState, basis: CostBasis = CostBasis.FIFO) -> StagedCycle:
    """Start staging on top of ``base``."""
    return StagedCycle(
        base=base, basis=basis, cash=base.cash, lots=base.lots, strategies=base.strategies
    )


def fill_problem(side: object, quantity: Decimal, price: Decimal) -> str | None:
    """Why a fill cannot be staged, or None when it can."""
    if side not in _SIDES:
        return f"unknown side {side!r}"
    if not quantity.is_finite() or quantity <= 0:
        return f"quantity must be positive, got {quantity}"
    if not price.is_finite() or price <= 0:
        return f"price must be positive, got {price}"
    return None


def _with_lots(
    staged: StagedCycle, symbol: str, lots: tuple[Lot, ...]
) -> Mapping[str, tuple[Lot, ...]]:
    updated = dict(staged.lots)
    if lots:
        updated[symbol] = lots
    else:
        updated.pop(symbol, None)
    return updated


@exact
def stage_fill(
    staged: StagedCycle,
    symbol: str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal = ZERO,
) -> StagedCycle:
    """BUY q @ p fee f: cash −= q·p + f; SELL: cash += q·p − f; lots move by cost basis.

    Fees may be zero or negative (a rebate); they never enter realized P&L.
    """
    problem = fill_problem(side, quantity, price)
    if problem:
        raise ValidationError(f"fill {symbol}: {problem}")
    signed = quantity if Side(side) is Side.BUY else -quantity
    change = apply_quantity(staged.lots.get(symbol, ()), signed, price, staged.basis)
    return _evolve(
        staged,
        cash=staged.cash - signed * price - fee,
        lots=_with_lots(staged, symbol, change.lots),
        fees=staged.fees + fee,
        ledger_realized=staged.ledger_realized + change.realized,
    )


@exact
def stage_pnl(staged: StagedCycle, kind: PnlKind, amount: Decimal) -> StagedCycle:
    """REALIZED: the claim validation checks; FUNDING: cash and realized; TRANSFER: cash."""
    if kind is PnlKind.REALIZED:
        return _evolve(staged, reported_realized=staged.reported_realized + amount)
    if kind is PnlKind.FUNDING:
        return _evolve(staged, cash=staged.cash + amount, funding=staged.funding + amount)
    if kind is PnlKind.TRANSFER:
        return _evolve(staged, cash=staged.cash + amount, transfers=staged.transfers + amount)
    raise ValidationError(f"unknown P&L kind {kind!r}")


@exact
def stage_cash_delta(staged: StagedCycle, amount: Decimal, fees: Decimal = ZERO) -> StagedCycle:
    """A trade's cash leg: cash += amount − fees (the seed's call shape)."""
    return _evolve(staged, cash=staged.cash + amount - fees, fees=staged.fees + fees)


@exact
def stage_position_delta(
    staged: StagedCycle, symbol: str, quantity: Decimal, entry_price: Decimal
) -> StagedCycle:
    """A trade's position leg: lots move by ``quantity`` at ``entry_price``; cash does not."""
    if not entry_price.is_finite() or entry_price <= 0:
        raise ValidationError(f"entry price must be positive, got {entry_price}")
    change = apply_quantity(staged.lots.get(symbol, ()), quantity, entry_price, staged.basis)
    return _evolve(
        staged,
        lots=_with_lots(staged, symbol, change.lots),
        ledger_realized=staged.ledger_realized + change.realized,
    )


def stage_strategy(staged: StagedCycle, symbol: str, strategy: str) -> StagedCycle:
    """Label ``symbol`` with the caller's strategy name; no accounting."""
    return _evolve(staged, strategies={**staged.strategies, symbol: strategy})


@exact
def stage_lot_add(
    staged: StagedCycle,
    symbol: str,
    quantity: Decimal,
    price: Decimal,
    *,
    lot_id: str | None = None,
    fee: Decimal | None = None,
    opened_at: str | None = None,
) -> StagedCycle:
    """Append a lot as it stands; no cash, no realized P&L. ``lot_id`` (unique per symbol),
    ``fee`` and ``opened_at`` describe it and never enter the accounting."""
    if quantity.is_zero():
        raise ValidationError("a lot needs a non-zero quantity")
    if not price.is_finite() or price <= 0:
        raise ValidationError(f"lot price must be positive, got {price}")
    held = staged.lots.get(symbol, ())
    if lot_id is not None and any(lot.lot_id == lot_id for lot in held):
        raise ValidationError(f"{symbol} already has a lot {lot_id!r}")
    lots = (*held, Lot(quantity, quantity * price, lot_id, fee, opened_at))
    return _evolve(staged, lots=_with_lots(staged, symbol, lots))


def _lot_index(staged: StagedCycle, symbol: str, which: int | str) -> tuple[tuple[Lot, ...], int]:
    """The symbol's lots and the position of lot ``which`` (an index, or a lot id)."""
    lots = staged.lots.get(symbol, ())
    if isinstance(which, str):
        for index, lot in enumerate(lots):
            if lot.lot_id == which:
                return lots, index
        raise ValidationError(f"{symbol} has no lot {which!r}")
    if not -len(lots) <= which < len(lots):
        raise ValidationError(f"{symbol} has no lot {which} (it has {len(lots)})")
    return lots, which


def stage_lot_remove(staged: StagedCycle, symbol: str, which: int | str = 0) -> StagedCycle:
    """Drop one lot (by index or lot id); no cash, no realized P&L."""
    held, index = _lot_index(staged, symbol, which)
    lots = list(held)
    del lots[index]
    return _evolve(staged, lots=_with_lots(staged, symbol, tuple(lots)))


@exact
def stage_lot_update(
    staged: StagedCycle,
    symbol: str,
    which: int | str,
    *,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    fee: Decimal | None = None,
    opened_at: str | None = None,
) -> StagedCycle:
    """Replace one lot's quantity, unit cost or description (by index or lot id); no cash,
    no realized P&L."""
    held, index = _lot_index(staged, symbol, which)
    lots = list(held)
    current = lots[index]
    new_quantity = current.quantity if quantity is None else quantity
    new_price = current.price if price is None else price
    if new_quantity.is_zero() or not new_price.is_finite() or new_price <= 0:
        raise ValidationError("a lot needs a non-zero quantity and a positive price")
    lots[index] = Lot(
        new_quantity,
        new_quantity * new_price,
        current.lot_id,
        current.fee if fee is None else fee,
        current.opened_at if opened_at is None else opened_at,
    )
    return _evolve(staged, lots=_with_lots(staged, symbol, tuple(lots)))
