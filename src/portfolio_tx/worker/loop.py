"""The worker's loop and the one place that commits (the commit protocol).

Per iteration, with no transaction open while the consumer polls (so rebalance callbacks
never cut one in half):

    1. consume a batch (rebalance callbacks run here: revoked sessions are dropped)
    2. begin the Kafka transaction
    3. route the records into session books; dead letters are produced in the transaction
    4. decide every ready cycle in cycle-id order: write Redis (atomic, fenced by cycle id),
       produce its CycleOutcome
    5. send the consumer offsets, never past the first event of a still-open cycle
    6. commit the Kafka transaction

A crash anywhere before 6 aborts the Kafka transaction (by timeout or by fencing when the
instance restarts with the same transactional.id); the records are read again from the
committed offsets, and the Redis fence turns the re-decision into re-publishing the stored
outcome. Abortable errors abort and rewind to the committed offsets; retriable ones retry;
fatal ones stop the worker (a new producer is needed, and the process supervisor makes one).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from redis.exceptions import RedisError

from portfolio_tx.codec import Codec
from portfolio_tx.config import Settings
from portfolio_tx.errors import PortfolioTxError, StateStoreError
from portfolio_tx.health import beat, heartbeat_key
from portfolio_tx.kafka.clients import kafka_error, located
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.kafka.marks import MarkFeed
from portfolio_tx.store import RedisStateStore
from portfolio_tx.store.port import StateStore
from portfolio_tx.worker.cycles import SessionBook
from portfolio_tx.worker.decide import Verdict
from portfolio_tx.worker.desk import CycleDesk
from portfolio_tx.worker.restore import restore_partition
from portfolio_tx.worker.stats import WorkerStats, record_consumer_lag

log = logging.getLogger("portfolio_tx.worker")

_TXN_TIMEOUT = 15.0


_RETRY_FOR_S = 120.0  # how long retriable Kafka errors are retried (a broker restart)
_STORE_BACKOFF_S = 1.0
_GAUGES_EVERY_S = 1.0
_STUCK_SLACK_S = 10.0


class _ProducerStuck(Exception):
    """A transactional producer call blocked past its deadline."""


class _StoreLost(Exception):
    """The store lost a partition's sessions while a transaction was open."""


class WorkerFatalError(PortfolioTxError):
    """The transactional producer hit a fatal error (e.g. fenced by a newer instance)."""


