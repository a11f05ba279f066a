"""Intake: consumed input records into session books; what cannot be used is dead-lettered.

For every record: decode (undecodable → dead letter), check (an invalid event of a known
cycle is dead-lettered *and* sinks its cycle with INVALID_EVENT; one without a usable
session or cycle is only dead-lettered), then stage it in its session's book. An event for
an already-decided cycle is a redelivery when that cycle's decision included its event id
(skipped quietly), otherwise it is genuinely late (dead-lettered).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Message

from portfolio_tx.codec import Codec
from portfolio_tx.errors import DecodeError
from portfolio_tx.events import MAX_TEXT_LENGTH, CycleMarker, Fill, PnlEvent, event_problem
from portfolio_tx.kafka.admin import TopicNames
from portfolio_tx.kafka.clients import located
from portfolio_tx.store.port import SessionSnapshot, StateStore
from portfolio_tx.worker.cycles import Admission, SessionBook
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")

RawDeadLetter = Callable[[str, int, int, bytes | None, bytes | None, str], None]
"""(source topic, partition, offset, key, value, reason) -> None"""
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
        check: SnapshotCheck | None = None,
    ) -> None:
        self._codec = codec
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
        self.marked: set[str] = set()  # sessions with a marked cycle waiting to be decided

    def book(self, session_id: str, partition: int) -> SessionBook:
        """The session's book, its committed snapshot read from the store on first use (and
        checked against what the commit topic holds)."""
        book = self.books.get(session_id)
        if book is None:
            snapshot = self._store.load(session_id)
            if self._check is not None:
                self._check(partition, session_id, snapshot)
            book = SessionBook(session_id, partition, snapshot)
            self.books[session_id] = book
        return book

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

    def clear(self) -> None:
        self.books.clear()
        self.marked.clear()

    def route(self, message: Message, now: float) -> None:
        topic, partition, offset = located(message)
        self._stats.consumed[topic] += 1
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
        problem = event_problem(event)
        if problem is not None:
            self._dead_letter(message, problem)
            if isinstance(event, CycleMarker):
                return
            admission = book.add_invalid(
                event.cycle_id, event.event_id, isinstance(event, Fill), problem, where, offset
            )
        elif isinstance(event, (Fill, PnlEvent)):
            admission = book.add_event(event, where, offset)
        else:
            admission = book.add_marker(event, where, offset, now, message.timestamp()[1])
            if admission is Admission.STAGED or book.in_doubt:
                self.marked.add(event.session_id)
        if admission is Admission.STAGED:
            book.cycles[event.cycle_id].sources.append(
                (where, offset, message.key(), message.value())
            )
        elif admission is Admission.DUPLICATE:
            self._stats.duplicates += 1
        elif problem is None:
            self._already_decided(book, event, message)

    def _dead_letter(self, message: Message, reason: str) -> None:
        topic, partition, offset = located(message)
        self._raw_dead_letter(topic, partition, offset, message.key(), message.value(), reason)

    def _already_decided(self, book: SessionBook, event: InputEvent, message: Message) -> None:
        if isinstance(event, CycleMarker):
            self._stats.redelivered += 1
            return
        known = book.recent.get(event.cycle_id)
        if known is None:
            decided = self._store.decided(book.session_id, event.cycle_id)
            known = decided.event_ids if decided is not None else frozenset()
        if event.event_id in known:
            self._stats.redelivered += 1
            return
        self._dead_letter(
            message, f"late event: cycle {event.cycle_id} of {book.session_id} is already decided"
        )
