"""Intake: consumed input records into session books; what cannot be used is dead-lettered.

For every record: decode (undecodable → dead letter), check (an invalid event of a known
cycle is dead-lettered *and* sinks its cycle with INVALID_EVENT; one without a usable
session or cycle is only dead-lettered), then stage it in its session's book. An event for
an already-decided cycle is a redelivery when that cycle's decision included it — read at or
below the decision's last offset on that partition, or (small cycles) its event id among the
decision's — and is skipped quietly; otherwise it is genuinely late (dead-lettered). Both
checks are O(1) per event: what a decided cycle's decision included is fetched once.

An event of a cycle past its limit (``CycleLimits``) is dead-lettered with TOO_LARGE, and
the cycle's events buffered so far with it (``worker.refusals``, which also dead-letters the
later events of a refused cycle before they are decoded); the store remembers the cycle as
abandoned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Message

from portfolio_tx.errors import DecodeError
from portfolio_tx.kafka.clients import located
from portfolio_tx.ledger import DiscardReason
from portfolio_tx.store.port import SessionSnapshot, StateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import MAX_TEXT_LENGTH, CycleMarker, Fill, PnlEvent, event_problem
from portfolio_tx.wire.outcomes import CycleOutcome
from portfolio_tx.wire.topics import TopicNames
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.cycles import Admission, CycleLimits, KnownCycle
from portfolio_tx.worker.refusals import RawDeadLetter, Refusals
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")

SnapshotCheck = Callable[[int, str, SessionSnapshot], None]
"""(partition, session id, snapshot read from the store) -> None; raises when it must not
be staged on (``heads.StateBehind``)."""
InputEvent = Fill | PnlEvent | CycleMarker


def identity_problem(event: InputEvent) -> str | None:
    """Why the event cannot be attributed to a session's cycle, or None."""
    if not event.session_id or len(event.session_id) > MAX_TEXT_LENGTH:
        return "session_id must be 1 to 256 characters"
    if event.cycle_id < 0:
        return f"cycle_id must not be negative, got {event.cycle_id}"
    if not isinstance(event, CycleMarker) and (
        not event.event_id or len(event.event_id) > MAX_TEXT_LENGTH
    ):
        return "event_id must be 1 to 256 characters"
    return None


