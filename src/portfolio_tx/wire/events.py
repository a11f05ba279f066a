"""The input records on the wire (CONTRACT §3) as frozen value objects, and their checks.

Each class mirrors one schema in ``schemas/*.avsc`` field for field: money is ``Decimal``,
enums are the ledger's string enums, and ``ts`` is always an ``int`` of milliseconds since
the Unix epoch (Avro ``timestamp-millis``). Decimals are held exactly as given; the codec
quantizes them to scale 18 when it writes them. The outcome the worker publishes is in
``wire.outcomes``.

``event_problem`` says what is wrong with a decoded input event, as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from portfolio_tx.ledger import PnlKind, Side, fill_problem
from portfolio_tx.wire.outcomes import CycleOutcome

MAX_TEXT_LENGTH = 256
"""Longest accepted event id, session id or symbol."""

_PNL_KINDS = frozenset(kind.value for kind in PnlKind)
_SIDES = frozenset(side.value for side in Side)

@dataclass(frozen=True, slots=True)
class Fill:
    """An execution: ``side`` ``quantity`` @ ``price``, paying ``fee`` (negative = rebate)."""

    event_id: str
    session_id: str
    cycle_id: int
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    ts: int


@dataclass(frozen=True, slots=True)
class PnlEvent:
    """A P&L report of ``kind`` for ``amount``; ``symbol`` is informative and optional."""

    event_id: str
    session_id: str
    cycle_id: int
    kind: PnlKind
    amount: Decimal
    ts: int
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class CycleMarker:
    """Ends cycle ``cycle_id``, which has ``fill_count`` fills and ``pnl_count`` reports."""

    session_id: str
    cycle_id: int
    fill_count: int
    pnl_count: int
    ts: int


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """The mark of ``symbol`` from ``ts`` on."""

    symbol: str
    price: Decimal
    ts: int


InputEvent = Fill | PnlEvent | CycleMarker
"""What a session's cycle is made of, read from the co-partitioned input topics."""

Event = Fill | PnlEvent | CycleMarker | MarkPrice | CycleOutcome
"""Every record the codec reads and writes."""


def _text_problem(field: str, value: str | None) -> str | None:
    if not value:
        return f"{field} is empty"
    if len(value) > MAX_TEXT_LENGTH:
        return f"{field} is longer than {MAX_TEXT_LENGTH} characters ({len(value)})"
    return None


def _cycle_problem(cycle_id: int) -> str | None:
    return None if cycle_id >= 0 else f"cycle_id is negative ({cycle_id})"


def _first(*problems: str | None) -> str | None:
    return next((problem for problem in problems if problem), None)


def event_problem(event: InputEvent | MarkPrice) -> str | None:
    """What is invalid about a decoded input event or mark, or None when it is usable.

    Checks: ids and symbols non-empty and at most ``MAX_TEXT_LENGTH`` characters; cycle ids
    and marker counts not negative; a fill's quantity and price positive (its fee may be
    zero or negative); a mark's price positive. Pure.
    """
    if isinstance(event, Fill):
        if (  # the usual case in one expression, no message built (NaN is never compared)
            event.session_id
            and event.event_id
            and event.symbol
            and len(event.session_id) <= MAX_TEXT_LENGTH
            and len(event.event_id) <= MAX_TEXT_LENGTH
            and len(event.symbol) <= MAX_TEXT_LENGTH
            and event.cycle_id >= 0
            and event.side in _SIDES
            and event.quantity.is_finite()
            and event.quantity > 0
            and event.price.is_finite()
            and event.price > 0
            and event.fee.is_finite()
        ):
            return None
        return _first(
            _text_problem("session_id", event.session_id),
            _text_problem("event_id", event.event_id),
            _text_problem("symbol", event.symbol),
            _cycle_problem(event.cycle_id),
            fill_problem(event.side, event.quantity, event.price),
            None if event.fee.is_finite() else f"fee must be finite, got {event.fee}",
        )
    if isinstance(event, PnlEvent):
        return _first(
            _text_problem("session_id", event.session_id),
            _text_problem("event_id", event.event_id),
            None if event.symbol is None else _text_problem("symbol", event.symbol),
            _cycle_problem(event.cycle_id),
            None if event.kind in _PNL_KINDS else f"unknown kind {event.kind!r}",
            None if event.amount.is_finite() else f"amount must be finite, got {event.amount}",
        )
    if isinstance(event, CycleMarker):
        return _first(
            _text_problem("session_id", event.session_id),
            _cycle_problem(event.cycle_id),
            None if event.fill_count >= 0 else f"fill_count is negative ({event.fill_count})",
            None if event.pnl_count >= 0 else f"pnl_count is negative ({event.pnl_count})",
        )
    return _first(
        _text_problem("symbol", event.symbol),
        None
        if event.price.is_finite() and event.price > 0
        else f"mark price must be positive, got {event.price}",
    )
