"""The commit protocol: the one place that writes decisions to Redis and commits Kafka.

Per iteration the loop opens a Kafka transaction, routes the batch and decides every ready
cycle; each decision's store write and outcome record are handed here, not performed. Then
``commit`` runs the protocol, in this order:

    1. every decision of the batch to Redis in ONE round trip (``StateStore.apply_many``:
       a pipeline of the fenced, version-locked script, one call per decision), with the
       check that no partition's sessions were lost after the writes
    2. produce the outcome records, in decision order
    3. send the consumer offsets (never past the first event of a still-open cycle)
    4. commit the Kafka transaction
    5. advance the published heads and note in Redis what the commit topic now holds

A decision whose write does not come back as planned (its cycle decided before, another
writer's version, a lost state) is never published: ``BatchRejected`` makes the loop abort
and read again, and the next attempt writes cycle by cycle (``batched`` False), where a
lost race is retried on the re-read state as the library does. The first committed
transaction turns batching back on.

A crash anywhere before 4 aborts the Kafka transaction (by timeout, or by fencing when the
instance restarts with the same transactional.id); the records are read again from the
committed offsets, and the Redis fence turns the re-decision into re-publishing the stored
outcome, so the commit topic ends with exactly one outcome per cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from portfolio_tx.errors import StateStoreError
from portfolio_tx.kafka.clients import kafka_error
from portfolio_tx.kafka.transactional import TransactionalProducer
from portfolio_tx.ledger import Decision
from portfolio_tx.store.port import Applied, StateStore, WriteQueue
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.decide import Verdict
from portfolio_tx.worker.heads import Head, PublishedHeads, head_header
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")


class StoreLost(StateStoreError):
    """The store lost a partition's sessions while a transaction was open."""


