"""TransactionalProducer: the worker's transactional producer, with hard deadlines.

Every transactional call (init, send offsets, commit, abort) runs with a deadline and
retries what librdkafka calls retriable (a broker restart, a timeout) for a while. The
deadline exists because ``send_offsets_to_transaction`` can block past its own timeout when
the transaction coordinator went away (librdkafka issues 5456 and 5511; seen here on a
broker restart): the call runs on a helper thread, and a producer stuck past the deadline
is given up and replaced by a new one with the same ``transactional.id``, whose
``init_transactions`` fences the old one and aborts its open transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from portfolio_tx.errors import ProducerStuckError
from portfolio_tx.kafka.clients import kafka_error

log = logging.getLogger("portfolio_tx.worker")

T = TypeVar("T")


# librdkafka does not flag these retriable, but they only mean the coordinator is moving or
# loading (a broker restart): seen ending the worker on a rewind's committed() call.
_COORDINATOR_MOVING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


class TransactionalProducer:
    def __init__(
        self,
        factory: Callable[[], Producer],
        *,
        timeout_s: float = 15.0,
        slack_s: float = 10.0,
        retry_for_s: float = 120.0,
        on_error: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._factory = factory
        self._timeout = timeout_s
        self._deadline = timeout_s + slack_s
        self._retry_for = retry_for_s
        self._on_error = on_error
        self._producer = factory()

    def start(self) -> None:
        """Register the transactional id (fencing any earlier instance that used it)."""
        self.call(lambda: self._producer.init_transactions(self._timeout), "init")

    def begin(self) -> None:
        self._producer.begin_transaction()

    def produce(self, topic: str, **record: Any) -> None:
        """Produce one record; a full local queue (a burst of dead letters) is drained by
        serving delivery reports until there is room, instead of failing the transaction."""
        while True:
            try:
                self._producer.produce(topic, **record)
                return
            except BufferError:
                self._producer.poll(0.05)

    def send_offsets(self, offsets: list[TopicPartition], group_metadata: object) -> None:
        self.call(
            lambda: self._producer.send_offsets_to_transaction(
                offsets, group_metadata, self._timeout
            ),
            "send offsets",
        )

    def commit(self) -> None:
        self.call(lambda: self._producer.commit_transaction(self._timeout), "commit")

    def abort(self) -> None:
        """Abort the open transaction; a producer that cannot is replaced instead."""
        try:
            self._deadlined(lambda: self._producer.abort_transaction(self._timeout), "abort")
        except ProducerStuckError:
            self.replace()

    def replace(self) -> None:
        """Give this producer up and start a new one under the same transactional id."""
        self._on_error("producer_stuck")
        while True:
            self._producer = self._factory()
            try:
                self.call(lambda: self._producer.init_transactions(self._timeout), "init")
                return
            except (ProducerStuckError, KafkaException) as exc:
                log.error("new producer could not start (%s); trying again", exc)
                time.sleep(1.0)

    def flush(self, timeout: float) -> None:
        self._producer.flush(timeout)

    def call(self, operation: Callable[[], T], what: str) -> T:
        """Run ``operation`` with the deadline, retrying retriable Kafka errors; other errors
        (and ProducerStuckError) propagate."""
        give_up = time.monotonic() + self._retry_for
        attempt = 0
        while True:
            try:
                return self._deadlined(operation, what)
            except KafkaException as exc:
                error = kafka_error(exc)
                transient = error.retriable() or error.code() in _COORDINATOR_MOVING
                if not transient or time.monotonic() > give_up:
                    raise
                self._on_error(error.name())
                log.warning("retrying %s after a retriable Kafka error: %s", what, exc)
                time.sleep(min(0.05 * 2**attempt, 2.0))
                attempt += 1

    def _deadlined(self, operation: Callable[[], T], what: str) -> T:
        result: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                result.append(operation())
            except BaseException as exc:  # handed to the caller's thread below
                failure.append(exc)

        helper = threading.Thread(target=run, name=f"txn-{what}", daemon=True)
        helper.start()
        helper.join(self._deadline)
        if failure:
            raise failure[0]
        if not result:
            raise ProducerStuckError(f"{what} did not return within {self._deadline:g}s")
        return result[0]
