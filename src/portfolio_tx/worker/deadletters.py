"""Dead letters: the original key and bytes, with headers saying where they came from and
why they could not be used. Produced inside the worker's Kafka transaction."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Message

from portfolio_tx.kafka.clients import located
from portfolio_tx.kafka.transactional import TransactionalProducer
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")


_LOGGED_PER_SECOND = 20  # a flood of dead letters (a cycle past its limit) is summed up


class DeadLetters:
    def __init__(self, producer: TransactionalProducer, topic: str, stats: WorkerStats) -> None:
        self._producer = producer
        self._topic = topic
        self._stats = stats
        self._window = 0.0
        self._logged = 0
        self._unlogged = 0

    def _log(self, topic: str, partition: int, offset: int, reason: str) -> None:
        now = time.monotonic()
        if now - self._window >= 1.0:
            if self._unlogged:
                log.warning("... and %d more dead letters in the last second", self._unlogged)
            self._window, self._logged, self._unlogged = now, 0, 0
        if self._logged < _LOGGED_PER_SECOND:
            self._logged += 1
            log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, reason)
        else:
            self._unlogged += 1

    def send(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> None:
        self._log(topic, partition, offset, reason)
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
