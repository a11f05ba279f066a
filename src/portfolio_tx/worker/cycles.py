"""One staged cycle: its events buffered until the marker decides it, and its limits.

Pure bookkeeping, no I/O; a session's cycles are kept by its ``SessionBook``
(``worker/book.py``). The marker's counts decide completeness (distinct event ids, so a
duplicate counts once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from portfolio_tx.ledger import DiscardReason
from portfolio_tx.wire.events import CycleMarker
from portfolio_tx.worker.buffer import BufferedRecord, EventBuffer, TopicPartition

__all__ = [
    "Admission",
    "CycleLimits",
    "KnownCycle",
    "OpenCycle",
    "TopicPartition",
]


class Admission(Enum):
    """What became of an event offered to a session."""

    STAGED = "staged"
    DUPLICATE = "duplicate"  # same event id already staged in that cycle: counted once
    DECIDED = "decided"  # its cycle is already decided: the loop tells redelivery from late
    REFUSED = "refused"  # its cycle is past a limit: the event goes to the dead-letter topic


@dataclass(frozen=True, slots=True)
class CycleLimits:
    """How much one session may buffer: events per cycle, open cycles at once."""

    max_events: int = 100_000
    max_open: int = 64


@dataclass(frozen=True, slots=True)
class KnownCycle:
    """What tells a re-read event of a decided cycle from a late one: the last offset per
    input partition of an event the decision included, and (small cycles only) the ids."""

    read_through: dict[TopicPartition, int]
    event_ids: frozenset[str] = frozenset()

    def includes(self, where: TopicPartition, offset: int, event_id: str) -> bool:
        return offset <= self.read_through.get(where, -1) or event_id in self.event_ids


@dataclass(slots=True)
class OpenCycle:
    """One cycle's events so far; ``first_offsets`` pins the consumer's commit position.

    ``ids`` holds every distinct event id staged (valid or invalid), ``events`` their raw
    records; ``refused`` is set when the cycle went past a limit: its events were
    dead-lettered and its marker decides it at once with that reason.
    """

    cycle_id: int
    events: EventBuffer
    ids: dict[str, None] = field(default_factory=dict)  # a dict: far smaller than a set
    fill_count: int = 0  # distinct fills, invalid ones included
    pnl_count: int = 0
    invalid: dict[str, str] = field(default_factory=dict)  # event id -> problem
    marker: CycleMarker | None = None
    marked_at: float = 0.0  # monotonic seconds when the marker arrived (latency only)
    marker_ms: int = 0  # the marker record's Kafka timestamp: the cycle timeout runs from it
    first_ms: int = -1  # record time of its first event: the open-cycle timeout runs from it
    first_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    read_through: dict[TopicPartition, int] = field(default_factory=dict)
    refused: DiscardReason | None = None
    refusal: str = ""  # refused: the dead-letter reason of its events (made once)
    draining: EventBuffer | None = None  # refused: buffered records still to dead-letter
    drained: int = 0  # how many of them are dead-lettered already

    def pin(self, where: TopicPartition, offset: int) -> None:
        if where not in self.first_offsets or offset < self.first_offsets[where]:
            self.first_offsets[where] = offset

    def saw(self, where: TopicPartition, offset: int, record_ms: int) -> None:
        """An event of this cycle was read at ``where``@``offset`` (staged or duplicate)."""
        if offset > self.read_through.get(where, -1):
            self.read_through[where] = offset
        if self.first_ms < 0 or record_ms < self.first_ms:
            self.first_ms = record_ms

    def event_ids(self) -> list[str]:
        return sorted(self.ids)

    @property
    def nbytes(self) -> int:
        """The cycle's buffered size, roughly what the process pays for it."""
        return self.events.nbytes + 90 * len(self.ids)

    def waits_for(self) -> tuple[bool, bool]:
        """Is it marked and still waiting for fills, for P&L reports? (A refused cycle
        waits for nothing.)"""
        marker = self.marker
        if marker is None or self.refused is not None:
            return False, False
        return self.fill_count < marker.fill_count, self.pnl_count < marker.pnl_count

    def readiness(self, timed_out: Callable[[OpenCycle], bool]) -> DiscardReason | None | bool:
        """False: keep waiting; None: complete and valid; else the discard reason."""
        marker = self.marker
        if marker is None:
            return False
        if self.refused is not None:
            return False if self.draining is not None else self.refused
        if self.fill_count > marker.fill_count or self.pnl_count > marker.pnl_count:
            return DiscardReason.COUNT_MISMATCH
        if self.fill_count == marker.fill_count and self.pnl_count == marker.pnl_count:
            return DiscardReason.INVALID_EVENT if self.invalid else None
        if timed_out(self):
            return DiscardReason.INCOMPLETE
        return False

    def refuse(self, reason: DiscardReason) -> None:
        """Past a limit: what is buffered is to be dead-lettered (``drain``, a batch at a
        time, so one cycle never makes one huge transaction); it stays pinned until then."""
        self.refused = reason
        if len(self.events):
            self.draining, self.drained = self.events, 0
        self.events = EventBuffer(self.events.key)
        self.ids = {}
        self.read_through.clear()
        if self.draining is None:
            self.first_offsets.clear()

    def drain(self, budget: int | None) -> list[BufferedRecord]:
        """Up to ``budget`` (None: all) of the refused records, unpinning what they were."""
        buffer = self.draining
        if buffer is None:
            return []
        records = list(buffer.records(self.drained, budget))
        self.drained += len(records)
        if self.drained >= len(buffer):
            self.draining = None
            self.first_offsets.clear()
        else:
            self.first_offsets = buffer.first_offsets(self.drained)
        return records

    def pending(self) -> list[BufferedRecord]:
        """Every record not dead-lettered yet (the cycle is being dropped)."""
        return [*self.drain(None), *self.events.records()]