class Intake:
    """Session books of the assigned partitions, fed one consumed record at a time."""

    def __init__(
        self,
        codec: Codec,
        topics: TopicNames,
        store: StateStore,
        dead_letter: RawDeadLetter,
        stats: WorkerStats,
        limits: CycleLimits | None = None,
        check: SnapshotCheck | None = None,
    ) -> None:
        self._codec = codec
        self._commits = topics.commits
        self.limits = limits or CycleLimits()
        self._store = store
        self._check = check
        self._raw_dead_letter = dead_letter
        self._stats = stats
        self._expected: dict[str, type[InputEvent]] = {
            topics.fills: Fill,
            topics.pnl: PnlEvent,
            topics.cycles: CycleMarker,
        }
        self.books: dict[str, SessionBook] = {}
        self._open: set[str] = set()  # sessions that may have open cycles: see open_books
        self.marked: set[str] = set()  # sessions with a marked cycle waiting to be decided
        self.refusals = Refusals(self.books, self.limits, dead_letter, stats)

    def book(self, session_id: str, partition: int) -> SessionBook:
        """The session's book, its committed snapshot read from the store on first use (and
        checked against what the commit topic holds)."""
        book = self.books.get(session_id)
        if book is None:
            abandoned = {
                cycle_id: DiscardReason(reason)
                for cycle_id, reason in self._store.abandoned(session_id).items()
            }
            snapshot = self._store.load(session_id)
            if self._check is not None:
                self._check(partition, session_id, snapshot)
            book = SessionBook(session_id, partition, snapshot, self.limits, abandoned)
            self.books[session_id] = book
        return book

    def open_books(self) -> list[SessionBook]:
        """The books with open cycles or cycles given up not yet handed to the store: what
        the per-iteration scans (pinned offsets, buffered bytes, timeouts) need to look at,
        not every session ever seen. Only routing opens a cycle, so the set is kept there."""
        found = []
        for session_id in list(self._open):
            book = self.books.get(session_id)
            if book is None or not (book.cycles or book.newly_abandoned):
                self._open.discard(session_id)
            else:
                found.append(book)
        return found

    def reload(self, session_ids: set[str]) -> None:
        """Read the committed snapshot of these sessions' books again (after a repair)."""
        names = sorted(s for s in session_ids if s in self.books)
        for session_id, snapshot in zip(names, self._store.load_many(names), strict=True):
            self.books[session_id].snapshot = snapshot

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget staged cycles and cached state of sessions on ``partitions``."""
        for session_id in [s for s, b in self.books.items() if b.partition in partitions]:
            del self.books[session_id]
            self.marked.discard(session_id)
        self.refusals.prune()

    def clear(self) -> None:
        self.books.clear()
        self._open.clear()
        self.marked.clear()
        self.refusals.clear()

    def route(self, message: Message, now: float) -> None:
        topic, partition, offset = located(message)
        self._stats.consumed[topic] += 1
        if self.refusals.early(message, partition):
            return
        try:
            event = self._codec.decode(
                message.value(),
                topic=topic,
                partition=partition,
                offset=offset,
                expected=self._expected[topic],
            )
        except DecodeError as exc:
            self._dead_letter(message, str(exc))
            return
        identity = identity_problem(event)
        if identity:
            self._dead_letter(message, identity)
            return
        book = self.book(event.session_id, partition)
        if book.partition != partition:
            self._dead_letter(
                message,
                f"session {event.session_id} belongs to partition {book.partition}, "
                f"not {partition}: the producer does not use the murmur2 partitioner",
            )
            return
        where = (topic, partition)
        record_ms = message.timestamp()[1]
        self._open.add(event.session_id)
        problem = event_problem(event)
        if isinstance(event, CycleMarker):
            if problem is not None:
                self._dead_letter(message, problem)
                return
            admission = book.add_marker(event, where, offset, now, record_ms)
            if admission is Admission.STAGED or book.in_doubt:
                self.marked.add(event.session_id)
            elif admission is Admission.DUPLICATE:
                self._stats.duplicates += 1
            else:
                self._stats.redelivered += 1
            return
        if problem is not None:
            self._dead_letter(message, problem)
        admission = book.add_event(
            event, where, offset, record_ms, (message.key(), message.value()), problem
        )
        if admission is Admission.REFUSED:
            self.refusals.refused(book, book.cycles[event.cycle_id], message, problem is None)
        elif admission is Admission.DUPLICATE:
            self._stats.duplicates += 1
        elif admission is Admission.DECIDED and problem is None:
            self._already_decided(book, event, message)

    def keep_abandoned(self) -> None:
        """Hand the cycles given up since the last call to the store (before the Kafka
        commit: an abort then reads their events again, and dead-letters them again)."""
        for book in self.open_books():
            if book.newly_abandoned:
                cycles = {cid: str(book.abandoned[cid]) for cid in book.newly_abandoned}
                self._store.abandon(book.session_id, cycles)
                book.newly_abandoned.clear()

    def buffered(self) -> dict[int, tuple[int, int, int]]:
        """Per partition: the bytes buffered in (all, unmarked) open cycles, and the most
        marked open cycles one of its sessions holds."""
        sizes: dict[int, tuple[int, int, int]] = {}
        for book in self.open_books():
            size, unmarked, marked = book.sizes()
            if size or marked:
                total, unmarked_total, most = sizes.get(book.partition, (0, 0, 0))
                sizes[book.partition] = (total + size, unmarked_total + unmarked, max(most, marked))
        return sizes

    def _dead_letter(self, message: Message, reason: str) -> None:
        topic, partition, offset = located(message)
        self._raw_dead_letter(topic, partition, offset, message.key(), message.value(), reason)

    def _known(self, book: SessionBook, cycle_id: int) -> KnownCycle:
        """What the store kept of a decided cycle's events, fetched once per cycle."""
        decided = self._store.decided_cycle(book.session_id, cycle_id)
        if decided is None:
            return KnownCycle({})
        read_through: dict[tuple[str, int], int] = {}
        if decided.outcome:
            try:
                outcome = self._codec.decode(
                    decided.outcome,
                    topic=self._commits,
                    partition=book.partition,
                    offset=None,
                    expected=CycleOutcome,
                )
            except DecodeError:
                log.warning("stored outcome of %s cycle %d unreadable", book.session_id, cycle_id)
            else:
                read_through = {(o.topic, o.partition): o.offset for o in outcome.read_through}
        return KnownCycle(read_through, decided.event_ids)

    def _already_decided(self, book: SessionBook, event: Fill | PnlEvent, message: Message) -> None:
        known = book.recent.get(event.cycle_id)
        if known is None:
            known = self._known(book, event.cycle_id)
            book.remember(event.cycle_id, known)
        topic, partition, offset = located(message)
        if known.includes((topic, partition), offset, event.event_id):
            self._stats.redelivered += 1
            return
        self._dead_letter(
            message, f"late event: cycle {event.cycle_id} of {book.session_id} is already decided"
        )
