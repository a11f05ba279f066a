"""ConsumedOffsets: the next batch, how far it was read, what a transaction sends, rewinds.

The offsets sent with a transaction are the next ones to read, held back to the first
record of any cycle still open (``CycleDesk.pinned``) so that a restart reads it again. A
rewind seeks every assigned partition back to the group's committed offsets.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from portfolio_tx.kafka.clients import located
from portfolio_tx.kafka.transactional import TransactionalProducer


class ConsumedOffsets:
    def __init__(self, consumer: Consumer, producer: TransactionalProducer, timeout_s: float):
        self._consumer = consumer
        self._producer = producer
        self._timeout_s = timeout_s
        self._next: dict[tuple[str, int], int] = {}
        self._overtake: list[TopicPartition] = []  # a flooding session's, for next_batch
        self._overtook = True  # the others had their look since the flood's last batch
        self._flood_until = 0.0  # monotonic s: a flood is over 2 s after it was last seen

    def next_batch(self, size: int, paused: AbstractSet[int] = frozenset()) -> list[Message]:
        """What is fetched already, up to ``size``; else wait up to 100 ms for one record.

        Each batch is one Kafka transaction: waiting for a full batch under a light load
        would only add latency. Once one session floods (``flooding``), batches alternate
        until it stops: first its partitions (unless ``paused`` by backpressure) are paused
        for one look at the queue: librdkafka drops what it prefetched of them (their next
        fetch starts at the record after the last one consumed), so what the other
        partitions fetched, queued behind the flood's record batches (the broker sends a
        producer's batch whole, ~1 MB of small fills, whatever the fetch size), is read
        first; then at most ``FLOOD_BATCH`` records, so that the transaction another
        session's record waits for stays short.
        """
        flood = bool(self._overtake) and time.monotonic() < self._flood_until
        if flood and not self._overtook:
            overtake = [tp for tp in self._overtake if tp.partition not in paused]
            self._overtook = True  # once per batch of the flood: its prefetch is dropped
            messages = self._overtaking(size, overtake) if overtake else []
            if messages:
                return messages
        if flood:
            size = min(size, FLOOD_BATCH)
        messages = self._consumer.consume(size, timeout=0) or self._wait(size, 0.1)
        flooded = flooding(messages, FLOOD_BATCH // 2 if flood else FLOODING)
        if flooded:
            self._overtake, self._flood_until = flooded, time.monotonic() + _FLOOD_LASTS_S
            self._overtook = False
        return messages

    def _wait(self, size: int, timeout_s: float) -> list[Message]:
        """Up to ``timeout_s`` for one record, then what else is fetched, up to ``size``."""
        first = self._consumer.poll(timeout_s)
        if first is None:
            return []
        return [first, *self._consumer.consume(size - 1, timeout=0)]

    def _overtaking(self, size: int, overtake: list[TopicPartition]) -> list[Message]:
        self._consumer.pause(overtake)
        try:
            return self._wait(size, _OVERTAKE_WAIT_S)
        finally:
            self._consumer.resume(overtake)

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
        self._overtake = [tp for tp in self._overtake if tp.partition not in partitions]

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


FLOODING = 500
"""Records of one session in one batch that make it a flood (a normal cycle has tens)."""
FLOOD_BATCH = 1000
"""Records read per transaction while a session floods, and dead letters of a refused
cycle's buffered records per transaction (``CycleDesk.decide_ready``): a record of another
session waits for the transaction in progress, ~10-20 ms for this many on a 2-core box."""
_FLOOD_LASTS_S = 2.0  # a batch short of the flood (its prefetch was dropped) does not end it
_OVERTAKE_WAIT_S = 0.01  # how long the others get to fill the queue while a flood is paused


def flooding(messages: list[Message], threshold: int = FLOODING) -> list[TopicPartition]:
    """The partitions of the session (record key) with ``threshold`` or more records in
    ``messages``, if one has."""
    if len(messages) < threshold:
        return []
    key, count = Counter(m.key() for m in messages).most_common(1)[0]
    if count < threshold:
        return []
    return [
        TopicPartition(topic, partition)
        for topic, partition in {located(m)[:2] for m in messages if m.key() == key}
    ]