class BatchRejected(StateStoreError):
    """A batched write did not come back as planned; nothing of the batch is published."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    session_id: str
    partition: int
    cycle_id: int
    version: int
    record: bytes | None
    fresh: bool  # decided in this transaction (its record's version is ``version``)


class Checkpoint:
    """Collects one transaction's decisions and outcomes, then commits them in order."""

    def __init__(
        self,
        producer: TransactionalProducer,
        store: StateStore,
        commits_topic: str,
        stats: WorkerStats,
        heads: PublishedHeads,
        books: Callable[[str], SessionBook | None],
        *,
        before_kafka_commit: Callable[[WorkerStats], None] | None = None,
    ) -> None:
        self._producer = producer
        self._store = store
        self._topic = commits_topic
        self._stats = stats
        self._heads = heads
        self._books = books
        self._before_kafka_commit = before_kafka_commit  # a test's hook: Redis written
        self.batched = True
        self._writes = WriteQueue()
        self._queued: set[tuple[str, int]] = set()
        self._outcomes: list[_Outcome] = []
        self._failed: tuple[tuple[str, int], str] | None = None  # this transaction's
        self._failures: dict[tuple[str, int], int] = {}  # failed attempts of one outcome

    # -- during the batch: the Decider's transactions write through here -------------------

    def apply(
        self,
        session_id: str,
        decision: Decision,
        *,
        outcome: bytes | None = None,
        event_ids: Sequence[str] = (),
        decided_at_ms: int | None = None,
    ) -> Applied:
        """Batched: queue the write and answer as the store will if nothing interferes
        (checked in ``commit``). Not batched: write now."""
        if not self.batched:
            return self._store.apply(
                session_id,
                decision,
                outcome=outcome,
                event_ids=event_ids,
                decided_at_ms=decided_at_ms,
            )
        if decision.cycle_id is not None:
            self._queued.add((session_id, decision.cycle_id))
        return self._writes.apply(
            session_id, decision, outcome=outcome, event_ids=event_ids, decided_at_ms=decided_at_ms
        )

    def queued(self, session_id: str, cycle_id: int) -> bool:
        """Was this cycle decided in the open transaction (its write not yet sent)?"""
        return (session_id, cycle_id) in self._queued

    def publish(self, book: SessionBook, verdict: Verdict) -> None:
        """Produce ``verdict``'s outcome record (if any) once the writes are in."""
        self._outcomes.append(
            _Outcome(
                book.session_id,
                book.partition,
                verdict.cycle_id,
                verdict.snapshot.state.version,
                verdict.record,
                verdict.decision is not None,
            )
        )

    # -- the end of the batch --------------------------------------------------------------

    def commit(
        self, offsets: list[TopicPartition], group_metadata: object, assigned: set[int]
    ) -> None:
        """Steps 1 to 5 of the module docstring. Raises BatchRejected, StoreLost,
        StateStoreError, KafkaException or ProducerStuckError; the caller aborts and rewinds."""
        writes = self._writes.take()
        self._queued = set()
        results, ready = self._store.apply_many(writes, ready=sorted(assigned))
        self._stats.lap("redis")
        for request, result in zip(writes, results, strict=True):
            if isinstance(result, Exception) or result.fenced:
                self.batched = False
                raise BatchRejected(
                    f"the batched write of session {request.session_id} cycle "
                    f"{request.decision.cycle_id} did not apply as staged ({result}); "
                    "deciding cycle by cycle"
                ) from (result if isinstance(result, Exception) else None)
        for outcome in self._outcomes:
            if outcome.record is not None:
                self._produce(outcome)
        self._stats.lap("produce")
        if offsets:
            self._producer.send_offsets(offsets, group_metadata)
        self._stats.lap("offsets")
        if self._before_kafka_commit is not None:
            self._before_kafka_commit(self._stats)  # Redis written, Kafka not committed
        if ready != assigned:
            raise StoreLost("the store lost data while this transaction was open")
        self._producer.commit()
        self._failures.clear()
        self.batched = True
        self._after_commit()
        self._stats.lap("commit")

    def forget(self) -> None:
        """The transaction aborted: drop what it held; say if an outcome could not be
        produced (every retry would abort the same way)."""
        self._writes.take()
        self._queued = set()
        self._outcomes = []
        self._diagnose()

    def _produce(self, outcome: _Outcome) -> None:
        which = (outcome.session_id, outcome.cycle_id)

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                self._failed = (which, error.name())

        try:
            self._producer.produce(
                self._topic,
                key=outcome.session_id.encode(),
                value=outcome.record,
                partition=outcome.partition,
                # a re-published stored record goes without: its version is in its body
                headers=[head_header(Head(outcome.cycle_id, outcome.version))]
                if outcome.fresh
                else None,
                on_delivery=delivered,
            )
        except KafkaException as exc:
            self._failed = (which, kafka_error(exc).name())
            raise

    def _after_commit(self) -> None:
        """Advance the heads, and note in the store which outcomes the commit topic now
        holds (for crash recovery)."""
        outcomes, self._outcomes = self._outcomes, []
        published: dict[str, int] = {}
        for outcome in outcomes:
            head = Head(outcome.cycle_id, outcome.version)
            self._heads.advance(outcome.partition, outcome.session_id, head)
            published[outcome.session_id] = outcome.cycle_id
        try:
            self._store.mark_published(published)
        except StateStoreError as exc:
            # only a shortcut: a cycle not marked is looked up on the commit topic if met again
            log.warning("could not mark outcomes published (%s)", exc)
            self._stats.record_redis_error(type(exc).__name__)
            return
        for session_id, cycle_id in published.items():
            book = self._books(session_id)
            if book is not None and cycle_id > book.published_through:
                book.snapshot = replace(book.snapshot, published_through=cycle_id)

    def _diagnose(self) -> None:
        failed, self._failed = self._failed, None
        if failed is None:
            return
        which, error = failed
        self._stats.outcome_produce_errors[error] += 1
        attempts = self._failures.get(which, 0) + 1
        self._failures = {which: attempts}
        if attempts == 2 or attempts % 100 == 0:
            log.error(
                "the outcome of session %s cycle %d cannot be produced (%s, %d attempts in a "
                "row): every transaction holding it aborts and its partition does not move on "
                "- see README 'An outcome that cannot be produced' session=%s cycle=%s",
                which[0],
                which[1],
                error,
                attempts,
                which[0],
                which[1],
                extra={"session_id": which[0], "cycle_id": which[1]},
            )
