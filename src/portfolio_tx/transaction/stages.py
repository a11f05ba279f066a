"""The staging calls of a PortfolioTransaction, each turned into one journal op.

Numbers may be Decimal, int, str or float (floats through ``str``); a bad one raises
ValidationError and stages nothing. The seed's call shapes are accepted beside ours:
``stage_lot_add(symbol, lot_dict)`` or ``(symbol, quantity, price)``, lots by ``lot_id`` or
index, ``stage_lot_update(symbol, lot_id, updates)`` or ``quantity=`` / ``price=``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portfolio_tx.errors import ValidationError
from portfolio_tx.ledger import PnlKind, Side
from portfolio_tx.ledger import journal as ops
from portfolio_tx.ledger.money import Number
from portfolio_tx.transaction import seed

_money = seed.money


class Stages:
    """Mixin: the ``stage_*`` methods over ``_stage(op)``."""

    def _stage(self, op: ops.Op) -> None:
        raise NotImplementedError

    def _stage_fills(self, fills: list[ops.Fill]) -> None:
        raise NotImplementedError

    def stage_fill(
        self, symbol: str, side: Side | str, quantity: Number, price: Number, fee: Number = 0
    ) -> None:
        self._stage(_fill(symbol, side, quantity, price, fee))

    def stage_fills(self, fills: Iterable[tuple[str, Side | str, Number, Number, Number]]) -> None:
        """``stage_fill`` for each ``(symbol, side, quantity, price, fee)`` in order, in one
        pass (the worker stages a cycle's fills so); a bad fill raises ValidationError and
        nothing of the run is staged."""
        self._stage_fills([_fill(*fill) for fill in fills])

    def stage_transfer(self, amount: Number) -> None:
        self._stage(ops.Pnl(PnlKind.TRANSFER, _money(amount, "amount")))

    def stage_funding(self, amount: Number) -> None:
        self._stage(ops.Pnl(PnlKind.FUNDING, _money(amount, "amount")))

    def stage_realized_pnl_delta(self, amount: Number) -> None:
        self._stage(ops.Pnl(PnlKind.REALIZED, _money(amount, "amount")))

    def stage_pnl(self, kind: PnlKind | str, amount: Number) -> None:
        """Stage a P&L report of any kind (REALIZED, FUNDING or TRANSFER)."""
        self._stage(ops.Pnl(PnlKind(kind), _money(amount, "amount")))

    def stage_cash_delta(self, amount: Number, fees: Number = 0) -> None:
        """A trade's cash leg: cash += amount − fees."""
        self._stage(ops.CashDelta(_money(amount, "amount"), _money(fees, "fees")))

    def stage_position_delta(
        self,
        symbol: str,
        quantity_delta: Number,
        entry_price: Number | None = None,
        current_price: Number | None = None,
        strategy: str | None = None,
    ) -> None:
        """A trade's position leg: lots move by ``quantity_delta`` at ``entry_price`` (None:
        a close at the lots' cost); cash does not. ``current_price`` is shown in
        ``staged_positions`` and is never a mark; ``strategy`` labels the position."""
        self._stage(
            ops.PositionLeg(
                symbol,
                _money(quantity_delta, "quantity_delta"),
                seed.optional_money(entry_price, "entry_price"),
                seed.optional_money(current_price, "current_price"),
                strategy,
            )
        )

    def stage_lot_add(
        self, symbol: str, lot_data: Mapping[str, Any] | Number, price: Number | None = None
    ) -> None:
        """Add a lot: the seed's dict (``lot_id``, ``quantity``, ``cost_price``, ``fee``,
        ``timestamp``), or ``(quantity, price)``."""
        if isinstance(lot_data, Mapping):
            self._stage(seed.lot_add(symbol, lot_data))
            return
        if price is None:
            raise ValidationError(f"lot for {symbol}: a price is required")
        self._stage(ops.LotAdd(symbol, _money(lot_data, "quantity"), _money(price, "price")))

    def stage_lot_remove(self, symbol: str, lot_id: str | int = 0) -> None:
        """Remove a lot by its ``lot_id`` (or its index)."""
        self._stage(ops.LotRemove(symbol, lot_id))

    def stage_lot_update(
        self,
        symbol: str,
        lot_id: str | int,
        updates: Mapping[str, Any] | None = None,
        *,
        quantity: Number | None = None,
        price: Number | None = None,
    ) -> None:
        """Update a lot (by ``lot_id`` or index): the seed's ``updates`` dict (``quantity``,
        ``cost_price``, ``fee``, ``timestamp``), or ``quantity=`` / ``price=``."""
        changes: dict[str, Any] = dict(updates or {})
        if quantity is not None:
            changes["quantity"] = quantity
        if price is not None:
            changes["cost_price"] = price
        self._stage(seed.lot_update(symbol, lot_id, changes))


def _fill(symbol: str, side: Side | str, quantity: Number, price: Number, fee: Number) -> ops.Fill:
    """The op of one fill, its side and numbers checked (ValidationError)."""
    if side.__class__ is not Side:
        try:
            side = Side(side)
        except ValueError as exc:
            raise ValidationError(f"unknown side {side!r}") from exc
    return ops.Fill(
        symbol, side, _money(quantity, "quantity"), _money(price, "price"), _money(fee, "fee")
    )
