"""Staged cycles of one session: events buffered by cycle id until the marker decides them.

Pure bookkeeping, no I/O: the loop feeds decoded events in and asks which cycle is ready.
A session's cycles are decided strictly in cycle-id order; the marker's counts decide
completeness (distinct event ids, so a duplicate counts once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from portfolio_tx.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.ledger import DiscardReason
from portfolio_tx.store.port import SessionSnapshot

TopicPartition = tuple[str, int]


class Admission(Enum):
    """What became of an event offered to a session."""

    STAGED = "staged"
    DUPLICATE = "duplicate"  # same event id already staged in that cycle: counted once
    DECIDED = "decided"  # its cycle is already decided: the loop tells redelivery from late


@dataclass(slots=True)
class OpenCycle:
    """One cycle's events so far; ``first_offsets`` pins the consumer's commit position."""

    cycle_id: int
    fills: dict[str, Fill] = field(default_factory=dict)
    pnl: dict[str, PnlEvent] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)  # event id -> problem
    invalid_fills: set[str] = field(default_factory=set)
    invalid_pnl: set[str] = field(default_factory=set)
    marker: CycleMarker | None = None
    marked_at: float = 0.0  # monotonic seconds when the marker arrived (latency only)
    marker_ms: int = 0  # the marker record's Kafka timestamp: the cycle timeout runs from it
    first_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    sources: list[tuple[TopicPartition, int, bytes | None, bytes | None]] = field(
        default_factory=list
    )

    def pin(self, where: TopicPartition, offset: int) -> None:
        if where not in self.first_offsets or offset < self.first_offsets[where]:
            self.first_offsets[where] = offset

    @property
    def fill_count(self) -> int:
        return len(self.fills) + len(self.invalid_fills)

    @property
    def pnl_count(self) -> int:
        return len(self.pnl) + len(self.invalid_pnl)

    def event_ids(self) -> list[str]:
        return [*self.fills, *self.pnl, *self.invalid]

    def verdict(self, timed_out: Callable[[OpenCycle], bool]) -> DiscardReason | None | bool:
        """False: keep waiting; None: complete and valid; else the discard reason."""
        marker = self.marker
        if marker is None:
            return False
        if self.fill_count > marker.fill_count or self.pnl_count > marker.pnl_count:
            return DiscardReason.COUNT_MISMATCH
        if self.fill_count == marker.fill_count and self.pnl_count == marker.pnl_count:
            return DiscardReason.INVALID_EVENT if self.invalid else None
        if timed_out(self):
            return DiscardReason.INCOMPLETE
        return False


@dataclass(slots=True)
class SessionBook:
    """A session's committed snapshot (cached) and its open cycles."""

    session_id: str
    partition: int
    snapshot: SessionSnapshot
    cycles: dict[int, OpenCycle] = field(default_factory=dict)
    recent: dict[int, frozenset[str]] = field(default_factory=dict)  # decided here: event ids
    in_doubt: list[int] = field(default_factory=list)  # decided, publication not yet known

    @property
    def published_through(self) -> int:
        published = self.snapshot.published_through
        return -1 if published is None else published

    @property
    def last_decided(self) -> int:
        return -1 if self.snapshot.last_decided is None else self.snapshot.last_decided

    def _cycle(self, cycle_id: int) -> OpenCycle:
        cycle = self.cycles.get(cycle_id)
        if cycle is None:
            cycle = self.cycles[cycle_id] = OpenCycle(cycle_id)
        return cycle

    def add_event(self, event: Fill | PnlEvent, where: TopicPartition, offset: int) -> Admission:
        """Stage a fill or a P&L report in its cycle; its event id counts once."""
        if event.cycle_id <= self.last_decided:
            return Admission.DECIDED
        cycle = self._cycle(event.cycle_id)
        if (
            event.event_id in cycle.fills
            or event.event_id in cycle.pnl
            or (event.event_id in cycle.invalid)
        ):
            return Admission.DUPLICATE
        if isinstance(event, Fill):
            cycle.fills[event.event_id] = event
        else:
            cycle.pnl[event.event_id] = event
        cycle.pin(where, offset)
        return Admission.STAGED

    def add_invalid(
        self,
        cycle_id: int,
        event_id: str,
        is_fill: bool,
        problem: str,
        where: TopicPartition,
        offset: int,
    ) -> Admission:
        """An event of a known cycle that was rejected: it counts, and it sinks the cycle."""
        if cycle_id <= self.last_decided:
            return Admission.DECIDED
        cycle = self._cycle(cycle_id)
        if event_id in cycle.invalid or event_id in cycle.fills or event_id in cycle.pnl:
            return Admission.DUPLICATE
        cycle.invalid[event_id] = problem
        (cycle.invalid_fills if is_fill else cycle.invalid_pnl).add(event_id)
        cycle.pin(where, offset)
        return Admission.STAGED

    def add_marker(
        self, marker: CycleMarker, where: TopicPartition, offset: int, now: float, record_ms: int
    ) -> Admission:
        """Stage the marker; a marker of a decided cycle whose outcome is not known to be
        published puts that cycle in doubt (the loop checks the commit topic)."""
        if marker.cycle_id <= self.last_decided:
            if marker.cycle_id > self.published_through and marker.cycle_id not in self.in_doubt:
                self.in_doubt.append(marker.cycle_id)
            return Admission.DECIDED
        cycle = self._cycle(marker.cycle_id)
        if cycle.marker is not None:
            return Admission.DUPLICATE
        cycle.marker = marker
        cycle.marked_at = now
        cycle.marker_ms = record_ms
        cycle.pin(where, offset)
        return Admission.STAGED

    def orphans(self) -> list[OpenCycle]:
        """Unmarked cycles below the lowest marked one: their marker will never come.

        Markers of a session share one partition, so a later marker means every earlier
        marker has already been read; these cycles are removed from the book.
        """
        marked = [cid for cid, cycle in self.cycles.items() if cycle.marker is not None]
        if not marked:
            return []
        head = min(marked)
        stale = [cid for cid in self.cycles if cid < head]
        return [self.cycles.pop(cid) for cid in sorted(stale)]

    def next_ready(
        self, timed_out: Callable[[OpenCycle], bool]
    ) -> tuple[OpenCycle, DiscardReason | None] | None:
        """The lowest marked cycle if it can be decided now, with its precomputed reason."""
        marked = [cid for cid, cycle in self.cycles.items() if cycle.marker is not None]
        if not marked:
            return None
        cycle = self.cycles[min(marked)]
        verdict = cycle.verdict(timed_out)
        if verdict is False:
            return None
        assert verdict is None or isinstance(verdict, DiscardReason)
        return cycle, verdict

    def decided(self, cycle: OpenCycle, snapshot: SessionSnapshot) -> None:
        """Record that ``cycle`` was decided and the session now stands at ``snapshot``."""
        self.cycles.pop(cycle.cycle_id, None)
        self.snapshot = snapshot
        self.recent[cycle.cycle_id] = frozenset(cycle.event_ids())
        while len(self.recent) > 16:
            del self.recent[min(self.recent)]
        for cid in [cid for cid in self.cycles if cid <= self.last_decided]:
            del self.cycles[cid]

    def pinned(self) -> Iterator[tuple[TopicPartition, int]]:
        for cycle in self.cycles.values():
            yield from cycle.first_offsets.items()

    def has_marked_cycle(self) -> bool:
        return bool(self.in_doubt) or any(c.marker is not None for c in self.cycles.values())
