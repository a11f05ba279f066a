"""A transaction's staging as a journal of operations, and one trade booked once.

The seed's callers record a trade twice over: a position leg (``stage_position_delta``) and
the lot that describes it (``stage_lot_add``). Both describe the same change, so applying
both would double the position. The rule, per symbol and per transaction:

- a symbol without lot edits is moved by its legs (fills and position deltas), lots closed
  and opened by cost basis, as always;
- once a symbol has a lot edit (add, remove, update), its lot edits define its lots and its
  legs only say how much moved (and, for fills, the cash): ``leg_mismatches`` reports a
  symbol whose legs and lot edits disagree on the quantity.

Whether a symbol is lot-defined depends on the whole journal, so a lot edit for a symbol that
legs have already moved replays the journal from the base state (``replay``). Everything
here is pure: ops are frozen values, ``step`` and ``replay`` return new StagedCycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from portfolio_tx.errors import ValidationError
from portfolio_tx.ledger import cycle
from portfolio_tx.ledger.cycle import StagedCycle
from portfolio_tx.ledger.lots import apply_quantity, lots_quantity
from portfolio_tx.ledger.money import ONE, ZERO, exact
from portfolio_tx.ledger.state import PortfolioState
from portfolio_tx.ledger.types import CostBasis, PnlKind, Side


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class Pnl:
    kind: PnlKind
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CashDelta:
    amount: Decimal
    fees: Decimal


@dataclass(frozen=True, slots=True)
class PositionLeg:
    """``stage_position_delta``: ``entry_price`` None is a close at the lots' own cost."""

    symbol: str
    quantity: Decimal
    entry_price: Decimal | None = None
    current_price: Decimal | None = None
    strategy: str | None = None


@dataclass(frozen=True, slots=True)
class LotAdd:
    symbol: str
    quantity: Decimal
    price: Decimal
    lot_id: str | None = None
    fee: Decimal | None = None
    opened_at: str | None = None


@dataclass(frozen=True, slots=True)
class LotRemove:
    symbol: str
    which: int | str


@dataclass(frozen=True, slots=True)
class LotUpdate:
    symbol: str
    which: int | str
    quantity: Decimal | None = None
    price: Decimal | None = None
    fee: Decimal | None = None
    opened_at: str | None = None


Op = Fill | Pnl | CashDelta | PositionLeg | LotAdd | LotRemove | LotUpdate
LOT_EDITS = (LotAdd, LotRemove, LotUpdate)


def is_lot_edit(op: Op) -> bool:
    return isinstance(op, LOT_EDITS)


@exact
def _close_at_cost(staged: StagedCycle, leg: PositionLeg) -> StagedCycle:
    """A position leg without a price: it may only close, and it realizes nothing itself
    (the cash the caller stages beside it says what the close realized)."""
    held = staged.lots.get(leg.symbol, ())
    quantity = lots_quantity(held)
    if (
        quantity.is_zero()
        or (quantity > 0) == (leg.quantity > 0)
        or abs(leg.quantity) > abs(quantity)
    ):
        raise ValidationError(
            f"{leg.symbol}: a position delta of {leg.quantity} without entry_price must close "
            f"part of the position (held {quantity})"
        )
    # Closing by cost basis without opening anything: the kept lots do not depend on the
    # price, only the realized figure would, and that is discarded here.
    change = apply_quantity(held, leg.quantity, ONE, staged.basis)
    updated = dict(staged.lots)
    if change.lots:
        updated[leg.symbol] = change.lots
    else:
        updated.pop(leg.symbol, None)
    return replace(staged, lots=updated)


