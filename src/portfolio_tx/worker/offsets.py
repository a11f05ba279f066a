"""ConsumedOffsets: the next batch, how far it was read, what a transaction sends, rewinds.

The offsets sent with a transaction are the next ones to read, held back to the first
record of any cycle still open (``CycleDesk.pinned``) so that a restart reads it again. A
rewind seeks every assigned partition back to the group's committed offsets.
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from portfolio_tx.kafka.transactional import TransactionalProducer


class ConsumedOffsets:
    def __init__(self, consumer: Consumer, producer: TransactionalProducer, timeout_s: float):
        self._consumer = consumer
        self._producer = producer
        self._timeout_s = timeout_s
        self._next: dict[tuple[str, int], int] = {}

    def next_batch(self, size: int) -> list[Message]:
        """What is fetched already, up to ``size``; else wait up to 100 ms for one record.

        Each batch is one Kafka transaction: waiting for a full batch under a light load
        would only add latency.
        """
        messages = self._consumer.consume(size, timeout=0)
        if messages:
            return messages
        first = self._consumer.poll(0.1)
        if first is None:
            return []
        return [first, *self._consumer.consume(size - 1, timeout=0)]

    def read(self, topic: str, partition: int, offset: int) -> None:
        self._next[(topic, partition)] = offset + 1

    def to_send(self, pinned: Mapping[tuple[str, int], int]) -> list[TopicPartition]:
        """The offsets to commit with the transaction, none past an open cycle's first."""
        return [
            TopicPartition(topic, partition, min(offset, pinned.get((topic, partition), offset)))
            for (topic, partition), offset in self._next.items()
        ]

    def drop(self, partitions: set[int]) -> None:
        for key in [k for k in self._next if k[1] in partitions]:
            del self._next[key]

    def rewind(self) -> None:
        """Forget what was read and seek back to the committed offsets."""
        self._next.clear()
        assignment = self._consumer.assignment()
        if not assignment:
            return
        committed = self._producer.call(
            lambda: self._consumer.committed(assignment, self._timeout_s),
            "read committed offsets",
        )
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
