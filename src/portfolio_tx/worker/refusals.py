"""Refusals: the cycles a session has been refused, and what is dead-lettered for them.

A cycle past its limit (TOO_LARGE) or given up at the open-cycle timeout (INCOMPLETE) is
refused: what it buffered is drained, a batch per transaction (``drain``; it stays pinned
until then), and every later event of it is dead-lettered with the cycle's reason. Those
events are told from their first fields alone (``wire.peek``, ``early``): a flood is read at
the rate of that path, and a full decode cost most of the time of each record.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Message

from portfolio_tx.kafka.clients import located
from portfolio_tx.ledger import DiscardReason
from portfolio_tx.wire.events import Fill, PnlEvent
from portfolio_tx.wire.peek import peekable_headers, session_and_cycle
from portfolio_tx.wire.records import record_types
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.cycles import CycleLimits, OpenCycle
from portfolio_tx.worker.stats import WorkerStats

RawDeadLetter = Callable[[str, int, int, bytes | None, bytes | None, str], None]
"""(source topic, partition, offset, key, value, reason) -> None"""


class Refusals:
    """The refused cycles of the books in ``books`` (shared with ``worker.intake``)."""

    def __init__(
        self,
        books: dict[str, SessionBook],
        limits: CycleLimits,
        dead_letter: RawDeadLetter,
        stats: WorkerStats,
    ) -> None:
        self._books = books
        self._limits = limits
        self._raw_dead_letter = dead_letter
        self._stats = stats
        self.draining: dict[tuple[str, int], str] = {}  # refused cycles -> dead-letter reason
        self._refusing: set[tuple[str, int]] = set()  # refused cycles, for ``early``
        self._peekable = peekable_headers(
            rt for rt in record_types() if rt.cls in (Fill, PnlEvent)
        )

    def give_up(self, book: SessionBook, cycle: OpenCycle) -> None:
        """The refused ``cycle``: drain what it holds, dead-letter what comes for it."""
        assert cycle.refused is not None
        cycle.refusal = cycle.refusal or self._refusal(book, cycle, cycle.refused)
        if cycle.draining is not None:
            self.draining[(book.session_id, cycle.cycle_id)] = cycle.refusal
        self._refusing.add((book.session_id, cycle.cycle_id))

    def refused(self, book: SessionBook, cycle: OpenCycle, message: Message, send: bool) -> None:
        """An event the book refused (``Admission.REFUSED``); ``send``: dead-letter it (an
        invalid one was, with its own reason)."""
        reason = cycle.refused
        assert reason is not None
        self._stats.refused += 1
        if len(cycle.events):
            cycle.refuse(reason)
            book.changed()
        self.give_up(book, cycle)
        if send:
            self._dead_letter(message, cycle.refusal)

    def early(self, message: Message, partition: int) -> bool:
        """Dead-letter a fill or P&L report of a refused cycle from its first fields alone:
        what routing would do with it after a full decode, whatever else it holds. False
        when it is not one (or nothing is refused: then it costs nothing)."""
        if not self._refusing:
            return False
        peeked = session_and_cycle(message.value(), self._peekable)
        if peeked is None or peeked not in self._refusing:
            return False
        cycle = self._refused_cycle(*peeked)
        if cycle is None or self._books[peeked[0]].partition != partition:
            return False
        self._stats.refused += 1
        self._dead_letter(message, cycle.refusal)
        return True

    def drain(self, budget: int | None) -> int:
        """Dead-letter up to ``budget`` (None: all) records of refused cycles; how many."""
        sent = 0
        for key, detail in list(self.draining.items()):
            book = self._books.get(key[0])
            cycle = None if book is None else book.cycles.get(key[1])
            if book is None or cycle is None or cycle.draining is None:
                del self.draining[key]
                continue
            records = cycle.drain(None if budget is None else budget - sent)
            book.changed()  # its first offsets moved up
            for record in records:
                if record.valid:
                    self._stats.refused += 1
                    self._raw_dead_letter(
                        *record.where, record.offset, record.key, record.value, detail
                    )
            sent += len(records)
            if cycle.draining is None:
                del self.draining[key]
            if budget is not None and sent >= budget:
                break
        return sent

    def prune(self) -> None:
        """Forget the cycles no longer refused and open (decided, dropped, books gone)."""
        for key in [k for k in self._refusing if self._refused_cycle(*k) is None]:
            self._refusing.discard(key)
        for key in [k for k in self.draining if k[0] not in self._books]:
            del self.draining[key]

    def clear(self) -> None:
        self.draining.clear()
        self._refusing.clear()

    def _refused_cycle(self, session_id: str, cycle_id: int) -> OpenCycle | None:
        """The open cycle, if it is refused and nothing of it is left to refuse."""
        book = self._books.get(session_id)
        cycle = None if book is None else book.cycles.get(cycle_id)
        if cycle is None or cycle.refused is None or not cycle.refusal or len(cycle.events):
            return None
        return cycle

    def _refusal(self, book: SessionBook, cycle: OpenCycle, reason: DiscardReason) -> str:
        """The dead-letter reason of a refused cycle's events; kept on the cycle, as a flood
        of them is read at several µs a record and building it cost one of those."""
        if reason is DiscardReason.TOO_LARGE:
            return (
                f"TOO_LARGE: cycle {cycle.cycle_id} of {book.session_id} is past its limit "
                f"({self._limits.max_events} events per cycle, "
                f"{self._limits.max_open} unmarked open cycles per session)"
            )
        return (
            f"{reason}: cycle {cycle.cycle_id} of {book.session_id} had no marker within the "
            "open-cycle timeout: orphan"
        )

    def _dead_letter(self, message: Message, reason: str) -> None:
        topic, partition, offset = located(message)
        self._raw_dead_letter(topic, partition, offset, message.key(), message.value(), reason)