def step(staged: StagedCycle, op: Op, lot_defined: frozenset[str]) -> StagedCycle:
    """Apply one op; legs of a symbol in ``lot_defined`` leave its lots to its lot edits."""
    if isinstance(op, Fill):
        if op.symbol not in lot_defined:
            return cycle.stage_fill(staged, op.symbol, op.side, op.quantity, op.price, op.fee)
        problem = cycle.fill_problem(op.side, op.quantity, op.price)
        if problem:
            raise ValidationError(f"fill {op.symbol}: {problem}")
        signed = op.quantity if op.side is Side.BUY else -op.quantity
        return cycle.stage_cash_delta(staged, _product(-signed, op.price), op.fee)
    if isinstance(op, Pnl):
        return cycle.stage_pnl(staged, op.kind, op.amount)
    if isinstance(op, CashDelta):
        return cycle.stage_cash_delta(staged, op.amount, op.fees)
    if isinstance(op, PositionLeg):
        if op.strategy is not None:
            staged = cycle.stage_strategy(staged, op.symbol, op.strategy)
        if op.symbol in lot_defined or op.quantity.is_zero():
            return staged
        if op.entry_price is None:
            return _close_at_cost(staged, op)
        return cycle.stage_position_delta(staged, op.symbol, op.quantity, op.entry_price)
    if isinstance(op, LotAdd):
        return cycle.stage_lot_add(
            staged,
            op.symbol,
            op.quantity,
            op.price,
            lot_id=op.lot_id,
            fee=op.fee,
            opened_at=op.opened_at,
        )
    if isinstance(op, LotRemove):
        return cycle.stage_lot_remove(staged, op.symbol, op.which)
    return cycle.stage_lot_update(
        staged,
        op.symbol,
        op.which,
        quantity=op.quantity,
        price=op.price,
        fee=op.fee,
        opened_at=op.opened_at,
    )


@exact
def step_fills(
    staged: StagedCycle, fills: Sequence[Fill], lot_defined: frozenset[str]
) -> StagedCycle:
    """``step`` folded over ``fills``, equal to it digit for digit.

    Fills of symbols that are not lot-defined (the worker's every fill) are folded in one
    pass: the same operations as ``cycle.stage_fill`` in the same order, on one copy of the
    lots, in one decimal context, building one StagedCycle at the end. A run that touches a
    lot-defined symbol is stepped op by op. Raises ValidationError at the first fill that
    cannot be staged.
    """
    if lot_defined and any(fill.symbol in lot_defined for fill in fills):
        for fill in fills:
            staged = step(staged, fill, lot_defined)
        return staged
    if not fills:
        return staged
    lots = dict(staged.lots)
    cash, fees, realized, basis = staged.cash, staged.fees, staged.ledger_realized, staged.basis
    for fill in fills:
        symbol, quantity, price = fill.symbol, fill.quantity, fill.price
        problem = cycle.fill_problem(fill.side, quantity, price)
        if problem:
            raise ValidationError(f"fill {symbol}: {problem}")
        signed = quantity if fill.side == Side.BUY else -quantity
        change = apply_quantity(lots.get(symbol, ()), signed, price, basis)
        cash = cash - signed * price - fill.fee
        if change.lots:
            lots[symbol] = change.lots
        else:
            lots.pop(symbol, None)
        fees = fees + fill.fee
        realized = realized + change.realized
    return replace(staged, cash=cash, lots=lots, fees=fees, ledger_realized=realized)


@exact
def _product(a: Decimal, b: Decimal) -> Decimal:
    return a * b


def lot_defined_symbols(ops: Iterable[Op]) -> frozenset[str]:
    """The symbols with at least one lot edit in ``ops``."""
    return frozenset(op.symbol for op in ops if isinstance(op, LOT_EDITS))


def replay(base: PortfolioState, basis: CostBasis, ops: Sequence[Op]) -> StagedCycle:
    """The StagedCycle that ``ops`` stage on ``base``, in order."""
    lot_defined = lot_defined_symbols(ops)
    staged = cycle.open_cycle(base, basis)
    for op in ops:
        staged = step(staged, op, lot_defined)
    return staged


@exact
def leg_quantities(ops: Iterable[Op]) -> dict[str, Decimal]:
    """Per symbol, the signed quantity its legs (fills and position deltas) moved."""
    moved: dict[str, Decimal] = {}
    for op in ops:
        if isinstance(op, Fill):
            signed = op.quantity if op.side is Side.BUY else -op.quantity
            moved[op.symbol] = moved.get(op.symbol, ZERO) + signed
        elif isinstance(op, PositionLeg):
            moved[op.symbol] = moved.get(op.symbol, ZERO) + op.quantity
    return moved


@exact
def leg_mismatches(staged: StagedCycle, ops: Sequence[Op]) -> list[str]:
    """Lot-defined symbols whose legs moved another quantity than their lot edits did."""
    legs = leg_quantities(ops)
    problems = []
    for symbol in sorted(lot_defined_symbols(ops)):
        if symbol not in legs:
            continue
        by_lots = lots_quantity(staged.lots.get(symbol, ())) - lots_quantity(
            staged.base.lots.get(symbol, ())
        )
        if by_lots != legs[symbol]:
            problems.append(
                f"{symbol}: its position legs move {legs[symbol]}, its lot edits {by_lots}"
            )
    return problems
