"""The stored form of a PortfolioState: JSON with every decimal as an exact string.

Nothing is rounded on the way in or out, so a state read back equals the state written,
digit for digit (average-cost lots can carry more than 18 decimals).
"""

from __future__ import annotations

import json
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from portfolio_tx.ledger import Lot, PortfolioState
from portfolio_tx.ledger.state import freeze_lots, freeze_marks


def _text(value: Decimal) -> str:
    return format(value, "f")


def _dump_lot(lot: Lot) -> list[str | None]:
    """``[quantity, cost]``, and the caller's description only when the lot has one (so a
    state without lot ids is stored byte for byte as before)."""
    dumped: list[str | None] = [_text(lot.quantity), _text(lot.cost)]
    if lot.lot_id is not None or lot.fee is not None or lot.opened_at is not None:
        dumped += [lot.lot_id, None if lot.fee is None else _text(lot.fee), lot.opened_at]
    return dumped


def _load_lot(raw: list[str | None]) -> Lot:
    quantity, cost, *described = raw
    lot = Lot(Decimal(str(quantity)), Decimal(str(cost)))
    if not described:
        return lot
    lot_id, fee, opened_at = described
    return Lot(lot.quantity, lot.cost, lot_id, None if fee is None else Decimal(fee), opened_at)


def dump_state(state: PortfolioState) -> str:
    """Serialize ``state`` (sorted keys, so equal states give equal bytes)."""
    document: dict[str, Any] = {
        "cash": _text(state.cash),
        "realized_pnl": _text(state.realized_pnl),
        "fees": _text(state.fees),
        "equity": _text(state.equity),
        "lots": {
            symbol: [_dump_lot(lot) for lot in lots]
            for symbol, lots in state.lots.items()
        },
        "marks": {symbol: _text(price) for symbol, price in state.marks.items()},
        "last_cycle": state.last_cycle,
        "version": state.version,
        "transfers": _text(state.transfers),
        "residual": _text(state.residual),
    }
    if state.strategies:
        document["strategies"] = dict(state.strategies)
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def load_state(text: str | bytes) -> PortfolioState:
    """Parse what ``dump_state`` wrote (a document of an older writer, without ``transfers``
    and ``residual``, reads them as 0)."""
    document = json.loads(text)
    return PortfolioState(
        cash=Decimal(document["cash"]),
        realized_pnl=Decimal(document["realized_pnl"]),
        fees=Decimal(document["fees"]),
        equity=Decimal(document["equity"]),
        lots=freeze_lots(
            {
                symbol: tuple(_load_lot(lot) for lot in lots)
                for symbol, lots in document["lots"].items()
            }
        ),
        marks=freeze_marks({s: Decimal(p) for s, p in document["marks"].items()}),
        last_cycle=document["last_cycle"],
        version=int(document["version"]),
        transfers=Decimal(document.get("transfers", "0")),
        residual=Decimal(document.get("residual", "0")),
        strategies=MappingProxyType(dict(document.get("strategies", {}))),
    )
