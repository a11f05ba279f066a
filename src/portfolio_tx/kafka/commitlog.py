"""CommitLog: asks the commit topic whether a cycle's outcome is already on it.

Used only for cycles in doubt: decided in Redis, but not known to be published (the worker
died between the Redis write and the Kafka commit, or the transaction aborted). Reading
``read_committed`` from shortly before the decision to the end of the partition answers it;
an open transaction of a dead instance holds the end back until it times out, so the wait is
bounded by the transaction timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from portfolio_tx.errors import DecodeError, KafkaSetupError
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleOutcome


class CommitLog:
    def __init__(self, consumer: Consumer, topic: str, codec: Codec, wait_s: float) -> None:
        self._consumer = consumer
        self._topic = topic
        self._codec = codec
        self._wait_s = wait_s

    def contains(self, partition: int, session_id: str, cycle_id: int, since_ms: int) -> bool:
        """True when a committed outcome of ``session_id``/``cycle_id`` is on ``partition``
        at or after ``since_ms``. Raises KafkaSetupError if the end is not reached in time."""
        found = self._consumer.offsets_for_times(
            [TopicPartition(self._topic, partition, max(since_ms, 0))], timeout=self._wait_s
        )
        start = found[0].offset
        if start < 0:  # nothing was written at or after since_ms
            return False
        self._consumer.assign([TopicPartition(self._topic, partition, start)])
        key = session_id.encode()
        deadline = time.monotonic() + self._wait_s
        try:
            while time.monotonic() < deadline:
                for message in self._consumer.consume(500, timeout=0.2):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            return False
                        continue
                    if message.key() != key:
                        continue
                    try:
                        outcome = self._codec.decode(
                            message.value(),
                            topic=self._topic,
                            partition=partition,
                            offset=message.offset(),
                            expected=CycleOutcome,
                        )
                    except DecodeError:
                        continue
                    if outcome.session_id == session_id and outcome.cycle_id == cycle_id:
                        return True
            raise KafkaSetupError(
                f"could not read {self._topic}[{partition}] to its end within "
                f"{self._wait_s:.0f}s to check cycle {cycle_id} of {session_id}"
            )
        finally:
            self._consumer.unassign()

    def read_partition(self, partition: int) -> Iterator[tuple[bytes, CycleOutcome]]:
        """Every committed outcome of ``partition`` from the beginning to its end, in order.

        Raises KafkaSetupError when the end is not reached within the wait (an open
        transaction of a dead instance holds it back at most its transaction timeout).
        """
        for message in self.messages(partition):
            decoded = self.decode(message)
            if decoded is not None:
                yield decoded

    def decode(self, message: Message) -> tuple[bytes, CycleOutcome] | None:
        """The record's value and outcome; None for a record that is not one."""
        value = message.value()
        try:
            outcome = self._codec.decode(
                value,
                topic=self._topic,
                partition=message.partition(),
                offset=message.offset(),
                expected=CycleOutcome,
            )
        except DecodeError:
            return None
        assert value is not None
        return value, outcome

    def messages(self, partition: int) -> Iterator[Message]:
        """Every committed record of ``partition`` from the beginning to its end, undecoded
        (see ``read_partition``)."""
        self._consumer.assign([TopicPartition(self._topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + self._wait_s
        try:
            while True:
                messages = self._consumer.consume(1000, timeout=0.2)
                if not messages and time.monotonic() > deadline:
                    raise KafkaSetupError(
                        f"could not read {self._topic}[{partition}] to its end "
                        f"within {self._wait_s:.0f}s"
                    )
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            return
                        continue
                    deadline = time.monotonic() + self._wait_s
                    yield message
        finally:
            self._consumer.unassign()

    def close(self) -> None:
        self._consumer.close()
