"""CycleDesk: session books in, decisions out; shared by the live worker and the audit.

The desk routes records into session books (``Intake``) and decides every ready cycle in
cycle-id order (``Decider``). It knows nothing of Kafka transactions: what to do with an
outcome record, a dead letter, or the marks catch-up before valuing is injected, so the live
loop produces them inside its transaction and the offline recomputation just collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from confluent_kafka import Message

from portfolio_tx.config import Settings
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.store.port import StateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.outcomes import inline_event_ids
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.cycles import CycleLimits, KnownCycle, OpenCycle, TopicPartition
from portfolio_tx.worker.decide import BatchWriter, Decider, Verdict
from portfolio_tx.worker.intake import Intake, SnapshotCheck
from portfolio_tx.worker.mark_table import MarkTable
from portfolio_tx.worker.offsets import FLOOD_BATCH
from portfolio_tx.worker.refusals import RawDeadLetter
from portfolio_tx.worker.stats import WorkerStats

Publish = Callable[[SessionBook, Verdict], None]


class CycleDesk:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        codec: Codec,
        marks: MarkTable,
        commit_log: CommitLog | None,
        stats: WorkerStats,
        dead_letter: RawDeadLetter,
        check: SnapshotCheck | None = None,
        writer: BatchWriter | None = None,
    ) -> None:
        self._timeout_ms = int(settings.cycle_timeout_s * 1000)
        self._open_timeout_ms = int(settings.open_cycle_timeout_s * 1000)
        self._topics = settings.topics
        self._stats = stats
        self._dead_letter = dead_letter
        limits = CycleLimits(settings.max_cycle_events, settings.max_open_cycles)
        self.intake = Intake(codec, settings.topics, store, dead_letter, stats, limits, check)
        self._drain_budget = min(settings.batch_size, FLOOD_BATCH)
        self._expired_at_ms = -1  # record time of the last open-cycle timeout sweep
        self.decider = Decider(settings, store, codec, marks, commit_log, check, writer)
        # Per input partition, the latest record timestamp read; partitions read to their
        # end count as reaching ``clock_ms``. See ``_timed_out``.
        self.progress: dict[TopicPartition, int] = {}
        self.caught_up: set[TopicPartition] = set()
        self.all_caught_up = False  # the offline recomputation at the end of its input
        self.clock_ms = 0

    def route(self, message: Message, now: float) -> None:
        where = (message.topic() or "", message.partition() or 0)
        stamp = message.timestamp()[1]
        if stamp > self.progress.get(where, -1):
            self.progress[where] = stamp
        self.intake.route(message, now)

    def _timed_out(self, book: SessionBook, cycle: OpenCycle) -> bool:
        """INCOMPLETE runs on record time, not on when this worker happens to read: a cycle
        times out once its session's fills and pnl partitions have both been read past the
        marker's timestamp plus the cycle timeout (or to their end, with the clock past it).
        A worker catching up a backlog therefore never mistakes "not read yet" for "missing",
        and a recomputation over the same topics reaches the same verdict."""
        deadline = cycle.marker_ms + self._timeout_ms
        return all(
            self._reached((topic, book.partition)) >= deadline
            for topic in (self._topics.fills, self._topics.pnl)
        )

    def _reached(self, where: TopicPartition) -> int:
        reached = self.progress.get(where, -1)
        if self.all_caught_up or where in self.caught_up:
            reached = max(reached, self.clock_ms)
        return reached

    def _open_too_long(self, book: SessionBook, cycle: OpenCycle) -> bool:
        """An unmarked cycle is given up once its session's markers partition has been read
        past its first event's record time plus the open-cycle timeout (or to its end, with
        the clock past it): on record time, like ``_timed_out``."""
        deadline = cycle.first_ms + self._open_timeout_ms
        return self._reached((self._topics.cycles, book.partition)) >= deadline

    def sweep_due(self) -> bool:
        """Has record time moved a second on since the last open-cycle timeout sweep?"""
        reached = max([self.clock_ms, *self.progress.values()])
        return reached >= self._expired_at_ms + 1000

    def sweep(self) -> int:
        """Give up the unmarked cycles open too long: their events go to the dead-letter
        topic (``Refusals.drain``, a batch per transaction), the committed offset moves past
        them; returns how many cycles."""
        self._expired_at_ms = max([self.clock_ms, *self.progress.values()])
        given_up = 0
        for book in self.intake.open_books():
            if not book.cycles:
                continue
            for cycle in book.expired(partial(self._open_too_long, book)):
                given_up += 1
                self.intake.refusals.give_up(book, cycle)
        self.intake.keep_abandoned()
        return given_up

    def due(self) -> bool:
        """Is a marked cycle ready (or timed out), a decided one in doubt, or an open-cycle
        timeout sweep due?"""
        if self.intake.refusals.draining or (self.sweep_due() and self.open_cycles()):
            return True
        for session_id in self.intake.marked:
            book = self.intake.books[session_id]
            if book.in_doubt or book.next_ready(partial(self._timed_out, book)) is not None:
                return True
        return False

    def decide_ready(self, now: float, publish: Publish, before_valuing: Callable[[], None]) -> int:
        """Decide what can be decided; returns how many cycles were handled."""
        handled = 0
        valued = False
        refusals = self.intake.refusals
        refusals.prune()  # once an iteration: what routing refused may be decided or gone
        if refusals.draining:  # a refused cycle's records, a batch per transaction
            handled += refusals.drain(None if self.all_caught_up else self._drain_budget)
        if self.sweep_due():
            handled += self.sweep()  # its dead letters must be committed, like a decision
        for session_id in sorted(self.intake.marked):
            book = self.intake.books[session_id]
            for cycle_id in book.in_doubt:
                verdict = self.decider.already_decided(book, cycle_id)
                self._stats.fenced += 1
                publish(book, verdict)
                book.snapshot = verdict.snapshot
                handled += 1
            book.in_doubt.clear()
            while True:
                self._dead_letter_orphans(book)
                ready = book.next_ready(partial(self._timed_out, book))
                if ready is None:
                    break
                cycle, reason = ready
                if reason is None and not valued:
                    before_valuing()
                    valued = True
                verdict = self.decider.decide(book, cycle, reason)
                self._stats.decision_staged(cycle.marked_at)
                if verdict.decision is None:
                    self._stats.fenced += 1
                elif verdict.decision.committed:
                    self._stats.committed_with(verdict.decision.delta)
                else:
                    self._stats.discarded[str(verdict.decision.reason)] += 1
                publish(book, verdict)
                ids = cycle.ids
                known = KnownCycle(
                    dict(cycle.read_through),
                    frozenset(ids) if inline_event_ids(ids) else frozenset(),
                )
                book.settle(cycle, verdict.snapshot, known)
                handled += 1
            if not book.has_marked_cycle():
                self.intake.marked.discard(session_id)
        self.intake.keep_abandoned()
        return handled

    def _dead_letter_orphans(self, book: SessionBook) -> None:
        for orphan in book.orphans():
            reason = f"cycle {orphan.cycle_id} of {book.session_id} never got a marker"
            for record in orphan.pending():
                self._dead_letter(*record.where, record.offset, record.key, record.value, reason)

    def forget(self) -> None:
        """Drop what was read (after a rewind: it is read again)."""
        self.progress.clear()
        self.caught_up.clear()

    def pinned(self) -> dict[TopicPartition, int]:
        """Per input partition, the first offset of a still-open cycle."""
        pinned: dict[TopicPartition, int] = {}
        get = pinned.get
        for book in self.intake.open_books():  # every iteration: each book keeps its own
            for where, offset in book.low_offsets().items():
                if offset < get(where, offset + 1):
                    pinned[where] = offset
        return pinned

    def open_cycles(self) -> int:
        return sum(len(book.cycles) for book in self.intake.open_books())
