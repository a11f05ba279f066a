"""The cycle outcome on the wire (CONTRACT §3, ``CycleOutcome.avsc``), and its two
conversions: ``outcome_from_decision`` turns a ledger ``Decision`` into the outcome the
worker publishes, ``state_from_outcome`` rebuilds the committed ``PortfolioState`` from a
COMMIT outcome (the restore path when the state store lost its data).

Like the input records, each class mirrors its schema field for field, money in ``Decimal``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from portfolio_tx.ledger import Decision, Lot, OutcomeKind, PortfolioState
from portfolio_tx.ledger.lots import lots_quantity
from portfolio_tx.ledger.money import ZERO, exact
from portfolio_tx.ledger.state import Position, freeze_lots, freeze_marks, position_of

INLINE_EVENT_IDS_BYTES = 64 * 1024
"""Most bytes of event ids an outcome carries inline; a larger cycle's outcome carries only
their count and digest (and ``read_through``), so it always fits the broker's message size."""


def event_ids_digest(event_ids: Iterable[str]) -> str:
    """SHA-256 (hex) of the distinct event ids, sorted and newline-joined: the same set of ids
    gives the same digest whatever order they arrived in."""
    digest = hashlib.sha256()
    for event_id in sorted(set(event_ids)):
        digest.update(event_id.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def inline_event_ids(event_ids: Iterable[str]) -> bool:
    """Whether ``event_ids`` are small enough to be kept inline (outcome, store)."""
    budget = INLINE_EVENT_IDS_BYTES
    for event_id in event_ids:
        budget -= len(event_id) + 2
        if budget < 0:
            return False
    return True



@dataclass(frozen=True, slots=True)
class OutcomePosition:
    """A held symbol after the cycle; ``mark_price`` is None only if it was never marked."""

    symbol: str
    quantity: Decimal
    avg_entry_price: Decimal
    mark_price: Decimal | None


@dataclass(frozen=True, slots=True)
class OutcomeLot:
    """One open lot: signed ``quantity`` and its total ``cost`` (same sign)."""

    symbol: str
    quantity: Decimal
    cost: Decimal


@dataclass(frozen=True, slots=True)
class OutcomeMark:
    """A mark the state is valued at."""

    symbol: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class OutcomeOffset:
    """The last offset of an input partition that held an event of the cycle."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class CycleOutcome:
    """The decision on one cycle (see ``ledger.Decision`` for what each figure means).

    ``realized_pnl``, ``fees``, ``positions``, ``lots``, ``marks``, ``version`` and
    ``state_cash`` describe the session's committed state after the cycle: the new state on
    COMMIT, the unchanged previous one on DISCARD. ``state_cash`` and the lots' costs keep
    the ledger's full precision (the wire gives them scale 36), so the state can be rebuilt
    exactly; ``cash`` is the staged cash of the contract. ``reason`` is a ``DiscardReason``
    value on DISCARD, else None.

    ``event_count`` is how many distinct events the cycle was decided on and ``event_digest``
    the digest of their ids (``event_ids_digest``); ``event_ids`` lists them only when they
    fit ``INLINE_EVENT_IDS_BYTES``. ``read_through`` gives, per input partition, the last
    offset of an event the decision included: an event of the decided cycle read again at or
    below it is a redelivery, one above it is late (O(1), no id list needed).

    ``cash`` is the staged cash of the contract; ``transfers``, ``residual`` (the
    cumulative Δ of the committed cycles, beside this cycle's ``delta``) and
    ``state_realized_pnl`` (``realized_pnl`` exact) are the state's too, at scale 36; an
    older writer leaves them None. ``reason`` is a ``DiscardReason`` value on DISCARD, else
    None.
    """

    session_id: str
    cycle_id: int
    outcome: OutcomeKind
    reason: str | None
    cash: Decimal
    positions_value: Decimal
    total: Decimal
    previous_equity: Decimal
    expected_equity: Decimal
    delta: Decimal
    epsilon: Decimal
    realized_pnl: Decimal
    fees: Decimal
    positions: tuple[OutcomePosition, ...]
    ts: int
    version: int = 0
    state_cash: Decimal | None = None
    lots: tuple[OutcomeLot, ...] = ()
    marks: tuple[OutcomeMark, ...] = ()
    worker_id: str | None = None
    event_ids: tuple[str, ...] = ()
    event_count: int = 0
    event_digest: str | None = None
    read_through: tuple[OutcomeOffset, ...] = ()
    transfers: Decimal | None = None
    residual: Decimal | None = None
    state_realized_pnl: Decimal | None = None

    @property
    def committed(self) -> bool:
        return self.outcome is OutcomeKind.COMMIT


OutcomeValues = tuple[Any, ...]
"""A CycleOutcome as the positional tuple ``Codec.encode_values`` writes: its fields in schema
order, each position, lot, mark and read-through offset a tuple of its fields too."""

_FIELDS = tuple(f.name for f in fields(CycleOutcome))
_ROWS = {
    "positions": OutcomePosition,
    "lots": OutcomeLot,
    "marks": OutcomeMark,
    "read_through": OutcomeOffset,
}


@exact
def outcome_values(
    session_id: str,
    decision: Decision,
    ts: int,
    worker_id: str | None = None,
    event_ids: tuple[str, ...] = (),
    read_through: Mapping[tuple[str, int], int] | None = None,
) -> OutcomeValues:
    """The outcome event for ``decision`` on ``session_id``, stamped ``ts`` (epoch millis),
    as ``OutcomeValues`` (the worker encodes it as it is: no object per row).

    ``event_ids`` are the cycle's distinct event ids: counted and digested always, inlined
    only when they fit ``INLINE_EVENT_IDS_BYTES``. ``read_through`` maps (topic, partition)
    to the last offset of an event the decision included.

    Positions are ``PortfolioState.positions``; lots are listed per symbol (sorted) in their
    cost-basis order, so ``state_from_outcome`` rebuilds the same lot book. Raises
    ``ValueError`` when the decision has no cycle id.
    """
    if decision.cycle_id is None:
        raise ValueError("a decision without a cycle id cannot be published")
    state = decision.state
    lots, marks = state.lots, state.marks
    positions: list[Position] = []
    rows: list[tuple[str, Decimal, Decimal]] = []
    for symbol in sorted(lots):
        held = lots[symbol]
        positions.append(position_of(symbol, held, marks.get(symbol)))
        rows.extend((symbol, lot.quantity, lot.cost) for lot in held)
    return (
        session_id,
        decision.cycle_id,
        decision.outcome,
        None if decision.reason is None else decision.reason.value,
        decision.cash,
        decision.positions_value,
        decision.total,
        decision.previous_equity,
        decision.expected_equity,
        decision.delta,
        decision.epsilon,
        state.realized_pnl,
        state.fees,
        tuple(positions),
        ts,
        state.version,
        state.cash,
        tuple(rows),
        tuple(sorted(marks.items())),
        worker_id,
        event_ids if inline_event_ids(event_ids) else (),
        len(event_ids),
        event_ids_digest(event_ids) if event_ids else None,
        tuple(
            (topic, partition, offset)
            for (topic, partition), offset in sorted((read_through or {}).items())
        ),
        state.transfers,
        state.residual,
        state.realized_pnl,
    )


def outcome_of(values: OutcomeValues) -> CycleOutcome:
    """The CycleOutcome that ``values`` describe."""
    named = dict(zip(_FIELDS, values, strict=True))
    for name, row in _ROWS.items():
        named[name] = tuple(row(*item) for item in named[name])
    return CycleOutcome(**named)


def outcome_from_decision(
    session_id: str,
    decision: Decision,
    ts: int,
    worker_id: str | None = None,
    event_ids: tuple[str, ...] = (),
    read_through: Mapping[tuple[str, int], int] | None = None,
) -> CycleOutcome:
    """``outcome_values`` as a CycleOutcome (see there)."""
    return outcome_of(
        outcome_values(session_id, decision, ts, worker_id, event_ids, read_through)
    )


@exact
def state_from_outcome(outcome: CycleOutcome) -> PortfolioState:
    """The committed state a COMMIT outcome describes.

    With ``state_cash`` (always written by ``outcome_from_decision``) the state is the
    committed one digit for digit: equity is recomputed exactly as cash plus the lots valued
    at the marks, as the commit computed it. An outcome without it (an older writer) gives
    cash and equity at the contract's 18 places, and transfers and residual as 0 (it did
    not record them). Raises ``ValueError`` for a DISCARD
    outcome: it does not say which cycle the state it carries was committed by.
    """
    if outcome.outcome is not OutcomeKind.COMMIT:
        raise ValueError(
            f"cycle {outcome.cycle_id} of {outcome.session_id} was discarded; "
            "only a COMMIT outcome describes a state"
        )
    lots: dict[str, tuple[Lot, ...]] = {}
    for lot in outcome.lots:
        lots[lot.symbol] = (*lots.get(lot.symbol, ()), Lot(lot.quantity, lot.cost))
    marks = {mark.symbol: mark.price for mark in outcome.marks}
    if outcome.state_cash is None:
        cash, equity = outcome.cash, outcome.total
    else:
        unmarked = sorted(set(lots) - set(marks))
        if unmarked:
            raise ValueError(f"a COMMIT outcome holds {', '.join(unmarked)} without a mark")
        cash = outcome.state_cash
        equity = cash + sum(
            (lots_quantity(held) * marks[symbol] for symbol, held in lots.items()), ZERO
        )
    realized = outcome.realized_pnl
    if outcome.state_realized_pnl is not None:
        realized = outcome.state_realized_pnl
    return PortfolioState(
        cash=cash,
        realized_pnl=realized,
        fees=outcome.fees,
        equity=equity,
        lots=freeze_lots(lots),
        marks=freeze_marks(marks),
        last_cycle=outcome.cycle_id,
        version=outcome.version,
        transfers=ZERO if outcome.transfers is None else outcome.transfers,
        residual=ZERO if outcome.residual is None else outcome.residual,
    )
