"""The stored form of a PortfolioState: JSON with every decimal as an exact string.

Nothing is rounded on the way in or out, so a state read back equals the state written,
digit for digit (average-cost lots can carry more than 18 decimals).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from portfolio_tx.ledger import Lot, PortfolioState
from portfolio_tx.ledger.state import freeze_lots, freeze_marks

# json's own string encoder (what json.dumps uses with ensure_ascii, its default)
_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


_NOTHING: Any = MappingProxyType({})  # an empty read-only mapping, shared
_decode = json.JSONDecoder().decode  # json.loads less its per-call checks (bytes: UTF-8)


def _text(value: Decimal) -> str:
    """``format(value, "f")``: ``str`` gives the same text whenever it has no exponent (the
    usual case, at a third of the cost), so ``format`` only runs for the others."""
    text = str(value)
    return text if "E" not in text else format(value, "f")


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
    """Serialize ``state`` (sorted keys, so equal states give equal bytes).

    The text is exactly ``json.dumps(document, sort_keys=True, separators=(",", ":"))`` of
    the document described above (``reference_document``), written field by field: the
    generic encoder spent more than the rest of a small commit's write. Decimals as ``f``
    text need no escaping; ids, symbols and labels go through json's own string encoder.
    """
    lots = ",".join(
        f"{_string(symbol)}:[{','.join(_lot_text(lot) for lot in held)}]"
        for symbol, held in sorted(state.lots.items())
    )
    marks = ",".join(
        f'{_string(symbol)}:"{_text(price)}"' for symbol, price in sorted(state.marks.items())
    )
    strategies = ""
    if state.strategies:
        labels = ",".join(
            f"{_string(symbol)}:{_string(label)}"
            for symbol, label in sorted(state.strategies.items())
        )
        strategies = f'"strategies":{{{labels}}},'
    last_cycle = "null" if state.last_cycle is None else int(state.last_cycle)
    return (
        f'{{"cash":"{_text(state.cash)}","equity":"{_text(state.equity)}",'
        f'"fees":"{_text(state.fees)}","last_cycle":{last_cycle},"lots":{{{lots}}},'
        f'"marks":{{{marks}}},"realized_pnl":"{_text(state.realized_pnl)}",'
        f'"residual":"{_text(state.residual)}",{strategies}'
        f'"transfers":"{_text(state.transfers)}","version":{int(state.version)}}}'
    )


def _lot_text(lot: Lot) -> str:
    return "[" + ",".join(_optional(item) for item in _dump_lot(lot)) + "]"


def _optional(value: str | None) -> str:
    return "null" if value is None else _string(value)


def reference_document(state: PortfolioState) -> dict[str, Any]:
    """The document ``dump_state`` writes, as a JSON value (the reference its text is tested
    against: ``json.dumps(reference_document(s), sort_keys=True, separators=(",", ":"))``)."""
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
    return document


def load_state(text: str | bytes) -> PortfolioState:
    """Parse what ``dump_state`` wrote (a document of an older writer, without ``transfers``
    and ``residual``, reads them as 0)."""
    document = _decode(text.decode() if isinstance(text, bytes) else text)
    lots, marks, strategies = document["lots"], document["marks"], document.get("strategies")
    return PortfolioState(
        Decimal(document["cash"]),
        Decimal(document["realized_pnl"]),
        Decimal(document["fees"]),
        Decimal(document["equity"]),
        freeze_lots(
            {symbol: tuple(_load_lot(lot) for lot in held) for symbol, held in lots.items()}
        )
        if lots
        else _NOTHING,
        freeze_marks({s: Decimal(p) for s, p in marks.items()}) if marks else _NOTHING,
        document["last_cycle"],
        int(document["version"]),
        Decimal(document.get("transfers", "0")),
        Decimal(document.get("residual", "0")),
        MappingProxyType(dict(strategies)) if strategies else _NOTHING,
    )