class Worker:
    """Stages cycles from Kafka, decides them through the store, publishes outcomes once.

    Connections are injected. ``run`` returns when ``stop()`` was called (signals call it),
    after ``max_cycles`` decisions, or after ``until_idle`` seconds with nothing consumed
    and nothing waiting to be decided.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        consumer: Consumer,
        producer_factory: Callable[[], Producer],
        marks: MarkFeed,
        commit_log: CommitLog,
        store: StateStore,
        codec: Codec,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stats = WorkerStats()
        self._consumer = consumer
        self._new_producer = producer_factory
        self._producer = producer_factory()
        self._marks = marks
        self._clock = clock
        self._topics = settings.topics
        self._store = store
        self._commit_log = commit_log
        self._desk = CycleDesk(
            settings, store, codec, marks.table, commit_log, self.stats, self._produce_dead_letter
        )
        self._intake = self._desk.intake
        self._published: dict[str, int] = {}  # this transaction's outcomes, per session
        self._next: dict[tuple[str, int], int] = {}
        self._assigned: set[int] = set()  # partition numbers of the co-partitioned topics
        self._idle_since = 0.0
        self._stopping = False
        self._kill_after = _int_env("PTX_TEST_KILL_AFTER_DECISIONS")
        self._heartbeat = (
            (store.client, heartbeat_key(store.namespace, settings.instance_id))
            if isinstance(store, RedisStateStore)
            else None
        )

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Ask the loop to stop after the current iteration (safe from a signal handler)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, *, max_cycles: int | None = None, until_idle: float | None = None) -> WorkerStats:
        self._blocking(lambda: self._producer.init_transactions(_TXN_TIMEOUT), "init")
        self._marks.start()
        self._consumer.subscribe(
            [self._topics.fills, self._topics.pnl, self._topics.cycles],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self._idle_since = self._clock()
        gauges_due = self._idle_since
        try:
            while not self._stopping:
                messages = self._consumer.consume(self.settings.batch_size, timeout=0.1)
                self._marks.drain()
                now = self._clock()
                if self._intake.marked:
                    self._observe_progress()
                if messages or self._marks.rejected or self._desk.due():
                    if messages:
                        self._idle_since = now
                    self._iteration(messages, now)
                if now >= gauges_due:
                    self._record_gauges()
                    gauges_due = now + _GAUGES_EVERY_S
                if max_cycles is not None and self.stats.decided >= max_cycles:
                    break
                if (
                    until_idle is not None
                    and self._assigned
                    and not self._intake.marked
                    and now - self._idle_since >= until_idle
                ):
                    break
        finally:
            self._close()
        return self.stats

    def _observe_progress(self) -> None:
        """Tell the desk the wall clock and which fills/pnl partitions are read to their end
        (position at the last stable offset librdkafka last saw; no broker round trip)."""
        self._desk.clock_ms = int(time.time() * 1000)
        inputs = (self._topics.fills, self._topics.pnl)
        assigned = [tp for tp in self._consumer.assignment() if tp.topic in inputs]
        caught_up = set()
        for tp in self._consumer.position(assigned) if assigned else []:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
            if high <= 0 or tp.offset >= high:
                caught_up.add((tp.topic, tp.partition))
        self._desk.caught_up = caught_up

    def _record_gauges(self) -> None:
        """Open cycles and consumer lag for the metrics endpoint (no broker round trip), and
        the heartbeat that ``portfolio-tx check`` reads."""
        self.stats.set_open_cycles(self._desk.open_cycles())
        record_consumer_lag(self.stats, self._consumer)
        if self._heartbeat is not None:
            try:
                beat(
                    self._heartbeat[0],
                    self._heartbeat[1],
                    ready=bool(self._assigned),
                    partitions=len(self._assigned),
                    decided=self.stats.decided,
                )
            except RedisError:
                self.stats.record_redis_error("heartbeat")

    def _close(self) -> None:
        log.info("worker stopping: %s", self.stats.summary())
        try:
            self._consumer.close()
        finally:
            self._marks.close()
            self._commit_log.close()
            self._producer.flush(10)

    # -- one transaction -------------------------------------------------------------------

    def _iteration(self, messages: list[Message], now: float) -> None:
        records = [m for m in messages if not self._consumer_error(m)]
        in_transaction = False
        try:
            if self._restore_lost_partitions():
                return
            self._producer.begin_transaction()
            in_transaction = True
            for message in records:
                topic, partition, offset = located(message)
                self._next[(topic, partition)] = offset + 1
                self._desk.route(message, now)
            decided = self._desk.decide_ready(now, self._publish, self._marks.catch_up)
            self._dead_letter_marks()
            if not records and not decided:
                self._blocking(lambda: self._producer.abort_transaction(_TXN_TIMEOUT), "abort")
                return
            offsets = self._offsets()
            if offsets:
                metadata = self._consumer.consumer_group_metadata()
                self._retry(
                    lambda: self._producer.send_offsets_to_transaction(
                        offsets, metadata, _TXN_TIMEOUT
                    ),
                    "send offsets",
                )
            if self._kill_after is not None and self.stats.decided >= self._kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: Redis written, Kafka not
            if self._store.partitions_ready(sorted(self._assigned)) != self._assigned:
                raise _StoreLost("the store lost data while this transaction was open")
            self._retry(lambda: self._producer.commit_transaction(_TXN_TIMEOUT), "commit")
            self.stats.transactions += 1
            self.stats.transaction_committed(self._clock())
        except KafkaException as exc:
            self._published.clear()
            self._recover(exc)
            return
        except _ProducerStuck as exc:
            self._published.clear()
            self._replace_producer(exc)
            return
        except (StateStoreError, _StoreLost) as exc:
            self._published.clear()
            self._store_trouble(exc, in_transaction)
            return
        self._after_commit()

    def _restore_lost_partitions(self) -> bool:
        """Restore the assigned partitions whose sessions the store lost; True if any was.

        Runs before anything is decided, so no cycle is decided on a state that is gone.
        """
        assigned = sorted(self._assigned)
        lost = [p for p in assigned if p not in self._store.partitions_ready(assigned)]
        if not lost:
            return False
        for partition in lost:
            self.stats.restored_sessions += restore_partition(
                self._commit_log, self._store, partition
            )
        self._rewind()
        return True

    def _store_trouble(self, exc: Exception, in_transaction: bool) -> None:
        """Redis failed or lost data mid-transaction: abort, read again, restore if needed."""
        log.warning("state store trouble, aborting and reading again: %s", exc)
        self.stats.record_redis_error(type(exc).__name__)
        if in_transaction:
            self.stats.aborted_transactions += 1
            self.stats.transaction_aborted()
            self._abort()
        self._rewind()
        if isinstance(exc, StateStoreError):
            time.sleep(_STORE_BACKOFF_S)

    def _after_commit(self) -> None:
        """Note in the store which outcomes the commit topic now holds (for crash recovery)."""
        published, self._published = self._published, {}
        try:
            self._store.mark_published(published)
        except StateStoreError as exc:
            # only a shortcut: a cycle not marked is looked up on the commit topic if met again
            log.warning("could not mark outcomes published (%s)", exc)
            self.stats.record_redis_error(type(exc).__name__)
            return
        for session_id, cycle_id in published.items():
            book = self._intake.books.get(session_id)
            if book is not None and cycle_id > book.published_through:
                book.snapshot = replace(book.snapshot, published_through=cycle_id)

    def _publish(self, book: SessionBook, verdict: Verdict) -> None:
        if verdict.record is not None:
            self._producer.produce(
                self._topics.commits,
                key=book.session_id.encode(),
                value=verdict.record,
                partition=book.partition,
            )
        self._published[book.session_id] = verdict.cycle_id

    def _offsets(self) -> list[TopicPartition]:
        pinned = self._desk.pinned()
        return [
            TopicPartition(topic, partition, min(offset, pinned.get((topic, partition), offset)))
            for (topic, partition), offset in self._next.items()
        ]

    def _blocking(self, operation: Callable[[], object], what: str) -> None:
        """Run a transactional producer call with a hard deadline.

        librdkafka's send_offsets_to_transaction can block past its own timeout when the
        coordinator went away (librdkafka issues 5456 and 5511: seen here on a broker
        restart). The call runs on a helper thread; if it has not returned in time the
        producer is given up (``_ProducerStuck``) and a new one fences it.
        """
        outcome: list[BaseException | None] = []

        def call() -> None:
            try:
                operation()
                outcome.append(None)
            except BaseException as exc:  # handed to the caller's thread below
                outcome.append(exc)

        helper = threading.Thread(target=call, name=f"txn-{what}", daemon=True)
        helper.start()
        helper.join(_TXN_TIMEOUT + _STUCK_SLACK_S)
        if not outcome:
            raise _ProducerStuck(f"{what} did not return within {_TXN_TIMEOUT + _STUCK_SLACK_S:g}s")
        if outcome[0] is not None:
            raise outcome[0]

    def _replace_producer(self, exc: Exception) -> None:
        """Give the stuck producer up, fence it with a new one (same transactional.id), and
        read again from the committed offsets."""
        log.error("transactional producer stuck (%s); replacing it", exc)
        self.stats.aborted_transactions += 1
        self.stats.transaction_aborted()
        self.stats.record_kafka_error("producer_stuck")
        while True:
            self._producer = self._new_producer()
            try:
                self._blocking(lambda: self._producer.init_transactions(_TXN_TIMEOUT), "init")
                break
            except (_ProducerStuck, KafkaException) as again:
                log.error("new producer could not start (%s); trying again", again)
                time.sleep(_STORE_BACKOFF_S)
        self._rewind()

    def _retry(self, operation: Callable[[], object], what: str) -> None:
        """Run a transactional call with a hard deadline, retrying what librdkafka calls
        retriable (a broker restart, a timeout) for up to ``_RETRY_FOR_S``; other errors
        propagate."""
        deadline = time.monotonic() + _RETRY_FOR_S
        attempt = 0
        while True:
            try:
                self._blocking(operation, what)
                return
            except KafkaException as exc:
                if not kafka_error(exc).retriable() or time.monotonic() > deadline:
                    raise
                self.stats.record_kafka_error(kafka_error(exc).name())
                log.warning("retrying after a retriable Kafka error: %s", exc)
                time.sleep(min(0.05 * 2**attempt, 2.0))
                attempt += 1

    def _recover(self, exc: KafkaException) -> None:
        error = kafka_error(exc)
        if error.fatal():
            raise WorkerFatalError(f"fatal Kafka transaction error: {error}") from exc
        if not error.txn_requires_abort():
            log.warning("Kafka transaction error, aborting: %s", error)
        self.stats.aborted_transactions += 1
        self.stats.transaction_aborted()
        self.stats.record_kafka_error(error.name())
        self._abort()
        self._rewind()

    def _abort(self) -> None:
        """Abort the open transaction; a producer that cannot is replaced (fencing it)."""
        try:
            self._blocking(lambda: self._producer.abort_transaction(_TXN_TIMEOUT), "abort")
        except _ProducerStuck as exc:
            self._replace_producer(exc)
        except KafkaException as exc:
            if kafka_error(exc).fatal():
                raise WorkerFatalError(f"cannot abort: {exc}") from exc
            log.warning("abort failed (%s); reading again anyway", exc)

    def _rewind(self) -> None:
        """Drop everything staged and read again from the committed offsets."""
        self._intake.clear()
        self._desk.forget()
        self._next.clear()
        assignment = self._consumer.assignment()
        if not assignment:
            return
        for tp in self._retrying(lambda: self._consumer.committed(assignment, _TXN_TIMEOUT)):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

    def _retrying(self, read: Callable[[], list[TopicPartition]]) -> list[TopicPartition]:
        result: list[TopicPartition] = []

        def call() -> None:
            result[:] = read()

        self._retry(call, "read committed offsets")
        return result

    # -- rebalances ------------------------------------------------------------------------

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted((p.topic, p.partition) for p in partitions))
        numbers = {p.partition for p in partitions}
        self._intake.drop_partitions(numbers)
        self._assigned |= numbers
        self._idle_since = self._clock()  # idleness counts from a settled assignment

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", sorted((p.topic, p.partition) for p in partitions))
        numbers = {p.partition for p in partitions}
        self._intake.drop_partitions(numbers)
        self._assigned -= numbers
        for key in [k for k in self._next if k[1] in numbers]:
            del self._next[key]

    # -- dead letters ----------------------------------------------------------------------

    def _dead_letter_marks(self) -> None:
        rejected, self._marks.rejected = self._marks.rejected, []
        for item in rejected:
            topic, partition, offset = located(item.message)
            self._produce_dead_letter(
                topic, partition, offset, item.message.key(), item.message.value(), item.reason
            )

    def _produce_dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> None:
        log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, reason)
        self.stats.dead_lettered += 1
        self._producer.produce(
            self._topics.deadletter,
            key=key,
            value=value,
            headers=[
                ("source.topic", topic.encode()),
                ("source.partition", str(partition).encode()),
                ("source.offset", str(offset).encode()),
                ("error", reason.encode()),
            ],
        )

    def _consumer_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise WorkerFatalError(f"fatal consumer error: {error}")
        self.stats.record_kafka_error(error.name())
        log.warning("consumer error: %s", error)
        return True


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name)
    return int(raw) if raw else None
