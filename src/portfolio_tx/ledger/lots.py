"""Lots and how a signed quantity change moves through them.

A lot is a signed quantity with its total cost (``quantity * price`` when it was opened;
negative for shorts). Keeping the *total* cost rather than a unit price makes average-cost
bookkeeping conserve value exactly: whatever cost leaves a lot on a close is precisely the
cost that realized P&L is measured against, so ``cash + value`` and ``realized + unrealized``
never drift apart, not even by a rounding digit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from portfolio_tx.ledger.money import ZERO
from portfolio_tx.ledger.types import CostBasis

# Costs are kept at a fixed scale: the exact cost of a scale-18 quantity at a scale-18
# price has 36 decimals, so FIFO costs are never rounded; an average-cost close (a
# division) is rounded once, here, and every later sum stays exact in the ledger context.
COST_SCALE = 36
COST_QUANTUM = Decimal(1).scaleb(-COST_SCALE)


class Lot(NamedTuple):
    """An open lot: ``quantity`` (signed, never zero) and its total ``cost`` (same sign).

    ``lot_id``, ``fee`` and ``opened_at`` are the library caller's description of the lot (the
    seed's lot dict); they never enter the accounting. Lots opened by fills carry none.
    """

    quantity: Decimal
    cost: Decimal
    lot_id: str | None = None
    fee: Decimal | None = None
    opened_at: str | None = None

    def resized(self, quantity: Decimal, cost: Decimal) -> Lot:
        """The same lot (id and description kept) with a new quantity and cost."""
        return Lot(quantity, cost, self.lot_id, self.fee, self.opened_at)

    @property
    def price(self) -> Decimal:
        """Cost per unit."""
        return self.cost / self.quantity


class LotChange(NamedTuple):
    """The lots after a change, and the P&L it realized."""

    lots: tuple[Lot, ...]
    realized: Decimal


def _sign(value: Decimal) -> int:
    return 1 if value > 0 else -1


def apply_quantity(
    lots: tuple[Lot, ...], signed_quantity: Decimal, price: Decimal, basis: CostBasis
) -> LotChange:
    """Apply a signed quantity change at ``price`` to one symbol's lots.

    The change first closes opposite lots in cost-basis order (FIFO: oldest first; average:
    the single merged lot), realizing ``(price - cost) * q`` for closed longs and
    ``(cost - price) * q`` for closed shorts; any remainder opens a lot at ``price`` (so one
    change can flip a position). Must run inside the ledger's decimal context.
    """
    if signed_quantity.is_zero():
        return LotChange(lots, ZERO)
    direction = _sign(signed_quantity)
    remaining = abs(signed_quantity)
    if not lots or _sign(lots[0].quantity) == direction:
        # nothing to close (the usual fill: a new position or more of it): what the walk
        # below does when its loop does not run, without building the list
        opened = Lot(direction * remaining, direction * remaining * price)
        if basis is CostBasis.AVERAGE and lots:
            merged = lots[-1]
            last = merged.resized(merged.quantity + opened.quantity, merged.cost + opened.cost)
            return LotChange((*lots[:-1], last), ZERO)
        return LotChange((*lots, opened), ZERO)
    return _walk(lots, direction, remaining, price, basis)


def _walk(
    lots: tuple[Lot, ...], direction: int, remaining: Decimal, price: Decimal, basis: CostBasis
) -> LotChange:
    """``apply_quantity`` of ``direction · remaining``: close opposite lots in order, then
    open (or merge) what is left."""
    realized = ZERO
    kept: list[Lot] = []
    index = 0
    while index < len(lots) and remaining > 0 and _sign(lots[index].quantity) != direction:
        lot = lots[index]
        held = abs(lot.quantity)
        lot_sign = _sign(lot.quantity)
        if remaining >= held:
            realized += price * lot.quantity - lot.cost
            remaining -= held
        else:
            closed_cost = (lot.cost / held * remaining).quantize(COST_QUANTUM)
            realized += lot_sign * (price * remaining) - closed_cost
            kept.append(lot.resized(lot.quantity - lot_sign * remaining, lot.cost - closed_cost))
            remaining = ZERO
        index += 1
    kept.extend(lots[index:])
    if remaining > 0:
        opened = Lot(direction * remaining, direction * remaining * price)
        if basis is CostBasis.AVERAGE and kept:
            merged = kept[-1]
            kept[-1] = merged.resized(merged.quantity + opened.quantity, merged.cost + opened.cost)
        else:
            kept.append(opened)
    return LotChange(tuple(kept), realized)


def lots_quantity(lots: tuple[Lot, ...]) -> Decimal:
    """Net signed quantity of a symbol's lots."""
    return sum((lot.quantity for lot in lots), ZERO)


def lots_cost(lots: tuple[Lot, ...]) -> Decimal:
    """Total signed cost of a symbol's lots."""
    return sum((lot.cost for lot in lots), ZERO)
