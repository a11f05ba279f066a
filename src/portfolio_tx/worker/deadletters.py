"""Dead letters: the original key and bytes, with headers saying where they came from and
why they could not be used. Produced inside the worker's Kafka transaction."""

from __future__ import annotations

import logging

from confluent_kafka import Message

from portfolio_tx.kafka.clients import located
from portfolio_tx.kafka.transactional import TransactionalProducer
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")


class DeadLetters:
    def __init__(self, producer: TransactionalProducer, topic: str, stats: WorkerStats) -> None:
        self._producer = producer
        self._topic = topic
        self._stats = stats

    def send(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> None:
        log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, reason)
        self._stats.dead_lettered += 1
        self._producer.produce(
            self._topic,
            key=key,
            value=value,
            headers=[
                ("source.topic", topic.encode()),
                ("source.partition", str(partition).encode()),
                ("source.offset", str(offset).encode()),
                ("error", reason.encode()),
            ],
        )

    def message(self, message: Message, reason: str) -> None:
        topic, partition, offset = located(message)
        self.send(topic, partition, offset, message.key(), message.value(), reason)
