"""MarkFeed: reads every partition of the marks topic into a MarkSink (the worker's MarkTable).

Not a group member: it assigns itself all partitions from the beginning (the topic is
compacted, so that is the latest mark per symbol plus the recent history). ``catch_up``
blocks until the table holds everything the topic held when it was called, so a marker
consumed before that call is valued with every mark published before the marker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from portfolio_tx.errors import DecodeError, KafkaSetupError
from portfolio_tx.kafka.clients import located
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import MarkPrice, event_problem

log = logging.getLogger("portfolio_tx.marks")


@dataclass(frozen=True, slots=True)
class RejectedMark:
    """A marks record that could not be used: the loop dead-letters it."""

    message: Message
    reason: str



class MarkSink(Protocol):
    """Where the feed puts each mark (``worker.mark_table.MarkTable``)."""

    def add(self, symbol: str, price: Decimal, ts: int) -> None: ...


SinkT = TypeVar("SinkT", bound=MarkSink)


class MarkFeed(Generic[SinkT]):
    """``ends``: a second read_committed consumer that only asks for the partitions' ends.
    The broker answers one request per connection at a time, so a ListOffsets sent on the
    reading consumer's connection waits behind its long-polling Fetch (up to
    ``fetch.wait.max.ms``: ~18 ms of every 20 ms-wait catch-up, measured); on an idle one it
    takes ~0.3 ms. Without it the reading consumer asks."""

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        codec: Codec,
        table: SinkT,
        ends: Consumer | None = None,
    ) -> None:
        self._consumer = consumer
        self._ends_consumer = ends or consumer
        self._topic = topic
        self._codec = codec
        self.table = table
        self._partitions: list[int] = []
        self._next: dict[int, int] = {}
        self._at_eof: dict[int, int] = {}  # partition -> offset its last EOF was reached at
        self.rejected: list[RejectedMark] = []

    def start(self, timeout: float = 10.0) -> None:
        """Assign every partition of the topic from the beginning and read what is there."""
        metadata = self._consumer.list_topics(self._topic, timeout=timeout)
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            raise KafkaSetupError(
                f"topic {self._topic} does not exist — run portfolio-tx topics create"
            )
        self._partitions = sorted(topic.partitions)
        self._consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in self._partitions]
        )
        self.catch_up(timeout=max(timeout, 30.0))

    def drain(self, max_messages: int = 10_000) -> int:
        """Read what is already fetched, without waiting."""
        return self._read(self._consumer.consume(max_messages, timeout=0))

    def catch_up(self, timeout: float = 10.0) -> None:
        """Read until every partition reaches the end it had when this was called.

        The ends come from one ListOffsets request for all partitions, and reading takes
        what is fetched without waiting for a full batch: a catch-up with nothing missing
        costs one round trip, not a poll timeout.
        """
        deadline = time.monotonic() + timeout
        targets = self._ends(deadline)
        while True:
            # an end-of-partition event counts only if it was reached at or past the target:
            # one queued before the ListOffsets request is stale (records came since). It is
            # needed at all because read_committed never reads the last control record.
            behind = [
                p
                for p, high in targets.items()
                if self._next.get(p, 0) < high and self._at_eof.get(p, -1) < high
            ]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise KafkaSetupError(
                    f"marks topic {self._topic} not caught up within {timeout:.0f}s "
                    f"(partitions {behind} behind)"
                )
            if not self._read(self._consumer.consume(1000, timeout=0)):
                first = self._consumer.poll(0.01)
                if first is not None:
                    self._read([first])

    def _ends(self, deadline: float) -> dict[int, int]:
        """Each partition's end, asked again while any answer is an error (its leader is
        moving): a partition whose end is unknown is never taken as caught up."""
        while True:
            ends = self._ends_consumer.offsets_for_times(
                [TopicPartition(self._topic, p, OFFSET_END) for p in self._partitions],
                timeout=max(deadline - time.monotonic(), 0.1),
            )
            failed = [tp.partition for tp in ends if tp.error is not None or tp.offset < 0]
            if not failed:
                return {tp.partition: tp.offset for tp in ends}
            if time.monotonic() > deadline:
                raise KafkaSetupError(
                    f"marks topic {self._topic}: no end offset for partitions {failed}"
                )
            time.sleep(0.1)

    def _read(self, messages: list[Message]) -> int:
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_eof[message.partition() or 0] = message.offset() or 0
                else:
                    log.warning("marks consumer error: %s", error)
                continue
            _, partition, offset = located(message)
            self._next[partition] = offset + 1
            try:
                mark = self._codec.decode(
                    message.value(),
                    topic=self._topic,
                    partition=partition,
                    offset=offset,
                    expected=MarkPrice,
                )
            except DecodeError as exc:
                self.rejected.append(RejectedMark(message, str(exc)))
                continue
            problem = event_problem(mark)
            if problem:
                self.rejected.append(RejectedMark(message, problem))
                continue
            self.table.add(mark.symbol, mark.price, mark.ts)
        return len(messages)

    def close(self) -> None:
        try:
            self._consumer.close()
        finally:
            if self._ends_consumer is not self._consumer:
                self._ends_consumer.close()
