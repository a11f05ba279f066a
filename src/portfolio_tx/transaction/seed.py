"""The original module's call shapes turned into journal ops: lot dicts, update dicts.

The seed describes a lot as ``{"lot_id", "quantity", "cost_price", "fee", "timestamp"}``;
numbers may be Decimal, int, str or float (floats through ``str``), the timestamp a
``datetime`` or a string. Any other key is refused rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from portfolio_tx.errors import ValidationError
from portfolio_tx.ledger import D
from portfolio_tx.ledger.journal import LotAdd, LotUpdate
from portfolio_tx.ledger.money import Number

LOT_KEYS = frozenset({"lot_id", "quantity", "cost_price", "fee", "timestamp"})
UPDATE_KEYS = LOT_KEYS - {"lot_id"}


def money(value: Number, what: str) -> Decimal:
    """``D(value)``, a bad number reported as ValidationError naming ``what``."""
    try:
        return D(value)
    except ValueError as exc:
        raise ValidationError(f"{what}: {exc}") from exc


def optional_money(value: Number | None, what: str) -> Decimal | None:
    return None if value is None else money(value, what)


def _timestamp(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise ValidationError(f"lot timestamp must be a datetime or a string, got {value!r}")


def _refuse_unknown(data: Mapping[str, object], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(f"{what}: unknown keys {unknown} (known: {sorted(allowed)})")


def lot_add(symbol: str, lot_data: Mapping[str, object]) -> LotAdd:
    """The op for ``stage_lot_add(symbol, lot_data)``; quantity and cost_price are required."""
    _refuse_unknown(lot_data, LOT_KEYS, f"lot for {symbol}")
    for key in ("quantity", "cost_price"):
        if lot_data.get(key) is None:
            raise ValidationError(f"lot for {symbol}: {key} is required")
    lot_id = lot_data.get("lot_id")
    return LotAdd(
        symbol,
        money(lot_data["quantity"], "lot quantity"),  # type: ignore[arg-type]
        money(lot_data["cost_price"], "lot cost_price"),  # type: ignore[arg-type]
        None if lot_id is None else str(lot_id),
        optional_money(lot_data.get("fee"), "lot fee"),  # type: ignore[arg-type]
        _timestamp(lot_data.get("timestamp")),
    )


def lot_update(symbol: str, which: int | str, updates: Mapping[str, object]) -> LotUpdate:
    """The op for ``stage_lot_update(symbol, lot_id, updates)``."""
    _refuse_unknown(updates, UPDATE_KEYS, f"update of lot {which!r} of {symbol}")
    return LotUpdate(
        symbol,
        which,
        optional_money(updates.get("quantity"), "lot quantity"),  # type: ignore[arg-type]
        optional_money(updates.get("cost_price"), "lot cost_price"),  # type: ignore[arg-type]
        optional_money(updates.get("fee"), "lot fee"),  # type: ignore[arg-type]
        _timestamp(updates.get("timestamp")),
    )
