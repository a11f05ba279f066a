"""Read-only views of what a transaction has staged, in the seed's shapes.

``StagedCash``, ``StagedPosition``, ``StagedLotBook`` and ``StagedRealizedPnl`` are the
original module's names; here they are frozen values computed from the staged cycle and the
journal, so they always agree with what a commit would write (never a second bookkeeping
that could drift from it). Money is Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from portfolio_tx.ledger import StagedCycle
from portfolio_tx.ledger.journal import LotAdd, LotRemove, LotUpdate, Op, PositionLeg, is_lot_edit
from portfolio_tx.ledger.lots import lots_cost, lots_quantity
from portfolio_tx.ledger.money import ZERO, exact

_EMPTY: Mapping[int | str, Mapping[str, object]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StagedCash:
    """The staged cash movement: cash′ = cash + ``delta`` − ``fees`` (fills, transfers,
    funding and cash deltas included); ``fees`` is this transaction's fees."""

    delta: Decimal = ZERO
    fees: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class StagedPosition:
    """A symbol the transaction changes: ``quantity_delta`` (staged − committed),
    ``entry_price`` (the staged lots' average cost, None when flat), the last
    ``current_price`` and ``strategy`` the caller gave."""

    symbol: str
    quantity_delta: Decimal = ZERO
    entry_price: Decimal | None = None
    current_price: Decimal | None = None
    strategy: str | None = None


@dataclass(frozen=True, slots=True)
class StagedLotBook:
    """A symbol's staged lot edits: lots added (the seed's dicts, Decimal), lots removed
    (ids, or indices), updates per lot (merged, in order)."""

    symbol: str
    lots_to_add: tuple[Mapping[str, object], ...] = ()
    lots_to_remove: tuple[int | str, ...] = ()
    lots_to_update: Mapping[int | str, Mapping[str, object]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StagedRealizedPnl:
    """Upstream's (the caller's) realized P&L claim staged so far: what validation checks."""

    delta: Decimal = ZERO


@exact
def staged_cash(staged: StagedCycle) -> StagedCash:
    return StagedCash(staged.cash - staged.base.cash + staged.fees, staged.fees)


def staged_realized(staged: StagedCycle) -> StagedRealizedPnl:
    return StagedRealizedPnl(staged.reported_realized)


@exact
def staged_positions(staged: StagedCycle, ops: Sequence[Op]) -> dict[str, StagedPosition]:
    """One StagedPosition per symbol whose lots moved, or that a position delta named."""
    base = staged.base
    current: dict[str, Decimal | None] = {}
    for op in ops:
        if isinstance(op, PositionLeg):
            given = op.current_price
            current[op.symbol] = given if given is not None else current.get(op.symbol)
    moved = {s for s in set(staged.lots) | set(base.lots) if staged.lots.get(s) != base.lots.get(s)}
    views = {}
    for symbol in sorted(moved | set(current)):
        lots = staged.lots.get(symbol, ())
        quantity = lots_quantity(lots)
        views[symbol] = StagedPosition(
            symbol=symbol,
            quantity_delta=quantity - lots_quantity(base.lots.get(symbol, ())),
            entry_price=lots_cost(lots) / quantity if quantity else None,
            current_price=current.get(symbol),
            strategy=staged.strategies.get(symbol),
        )
    return views


def _lot_dict(op: LotAdd) -> Mapping[str, object]:
    return MappingProxyType(
        {
            "lot_id": op.lot_id,
            "quantity": op.quantity,
            "cost_price": op.price,
            "fee": op.fee,
            "timestamp": op.opened_at,
        }
    )


def staged_lotbooks(ops: Sequence[Op]) -> dict[str, StagedLotBook]:
    """One StagedLotBook per symbol with lot edits, in the order they were staged."""
    adds: dict[str, list[Mapping[str, object]]] = {}
    removes: dict[str, list[int | str]] = {}
    updates: dict[str, dict[int | str, dict[str, object]]] = {}
    for op in ops:
        if not is_lot_edit(op):
            continue
        if isinstance(op, LotAdd):
            adds.setdefault(op.symbol, []).append(_lot_dict(op))
        elif isinstance(op, LotRemove):
            removes.setdefault(op.symbol, []).append(op.which)
        elif isinstance(op, LotUpdate):
            changes = {
                key: value
                for key, value in (
                    ("quantity", op.quantity),
                    ("cost_price", op.price),
                    ("fee", op.fee),
                    ("timestamp", op.opened_at),
                )
                if value is not None
            }
            updates.setdefault(op.symbol, {}).setdefault(op.which, {}).update(changes)
    symbols = sorted(set(adds) | set(removes) | set(updates))
    return {
        symbol: StagedLotBook(
            symbol,
            tuple(adds.get(symbol, ())),
            tuple(removes.get(symbol, ())),
            MappingProxyType(
                {which: MappingProxyType(u) for which, u in updates.get(symbol, {}).items()}
            )
            if symbol in updates
            else _EMPTY,
        )
        for symbol in symbols
    }
