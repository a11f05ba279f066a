"""Staged cycles of one session: events buffered by cycle id until the marker decides them.

Pure bookkeeping, no I/O: the loop feeds decoded events in and asks which cycle is ready.
A session's cycles are decided strictly in cycle-id order; the marker's counts decide
completeness (distinct event ids, so a duplicate counts once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from portfolio_tx.ledger import DiscardReason
from portfolio_tx.store.port import SessionSnapshot
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.worker.buffer import BufferedRecord, EventBuffer, TopicPartition

__all__ = [
    "Admission",
    "CycleLimits",
    "KnownCycle",
    "OpenCycle",
    "SessionBook",
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

    def verdict(self, timed_out: Callable[[OpenCycle], bool]) -> DiscardReason | None | bool:
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


@dataclass(slots=True)
class SessionBook:
    """A session's committed snapshot (cached) and its open cycles.

    ``abandoned`` holds the cycles given up undecided (past a limit, or never marked within
    the open-cycle timeout), as the store keeps them: their events are dead-lettered on
    arrival and their marker, if it ever comes, decides them at once with that reason.
    """

    session_id: str
    partition: int
    snapshot: SessionSnapshot
    limits: CycleLimits = field(default_factory=CycleLimits)
    abandoned: dict[int, DiscardReason] = field(default_factory=dict)
    cycles: dict[int, OpenCycle] = field(default_factory=dict)
    recent: dict[int, KnownCycle] = field(default_factory=dict)  # decided cycles met again
    in_doubt: list[int] = field(default_factory=list)  # decided, publication not yet known
    newly_abandoned: list[int] = field(default_factory=list)  # for the store to keep

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
            cycle = OpenCycle(cycle_id, EventBuffer(self.session_id.encode()))
            cycle.refused = self.abandoned.get(cycle_id)
            if cycle.refused is None and len(self.cycles) >= self.limits.max_open:
                self._abandon(cycle_id, DiscardReason.TOO_LARGE)
                cycle.refused = DiscardReason.TOO_LARGE
            self.cycles[cycle_id] = cycle
        return cycle

    def _abandon(self, cycle_id: int, reason: DiscardReason) -> None:
        self.abandoned[cycle_id] = reason
        self.newly_abandoned.append(cycle_id)

    def add_event(
        self,
        event: Fill | PnlEvent,
        where: TopicPartition,
        offset: int,
        record_ms: int = 0,
        raw: tuple[bytes | None, bytes | None] = (None, None),
        problem: str | None = None,
    ) -> Admission:
        """Stage a fill or a P&L report in its cycle; its event id counts once.

        ``raw`` is the record's key and value as read (kept until the decision);
        ``problem`` makes it an invalid event: it counts, and it sinks the cycle.
        """
        if event.cycle_id <= self.last_decided:
            return Admission.DECIDED
        cycle = self._cycle(event.cycle_id)
        if cycle.refused is not None:
            return Admission.REFUSED
        if event.event_id in cycle.ids:
            cycle.saw(where, offset, record_ms)
            return Admission.DUPLICATE
        if len(cycle.ids) >= self.limits.max_events:
            self._abandon(event.cycle_id, DiscardReason.TOO_LARGE)
            cycle.refused = DiscardReason.TOO_LARGE
            return Admission.REFUSED
        is_fill = isinstance(event, Fill)
        cycle.ids[event.event_id] = None
        if is_fill:
            cycle.fill_count += 1
        else:
            cycle.pnl_count += 1
        if problem is not None:
            cycle.invalid[event.event_id] = problem
        cycle.events.append(where, offset, *raw, is_fill=is_fill, invalid=problem is not None)
        cycle.saw(where, offset, record_ms)
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

    def expired(self, timed_out: Callable[[OpenCycle], bool]) -> list[OpenCycle]:
        """Unmarked cycles past the open-cycle timeout, removed from the book and remembered
        as abandoned (INCOMPLETE if their marker ever comes)."""
        gone = [
            cid
            for cid, cycle in self.cycles.items()
            if cycle.marker is None and cycle.draining is None and timed_out(cycle)
        ]
        for cid in gone:
            if cid not in self.abandoned:
                self._abandon(cid, DiscardReason.INCOMPLETE)
        return [self.cycles.pop(cid) for cid in sorted(gone)]

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

    def decided(self, cycle: OpenCycle, snapshot: SessionSnapshot, known: KnownCycle) -> None:
        """Record that ``cycle`` was decided and the session now stands at ``snapshot``."""
        self.cycles.pop(cycle.cycle_id, None)
        self.snapshot = snapshot
        self.remember(cycle.cycle_id, known)
        for cid in [cid for cid in self.cycles if cid <= self.last_decided]:
            del self.cycles[cid]
        for cid in [cid for cid in self.abandoned if cid <= self.last_decided]:
            del self.abandoned[cid]

    def remember(self, cycle_id: int, known: KnownCycle) -> None:
        self.recent[cycle_id] = known
        while len(self.recent) > 16:
            del self.recent[min(self.recent)]

    def pinned(self) -> Iterator[tuple[TopicPartition, int]]:
        for cycle in self.cycles.values():
            yield from cycle.first_offsets.items()

    def has_marked_cycle(self) -> bool:
        return bool(self.in_doubt) or any(c.marker is not None for c in self.cycles.values())
