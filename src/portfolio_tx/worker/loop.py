"""The worker's loop: poll, route, decide, and hand the batch to the commit protocol.

Per iteration, with no transaction open while the consumer polls (so rebalance callbacks
never cut one in half): consume a batch (rebalance callbacks run here: revoked sessions are
dropped), repair what the store lost, begin the Kafka transaction, route the records into
session books (dead letters are produced in the transaction), decide every ready cycle in
cycle-id order, then ``Checkpoint.commit`` (``worker.checkpoint``: the order of the Redis
writes, the outcome records, the offsets and the Kafka commit lives there, and nothing else
writes a decision or commits).

Abortable errors abort and rewind to the committed offsets; retriable ones retry; fatal
ones stop the worker (a new producer is needed, and the process supervisor makes one); a
producer stuck past its deadline is replaced (``kafka.transactional``).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from portfolio_tx.config import Settings
from portfolio_tx.errors import (
    ProducerStuckError,
    StateStoreError,
    WorkerFatalError,
)
from portfolio_tx.kafka.clients import kafka_error, located
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.kafka.mark_feed import MarkFeed
from portfolio_tx.kafka.transactional import TransactionalProducer
from portfolio_tx.store import RedisStateStore
from portfolio_tx.store.port import StateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.worker.backpressure import Backpressure
from portfolio_tx.worker.checkpoint import BatchRejected, Checkpoint, StoreLost
from portfolio_tx.worker.deadletters import DeadLetters
from portfolio_tx.worker.desk import CycleDesk
from portfolio_tx.worker.heads import PublishedHeads, StateBehind
from portfolio_tx.worker.health import heartbeat_key
from portfolio_tx.worker.mark_table import MarkTable
from portfolio_tx.worker.offsets import ConsumedOffsets
from portfolio_tx.worker.repair import StoreRepair
from portfolio_tx.worker.stats import WorkerStats
from portfolio_tx.worker.watch import consumer_error, read_to_end, record_gauges, wall_ms

log = logging.getLogger("portfolio_tx.worker")

_TXN_TIMEOUT = 15.0
_STORE_BACKOFF_S = 1.0
_GAUGES_EVERY_S = 1.0
_SWEEP_EVERY_S = 1.0  # how often the clock is read for the open-cycle timeout


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
        marks: MarkFeed[MarkTable],
        commit_log: CommitLog,
        store: StateStore,
        codec: Codec,
        clock: Callable[[], float] = time.monotonic,
        before_kafka_commit: Callable[[WorkerStats], None] | None = None,
    ) -> None:
        """``before_kafka_commit`` is a test's hook, called after each batch's Redis write
        and before its Kafka commit (a fault test kills the process there)."""
        self.settings = settings
        self.stats = WorkerStats()
        self._consumer = consumer
        self._producer = TransactionalProducer(
            producer_factory, timeout_s=_TXN_TIMEOUT, on_error=self.stats.record_kafka_error
        )
        self._marks = marks
        self._clock = clock
        self._topics = settings.topics
        self._store = store
        self._commit_log = commit_log
        self._dead_letters = DeadLetters(self._producer, settings.topics.deadletter, self.stats)
        self._heads = PublishedHeads()
        self._checkpoint = Checkpoint(
            self._producer, store, settings.topics.commits, self.stats, self._heads,
            lambda session_id: self._intake.books.get(session_id),
            before_kafka_commit=before_kafka_commit,
        )  # fmt: skip
        self._desk = CycleDesk(
            settings, store, codec, marks.table, commit_log, self.stats,
            self._dead_letters.send, self._heads.check, self._checkpoint,
        )  # fmt: skip
        self._intake = self._desk.intake
        self._repair = StoreRepair(store, commit_log, self._heads, self._intake, self.stats)
        self._pressure = Backpressure(
            consumer, self._topics, int(settings.max_buffered_mb * 2**20), self.stats,
            self._intake.open_books, marked_limit=settings.max_open_cycles,
        )
        self._read = ConsumedOffsets(consumer, self._producer, _TXN_TIMEOUT)
        self._assigned: set[int] = set()  # partition numbers of the co-partitioned topics
        self._idle_since = 0.0
        self._stopping = False
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
        self._producer.start()
        self._marks.start()
        self._consumer.subscribe(
            [self._topics.fills, self._topics.pnl, self._topics.cycles],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self._idle_since = self._clock()
        gauges_due = sweep_due = self._idle_since
        inputs = (self._topics.fills, self._topics.pnl, self._topics.cycles)
        try:
            while not self._stopping:
                messages = self._read.next_batch(self.settings.batch_size, self._pressure.held)
                self._marks.drain()
                now = self._clock()
                if self._intake.marked or now >= sweep_due:
                    self._desk.clock_ms = wall_ms()
                    self._desk.caught_up = read_to_end(self._consumer, inputs)
                    sweep_due = now + _SWEEP_EVERY_S
                if messages or self._marks.rejected or self._desk.due():
                    if messages:
                        self._idle_since = now
                    self._iteration(messages, now)
                    self._pressure.apply(self._intake.buffered())
                if now >= gauges_due:
                    self._repair.watch_identity()
                    cycles, held = self._desk.open_cycles(), len(self._assigned)
                    record_gauges(self.stats, self._consumer, cycles, self._heartbeat, held)
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
        records = [m for m in messages if not consumer_error(m, self.stats)]
        in_transaction = False
        try:
            self.stats.lap()
            self._repair.before_deciding(self._assigned)
            self._producer.begin()
            in_transaction = True
            for message in records:
                topic, partition, offset = located(message)
                self._read.read(topic, partition, offset)
                self._desk.route(message, now)
            self.stats.lap("route")
            decided = self._desk.decide_ready(
                now, self._checkpoint.publish, self._marks.catch_up
            )
            self.stats.lap("decide")
            rejected, self._marks.rejected = self._marks.rejected, []
            for item in rejected:
                self._dead_letters.message(item.message, item.reason)
            if not records and not decided:
                self._checkpoint.forget()
                self._producer.abort()
                return
            offsets = self._read.to_send(self._desk.pinned())
            group = self._consumer.consumer_group_metadata()
            self._checkpoint.commit(offsets, group, self._assigned)
            self.stats.transactions += 1
            self.stats.transaction_committed(self._clock())
        except KafkaException as exc:
            self._checkpoint.forget()
            self._recover(exc)
        except ProducerStuckError as exc:
            log.error("transactional producer stuck (%s); replacing it", exc)
            self._checkpoint.forget()
            self._producer.replace()
            self._aborted(abort=False)
        except BatchRejected as exc:
            log.warning("%s", exc)
            self._checkpoint.forget()
            self._aborted()
        except StateBehind as exc:  # a state read mid-transaction older than the commit topic
            self._checkpoint.forget()
            log.warning("state store went back in time, aborting and repairing: %s", exc)
            self._repair.distrust()
            self._aborted(abort=in_transaction, count=in_transaction)
        except StateStoreError as exc:  # Redis failed, or lost data mid-transaction
            self._checkpoint.forget()
            log.warning("state store trouble, aborting and reading again: %s", exc)
            self.stats.record_redis_error(type(exc).__name__)
            self._repair.distrust()
            self._aborted(abort=in_transaction, count=in_transaction)
            if not isinstance(exc, StoreLost):
                time.sleep(_STORE_BACKOFF_S)  # down or failing over: give it a moment

    def _recover(self, exc: KafkaException) -> None:
        error = kafka_error(exc)
        if error.fatal():
            raise WorkerFatalError(f"fatal Kafka transaction error: {error}") from exc
        if not error.txn_requires_abort():
            log.warning("Kafka transaction error, aborting: %s", error)
        self.stats.record_kafka_error(error.name())
        self._aborted()

    def _aborted(self, *, abort: bool = True, count: bool = True) -> None:
        """The transaction ends without its commit: count it, abort it, read again."""
        if count:
            self.stats.aborted_transactions += 1
            self.stats.transaction_aborted()
        if abort:
            self._abort()
        self._rewind()

    def _abort(self) -> None:
        try:
            self._producer.abort()
        except KafkaException as exc:
            if kafka_error(exc).fatal():
                raise WorkerFatalError(f"cannot abort: {exc}") from exc
            log.warning("abort failed (%s); reading again anyway", exc)

    def _rewind(self) -> None:
        """Drop everything staged and read again from the committed offsets."""
        self._intake.clear()
        self._desk.forget()
        self._read.rewind()

    # -- rebalances ------------------------------------------------------------------------

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted((p.topic, p.partition) for p in partitions))
        numbers = self._forget(partitions)  # read again: another worker may have decided
        self._assigned |= numbers
        self._idle_since = self._clock()  # idleness counts from a settled assignment

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", sorted((p.topic, p.partition) for p in partitions))
        numbers = self._forget(partitions)
        self._assigned -= numbers
        self._read.drop(numbers)

    def _forget(self, partitions: list[TopicPartition]) -> set[int]:
        numbers = {p.partition for p in partitions}
        self._intake.drop_partitions(numbers)
        self._pressure.forget(numbers)
        self._heads.forget(numbers)
        self._repair.forget(numbers)
        return numbers



