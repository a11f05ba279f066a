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
    OFFSET_BEGINNING,
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
from portfolio_tx.worker.checkpoint import BatchRejected, Checkpoint, StoreLost
from portfolio_tx.worker.deadletters import DeadLetters
from portfolio_tx.worker.desk import CycleDesk
from portfolio_tx.worker.heads import PublishedHeads, StateBehind
from portfolio_tx.worker.health import heartbeat_key
from portfolio_tx.worker.mark_table import MarkTable
from portfolio_tx.worker.restore import behind, read_heads, restore_sessions
from portfolio_tx.worker.stats import WorkerStats
from portfolio_tx.worker.watch import read_to_end, record_gauges, wall_ms

log = logging.getLogger("portfolio_tx.worker")

_TXN_TIMEOUT = 15.0


_STORE_BACKOFF_S = 1.0
_GAUGES_EVERY_S = 1.0
_SWEEP_EVERY_S = 1.0  # how often the clock is read for the open-cycle timeout
_RESUME_AT = 0.75  # paused partitions resume once the buffer is back under this share


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
        # partitions whose stored sessions were compared with their heads since the store
        # last changed hands (a restart, a failover, trouble): see _repair_store
        self._verified: set[int] = set()
        self._store_identity: str | None = None
        self._checkpoint = Checkpoint(
            self._producer,
            store,
            settings.topics.commits,
            self.stats,
            self._heads,
            lambda session_id: self._intake.books.get(session_id),
            before_kafka_commit=before_kafka_commit,
        )
        self._desk = CycleDesk(
            settings,
            store,
            codec,
            marks.table,
            commit_log,
            self.stats,
            self._dead_letters.send,
            self._heads.check,
            self._checkpoint,
        )
        self._intake = self._desk.intake
        self._next: dict[tuple[str, int], int] = {}
        self._assigned: set[int] = set()  # partition numbers of the co-partitioned topics
        self._paused: set[int] = set()  # partitions whose fills and pnl wait: buffer at limit
        self._buffer_limit = int(settings.max_buffered_mb * 2**20)
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
                messages = self._next_batch()
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
                    self._backpressure()
                if now >= gauges_due:
                    self._watch_store_identity()
                    record_gauges(
                        self.stats,
                        self._consumer,
                        self._desk.open_cycles(),
                        self._heartbeat,
                        len(self._assigned),
                    )
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

    def _next_batch(self) -> list[Message]:
        """What is fetched already, up to a batch; else wait up to 100 ms for one record.

        Each batch is one Kafka transaction: waiting for a full batch under a light load
        would only add latency.
        """
        size = self.settings.batch_size
        messages = self._consumer.consume(size, timeout=0)
        if messages:
            return messages
        first = self._consumer.poll(0.1)
        if first is None:
            return []
        return [first, *self._consumer.consume(size - 1, timeout=0)]

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
            self._repair_store()
            self._producer.begin()
            in_transaction = True
            for message in records:
                topic, partition, offset = located(message)
                self._next[(topic, partition)] = offset + 1
                self._desk.route(message, now)
            decided = self._desk.decide_ready(
                now, self._checkpoint.publish, self._marks.catch_up
            )
            rejected, self._marks.rejected = self._marks.rejected, []
            for item in rejected:
                self._dead_letters.message(item.message, item.reason)
            if not records and not decided:
                self._checkpoint.forget()
                self._producer.abort()
                return
            self._checkpoint.commit(
                self._offsets(), self._consumer.consumer_group_metadata(), self._assigned
            )
            self.stats.transactions += 1
            self.stats.transaction_committed(self._clock())
        except KafkaException as exc:
            self._checkpoint.forget()
            self._recover(exc)
        except ProducerStuckError as exc:
            log.error("transactional producer stuck (%s); replacing it", exc)
            self._checkpoint.forget()
            self.stats.aborted_transactions += 1
            self.stats.transaction_aborted()
            self._producer.replace()
            self._rewind()
        except BatchRejected as exc:
            log.warning("%s", exc)
            self._checkpoint.forget()
            self.stats.aborted_transactions += 1
            self.stats.transaction_aborted()
            self._abort()
            self._rewind()
        except StateBehind as exc:
            self._checkpoint.forget()
            self._state_behind(exc, in_transaction)
        except (StateStoreError, StoreLost) as exc:
            self._checkpoint.forget()
            self._store_trouble(exc, in_transaction)

    def _repair_store(self) -> None:
        """Before anything is decided: restore what the store lost or holds older than the
        commit topic, and re-read the repaired sessions' snapshots into their books (the
        books hold only unstaged events, so nothing needs to be read again from Kafka).

        A partition without its readiness key is restored whole. For every other assigned
        partition, the heads (the last outcome per session on the commit topic) are read
        once per assignment, and the stored sessions are compared with them after each
        change of the Redis server and each store error; a session behind its head is
        restored from the commit topic (a Redis restarted from an older snapshot, a replica
        promoted without the last writes).
        """
        assigned = sorted(self._assigned)
        ready = self._store.partitions_ready(assigned)
        repaired: set[str] = set()
        for partition in assigned:
            if partition not in ready:
                heads = restore_sessions(self._commit_log, self._store, partition)
                self._heads.learn(partition, heads)
                self._verified.add(partition)
                self.stats.restored_sessions += len(heads)
                log.warning(
                    "restored %d sessions of partition %d from the commit topic "
                    "(the store had lost the partition)",
                    len(heads),
                    partition,
                )
                repaired |= {s for s, b in self._intake.books.items() if b.partition == partition}
                continue
            if not self._heads.known(partition):
                self._heads.learn(partition, read_heads(self._commit_log, partition))
                self._verified.discard(partition)
            if partition not in self._verified:
                stale = behind(self._store, self._heads.partition_heads(partition))
                if stale:
                    self._repair(StateBehind(partition, stale))
                    repaired |= set(stale)
                self._verified.add(partition)
        if repaired:
            self._intake.reload(repaired)

    def _repair(self, found: StateBehind) -> None:
        """Restore the sessions found behind their published heads, and say so."""
        restore_sessions(self._commit_log, self._store, found.partition, set(found.sessions))
        self.stats.repaired_sessions += len(found.sessions)
        log.warning(
            "repaired %d sessions from the commit topic (partition %d): %s",
            len(found.sessions),
            found.partition,
            found,
        )

    def _state_behind(self, exc: StateBehind, in_transaction: bool) -> None:
        """A state read mid-transaction was older than the commit topic: abort, compare the
        whole partition with its heads and repair it before reading again."""
        log.warning("state store went back in time, aborting and repairing: %s", exc)
        if in_transaction:
            self.stats.aborted_transactions += 1
            self.stats.transaction_aborted()
            self._abort()
        self._verified.clear()
        self._rewind()

    def _watch_store_identity(self) -> None:
        """A new Redis server process (restart, failover) may hold older data: compare the
        stored sessions with their heads again before the next decision."""
        try:
            identity = self._store.server_identity()
        except StateStoreError:
            self._verified.clear()
            return
        if self._store_identity is not None and identity != self._store_identity:
            log.warning(
                "the Redis server changed (%s -> %s); checking every session against "
                "the commit topic",
                self._store_identity,
                identity,
            )
            self._verified.clear()
        self._store_identity = identity

    def _store_trouble(self, exc: Exception, in_transaction: bool) -> None:
        """Redis failed or lost data mid-transaction: abort, read again, restore if needed."""
        log.warning("state store trouble, aborting and reading again: %s", exc)
        self.stats.record_redis_error(type(exc).__name__)
        self._verified.clear()
        if in_transaction:
            self.stats.aborted_transactions += 1
            self.stats.transaction_aborted()
            self._abort()
        self._rewind()
        if isinstance(exc, StateStoreError):
            time.sleep(_STORE_BACKOFF_S)

    def _backpressure(self) -> None:
        """At the buffer limit, pause the fills and pnl of the partitions buffering the most
        in unmarked cycles (markers keep flowing, so marked cycles still complete and the
        open-cycle timeout still runs); resume them all once the buffer is back under 75%."""
        sizes = self._intake.buffered()
        total = sum(size for size, _ in sizes.values())
        self.stats.buffered_bytes = total
        if total > self._buffer_limit:
            busiest = sorted(
                (p for p, (_, unmarked) in sizes.items() if unmarked and p not in self._paused),
                key=lambda p: -sizes[p][1],
            )
            held = sum(sizes[p][0] for p in self._paused if p in sizes)
            for partition in busiest:
                if held * 2 >= total:
                    break
                self._pause_partition(partition, True)
                held += sizes[partition][0]
        elif self._paused and total <= self._buffer_limit * _RESUME_AT:
            for partition in sorted(self._paused):
                self._pause_partition(partition, False)
        self.stats.paused_partitions = len(self._paused)

    def _pause_partition(self, partition: int, pause: bool) -> None:
        tps = [TopicPartition(t, partition) for t in (self._topics.fills, self._topics.pnl)]
        if pause:
            self._consumer.pause(tps)
            self._paused.add(partition)
        else:
            self._consumer.resume(tps)
            self._paused.discard(partition)
        log.warning(
            "%s partition %d: %d bytes buffered, limit %d (PTX_MAX_BUFFERED_MB)",
            "pausing" if pause else "resuming",
            partition,
            self.stats.buffered_bytes,
            self._buffer_limit,
        )

    def _offsets(self) -> list[TopicPartition]:
        pinned = self._desk.pinned()
        return [
            TopicPartition(topic, partition, min(offset, pinned.get((topic, partition), offset)))
            for (topic, partition), offset in self._next.items()
        ]

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
        self._next.clear()
        assignment = self._consumer.assignment()
        if not assignment:
            return
        committed = self._producer.call(
            lambda: self._consumer.committed(assignment, _TXN_TIMEOUT), "read committed offsets"
        )
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

    # -- rebalances ------------------------------------------------------------------------

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted((p.topic, p.partition) for p in partitions))
        numbers = {p.partition for p in partitions}
        self._intake.drop_partitions(numbers)
        self._assigned |= numbers
        self._paused -= numbers
        self._heads.forget(numbers)  # read again: another worker may have decided since
        self._verified -= numbers
        self._idle_since = self._clock()  # idleness counts from a settled assignment

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", sorted((p.topic, p.partition) for p in partitions))
        numbers = {p.partition for p in partitions}
        self._intake.drop_partitions(numbers)
        self._assigned -= numbers
        self._paused -= numbers
        self._heads.forget(numbers)
        self._verified -= numbers
        for key in [k for k in self._next if k[1] in numbers]:
            del self._next[key]

    def _consumer_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise WorkerFatalError(f"fatal consumer error: {error}")
        self.stats.record_kafka_error(error.name())
        log.warning("consumer error: %s", error)
        return True


