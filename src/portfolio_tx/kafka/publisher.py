"""Publisher: what an upstream execution service does, as a small API.

Used by ``portfolio-tx simulate``, the demo and the tests. Records are keyed as CONTRACT §3
says (session id, or symbol for marks) and partitioned with the Java-compatible murmur2
partitioner, so a session's fills, reports and markers land in partitions of one number.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from portfolio_tx.config import Settings
from portfolio_tx.errors import KafkaSetupError
from portfolio_tx.kafka.clients import (
    as_settings,
    describe_target,
    kafka_error,
    kafka_errors,
    make_producer,
    plain_producer_config,
)
from portfolio_tx.kafka.refusals import Refusals, refusal
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, MarkPrice, PnlEvent
from portfolio_tx.wire.topics import TopicNames


class Publisher:
    def __init__(
        self,
        settings: Settings | str,
        topics: TopicNames,
        codec: Codec | None = None,
        **config: Any,
    ) -> None:
        self.topics = topics
        self.codec = codec or Codec()
        producer_config = plain_producer_config(settings, **config)
        self._refusals: Refusals = producer_config["error_cb"]
        self._producer: Producer = make_producer(producer_config)
        self._where = describe_target(as_settings(settings))
        self._refused: KafkaSetupError | None = None
        self.sent = 0
        self._marks_in_flight = False

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None and self._refused is None:
            self._refused = refusal(error, self._where, message.topic())

    def publish(self, record: Fill | PnlEvent | CycleMarker | MarkPrice) -> None:
        """Send one record. A marker waits until every mark sent before it is acknowledged:
        the worker values a cycle with the marks on the topic when it reads the marker, so a
        mark still in flight (its leader failing over) would be missed (CONTRACT §2: the
        marks published before the marker)."""
        if isinstance(record, CycleMarker) and self._marks_in_flight:
            self.flush()
            self._marks_in_flight = False
        if isinstance(record, Fill):
            self.raw(
                self.topics.fills, record.session_id, self.codec.encode(record, self.topics.fills)
            )
        elif isinstance(record, PnlEvent):
            self.raw(self.topics.pnl, record.session_id, self.codec.encode(record, self.topics.pnl))
        elif isinstance(record, CycleMarker):
            self.raw(
                self.topics.cycles, record.session_id, self.codec.encode(record, self.topics.cycles)
            )
        else:
            self.raw(self.topics.marks, record.symbol, self.codec.encode(record, self.topics.marks))
            self._marks_in_flight = True

    def raw(self, topic: str, key: str | None, value: bytes | None) -> None:
        """Send bytes as they are (the simulator's malformed records go through here)."""
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=None if key is None else key.encode(),
                    value=value,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self.sent += 1
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every record's delivery; KafkaSetupError naming a refusal (login, CA,
        a topic or the cluster not authorised) or the records left undelivered."""
        deadline = time.monotonic() + timeout
        try:
            # polled, not flush(): a fatal error (no IdempotentWrite) breaks flush() itself
            while len(self._producer) and time.monotonic() < deadline:
                self._producer.poll(0.1)
        except KafkaException as exc:
            error = kafka_error(exc)
            raise refusal(error, self._where) or KafkaSetupError(
                f"cannot deliver records: {error.str()}"
            ) from exc
        self._refusals.raise_first()  # a refused login, an untrusted CA
        if self._refused is not None:
            raise self._refused
        remaining = self._producer.flush(max(0.0, deadline - time.monotonic()))
        if remaining:
            raise KafkaSetupError(f"{remaining} records not delivered within {timeout:g}s")

    def close(self) -> None:
        with kafka_errors("cannot deliver records"):
            self.flush()
