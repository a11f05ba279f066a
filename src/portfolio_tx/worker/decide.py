"""Deciding one ready cycle through PortfolioTransaction; the worker does no accounting.

The cycle is staged event by event on the session's committed state, valued with the mark
table as of the marker's timestamp, and decided; the store writes it atomically, fenced by
cycle id. A cycle decided before is not decided again. If its outcome is not known to be on
the commit topic (the worker died between the Redis write and the Kafka commit, or the
transaction aborted), the commit topic is asked; when the outcome is not there, the stored
record is returned to be produced again, so the topic ends up with exactly one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from portfolio_tx.config import Settings
from portfolio_tx.errors import ConcurrentModificationError, ValidationError
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.ledger import Decision, DiscardReason
from portfolio_tx.store.port import DecisionWriter, SessionSnapshot, StateStore
from portfolio_tx.transaction import PortfolioTransaction
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import Fill, PnlEvent
from portfolio_tx.wire.outcomes import CycleOutcome, inline_event_ids, outcome_values
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.cycles import OpenCycle
from portfolio_tx.worker.heads import Head, StateBehind, is_behind
from portfolio_tx.worker.intake import SnapshotCheck
from portfolio_tx.worker.mark_table import MarkTable

log = logging.getLogger("portfolio_tx.worker")

_CLOCK_SLACK_MS = 10_000  # the broker's timestamps may run behind the worker's clock
_STAGED = ("symbol", "side", "quantity", "price", "fee")  # a fill's terms, as stage_fill takes


class BatchWriter(DecisionWriter, Protocol):
    """Takes a transaction's writes (``worker.checkpoint``) and knows which are queued."""

    def queued(self, session_id: str, cycle_id: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decided cycle: the outcome record to publish and whether it was decided before."""

    session_id: str
    cycle_id: int
    record: bytes | None  # to produce now; None when there is nothing (more) to publish
    decision: Decision | None  # None when it had been decided before (fenced)
    snapshot: SessionSnapshot  # the session as the store has it after this cycle


class Decider:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        codec: Codec,
        marks: MarkTable,
        commit_log: CommitLog | None,
        check: SnapshotCheck | None = None,
        writer: BatchWriter | None = None,
    ) -> None:
        self._settings = settings
        self._check = check
        self._writer = writer
        self._commit_log = commit_log
        self._store = store
        self._codec = codec
        self._marks = marks
        self._max_age_ms = int(settings.max_mark_age_s * 1000)

    def decide(self, book: SessionBook, cycle: OpenCycle, reason: DiscardReason | None) -> Verdict:
        """Decide ``cycle``; retried once on a lost optimistic-lock race (state re-read).

        A race only ever moves a session forward: a re-read state older than the one this
        worker had (a Redis that went back in time) raises ``StateBehind`` instead, and the
        loop repairs it from the commit topic before anything is staged on it.
        """
        try:
            return self._decide(book, cycle, reason, book.snapshot)
        except ConcurrentModificationError:
            log.warning(
                "session %s changed under us, re-reading it session=%s cycle=%s",
                book.session_id,
                book.session_id,
                cycle.cycle_id,
            )
            snapshot = self._load(book)
            known = Head(book.last_decided, book.snapshot.state.version)
            if is_behind(snapshot, known):
                raise StateBehind(book.partition, {book.session_id: (snapshot, known)}) from None
            return self._decide(book, cycle, reason, snapshot)

    def _decide(
        self,
        book: SessionBook,
        cycle: OpenCycle,
        reason: DiscardReason | None,
        snapshot: SessionSnapshot,
    ) -> Verdict:
        marker = cycle.marker
        assert marker is not None
        session_id = book.session_id
        if snapshot.last_decided is not None and cycle.cycle_id <= snapshot.last_decided:
            return self.already_decided(book, cycle.cycle_id)

        event_ids = cycle.event_ids()

        def record(decision: Decision) -> bytes:
            outcome = outcome_values(
                session_id,
                decision,
                marker.ts,
                worker_id=self._settings.instance_id,
                event_ids=tuple(event_ids),
                read_through=cycle.read_through,
            )
            return self._codec.encode_values(CycleOutcome, outcome, self._settings.topics.commits)

        tx = PortfolioTransaction(
            self._store,
            session_id,
            cycle_id=cycle.cycle_id,
            cost_basis=self._settings.cost_basis,
            validation_epsilon=self._settings.epsilon,
            record_outcome=record,
            snapshot=snapshot,
            # a large cycle's ids are not kept: its outcome's read_through tells re-reads apart
            event_ids=event_ids if inline_event_ids(event_ids) else (),
            writer=self._writer,
        )
        if reason is None:
            try:
                fields_of = self._codec.fields_of
                tx.stage_fills(fields_of(list(cycle.events.values(fills=True)), Fill, _STAGED))
                for kind, amount in fields_of(
                    list(cycle.events.values(fills=False)), PnlEvent, ("kind", "amount")
                ):
                    tx.stage_pnl(kind, amount)
            except ValidationError:
                reason = DiscardReason.INVALID_EVENT
        if reason is None:
            lookup = self._marks.resolve(tx.held_symbols(), marker.ts, self._max_age_ms)
            if lookup.reason is None:
                tx.commit(lookup.marks)
            else:
                log.info("%s session=%s cycle=%s", lookup.detail, session_id, cycle.cycle_id)
                tx.discard(lookup.reason)
        else:
            tx.discard(reason)
        applied = tx.applied
        assert applied is not None
        if applied.fenced:
            return self.already_decided(book, cycle.cycle_id)
        return Verdict(
            session_id,
            cycle.cycle_id,
            applied.outcome,
            applied.decision,
            SessionSnapshot(applied.decision.state, cycle.cycle_id, snapshot.published_through),
        )

    def _load(self, book: SessionBook) -> SessionSnapshot:
        """The session as the store has it now, checked against the commit topic."""
        snapshot = self._store.load(book.session_id)
        if self._check is not None:
            self._check(book.partition, book.session_id, snapshot)
        return snapshot

    def already_decided(self, book: SessionBook, cycle_id: int) -> Verdict:
        """A cycle already decided in the store: publish its stored outcome unless the
        commit topic already holds it."""
        session_id = book.session_id
        if self._writer is not None and self._writer.queued(session_id, cycle_id):
            # decided in the open transaction: its outcome goes out with it
            return Verdict(session_id, cycle_id, None, None, book.snapshot)
        stored = self._store.decided_cycle(session_id, cycle_id)
        snapshot = self._load(book)
        if stored is None or stored.outcome is None:
            log.warning(
                "cycle decided long ago, its outcome record aged out; not re-published "
                "session=%s cycle=%s",
                session_id,
                cycle_id,
            )
            return Verdict(session_id, cycle_id, None, None, snapshot)
        if stored.published or (
            self._commit_log is not None
            and self._commit_log.contains(
                book.partition, session_id, cycle_id, stored.decided_at_ms - _CLOCK_SLACK_MS
            )
        ):
            return Verdict(session_id, cycle_id, None, None, snapshot)
        log.info(
            "re-publishing the outcome of a cycle decided before the last crash or abort "
            "session=%s cycle=%s",
            session_id,
            cycle_id,
        )
        return Verdict(session_id, cycle_id, stored.outcome, None, snapshot)
