"""SessionBook: one session's committed snapshot (cached) and its open cycles.

Pure bookkeeping, no I/O: the loop feeds decoded events in and asks which cycle is ready.
A session's cycles are decided strictly in cycle-id order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from portfolio_tx.ledger import DiscardReason
from portfolio_tx.store.port import SessionSnapshot
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.worker.buffer import EventBuffer, TopicPartition
from portfolio_tx.worker.cycles import Admission, CycleLimits, KnownCycle, OpenCycle


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
    # what the loop asks of every open book each iteration, kept up to date as events are
    # staged and computed again (None) after any other change: ``low_offsets``, ``sizes``
    _pins: dict[TopicPartition, int] | None = field(default=None, repr=False)
    _sizes: tuple[int, int] | None = field(default=None, repr=False)  # bytes: all, unmarked
    # the marked cycles' ids, a heap: its head is the next cycle to decide. Kept lazily (an
    # id no longer open and marked is dropped when it reaches the head), so finding the
    # lowest marked cycle costs O(1) however many markers were read ahead of their events
    _marked: list[int] = field(default_factory=list, repr=False)
    _unmarked: int = field(default=0, repr=False)  # open cycles without a marker

    @property
    def published_through(self) -> int:
        published = self.snapshot.published_through
        return -1 if published is None else published

    @property
    def last_decided(self) -> int:
        return -1 if self.snapshot.last_decided is None else self.snapshot.last_decided

    def _cycle(self, cycle_id: int, marked: bool = False) -> OpenCycle:
        """The open cycle ``cycle_id``, opened if need be (by its marker when ``marked``).

        The limit on open cycles counts the unmarked ones, what a session that never sends
        markers piles up. A marked cycle is decided when its events are in, or INCOMPLETE at
        its timeout; markers read ahead of their events (in a backlog the markers' topic is
        read many cycles ahead) are bounded by pausing that partition's markers
        (``worker.backpressure``), never by refusing a valid cycle.
        """
        cycle = self.cycles.get(cycle_id)
        if cycle is None:
            cycle = OpenCycle(cycle_id, EventBuffer(self.session_id.encode()))
            cycle.refused = self.abandoned.get(cycle_id)
            if cycle.refused is None and not marked and self._unmarked >= self.limits.max_open:
                self._abandon(cycle_id, DiscardReason.TOO_LARGE)
                cycle.refused = DiscardReason.TOO_LARGE
            self.cycles[cycle_id] = cycle
            self._unmarked += 1  # until its marker is staged
        return cycle

    @property
    def unmarked_cycles(self) -> int:
        """How many of its open cycles have no marker (kept, not counted)."""
        return self._unmarked

    def _drop(self, cycle_id: int) -> OpenCycle:
        cycle = self.cycles.pop(cycle_id)
        if cycle.marker is None:
            self._unmarked -= 1
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
        sizes = self._sizes
        before = cycle.nbytes if sizes is not None else 0
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
        self._pin(cycle, where, offset)
        if sizes is not None:
            grown = cycle.nbytes - before
            unmarked = sizes[1] + (grown if cycle.marker is None else 0)
            self._sizes = (sizes[0] + grown, unmarked)
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
        cycle = self._cycle(marker.cycle_id, marked=True)
        if cycle.marker is not None:
            return Admission.DUPLICATE
        cycle.marker = marker
        self._unmarked -= 1
        cycle.marked_at = now
        cycle.marker_ms = record_ms
        heapq.heappush(self._marked, marker.cycle_id)
        self._pin(cycle, where, offset)
        self._sizes = None  # its bytes are no longer unmarked
        return Admission.STAGED

    def _pin(self, cycle: OpenCycle, where: TopicPartition, offset: int) -> None:
        cycle.pin(where, offset)
        pins = self._pins
        if pins is not None and offset < pins.get(where, offset + 1):
            pins[where] = offset

    def changed(self) -> None:
        """Its cycles changed other than by staging (decided, dropped, refused, drained):
        ``low_offsets`` and ``sizes`` are computed again when next asked."""
        self._pins = self._sizes = None

    def low_offsets(self) -> dict[TopicPartition, int]:
        """Per input partition, the lowest first offset of its open cycles (the consumer's
        commit position must not pass it)."""
        pins = self._pins
        if pins is None:
            pins = {}
            for cycle in self.cycles.values():
                for where, offset in cycle.first_offsets.items():
                    if offset < pins.get(where, offset + 1):
                        pins[where] = offset
            self._pins = pins
        return pins

    def sizes(self) -> tuple[int, int, int]:
        """Bytes buffered in its open cycles (all of them, the unmarked ones) and how many
        of its open cycles are marked (waiting for their events)."""
        sizes = self._sizes
        if sizes is None:
            total = unmarked = 0
            for cycle in self.cycles.values():
                size = cycle.nbytes
                total += size
                if cycle.marker is None:
                    unmarked += size
            self._sizes = sizes = (total, unmarked)
        return sizes[0], sizes[1], len(self.cycles) - self._unmarked

    def orphans(self) -> list[OpenCycle]:
        """Unmarked cycles below the lowest marked one: their marker will never come.

        Markers of a session share one partition, so a later marker means every earlier
        marker has already been read; these cycles are removed from the book.
        """
        cycles = self.cycles
        # asked before every decision: the usual answers (no other cycle, or none unmarked:
        # markers read ahead of their events) at once
        if len(cycles) < 2 or not self._unmarked:
            return []
        lowest = self.lowest_marked()
        if lowest is None:
            return []
        head = lowest.cycle_id
        stale = [cid for cid in cycles if cid < head]
        if stale:
            self.changed()
        return [self._drop(cid) for cid in sorted(stale)]

    def expired(self, timed_out: Callable[[OpenCycle], bool]) -> list[OpenCycle]:
        """Unmarked cycles past the open-cycle timeout, remembered as abandoned (INCOMPLETE
        if their marker ever comes). One with events buffered is refused (they are drained,
        a batch per transaction, pinned until then) and returned; a refused one with
        nothing left to drain is removed from the book."""
        if not self._unmarked:
            return []
        gone = [
            cid
            for cid, cycle in self.cycles.items()
            if cycle.marker is None and cycle.draining is None and timed_out(cycle)
        ]
        for cid in gone:
            if cid not in self.abandoned:
                self._abandon(cid, DiscardReason.INCOMPLETE)
        if gone:
            self.changed()
        refused = []
        for cid in sorted(gone):
            cycle = self.cycles[cid]
            if len(cycle.events):
                cycle.refuse(self.abandoned[cid])
                refused.append(cycle)
            else:
                self._drop(cid)
        return refused

    def next_ready(
        self, timed_out: Callable[[OpenCycle], bool]
    ) -> tuple[OpenCycle, DiscardReason | None] | None:
        """The lowest marked cycle if it can be decided now, with its precomputed reason."""
        cycle = self.lowest_marked()
        if cycle is None:
            return None
        readiness = cycle.readiness(timed_out)
        if readiness is False:
            return None
        assert readiness is None or isinstance(readiness, DiscardReason)
        return cycle, readiness

    def lowest_marked(self) -> OpenCycle | None:
        """The open marked cycle of the lowest id (``_marked``'s head, once the ids no longer
        open and marked are dropped from it)."""
        heap, cycles = self._marked, self.cycles
        while heap:
            cycle = cycles.get(heap[0])
            if cycle is not None and cycle.marker is not None:
                return cycle
            heapq.heappop(heap)
        return None

    def settle(self, cycle: OpenCycle, snapshot: SessionSnapshot, known: KnownCycle) -> None:
        """Record that ``cycle`` was decided and the session now stands at ``snapshot``."""
        if cycle.cycle_id in self.cycles:
            self._drop(cycle.cycle_id)
        self.changed()
        self.snapshot = snapshot
        self.remember(cycle.cycle_id, known)
        cycles = self.cycles
        if cycles and min(cycles) <= self.last_decided:  # rarely: the usual answer at once
            for cid in [cid for cid in cycles if cid <= self.last_decided]:
                self._drop(cid)
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
        return bool(self.in_doubt) or self.lowest_marked() is not None
