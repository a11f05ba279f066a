"""``portfolio-tx tail``: follow the commit topic as a read_committed reader."""

from __future__ import annotations

import sys
import time
import uuid
from typing import TextIO

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

from portfolio_tx.commands.views import outcome_line
from portfolio_tx.config import Settings
from portfolio_tx.errors import DecodeError, KafkaSetupError
from portfolio_tx.kafka.clients import make_consumer
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleOutcome


def follow(
    settings: Settings,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_exit: float | None = None,
    out: TextIO | None = None,
) -> int:
    """Print one line per outcome until ``limit`` outcomes or ``idle_exit`` idle seconds."""
    stream = out if out is not None else sys.stdout
    topic = settings.topics.commits
    consumer = make_consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"portfolio-tx-tail-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise KafkaSetupError(f"topic {topic} does not exist — run portfolio-tx topics create")
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in metadata.topics[topic].partitions])
    codec = Codec(settings.schema_registry_url)
    shown = 0
    last = time.monotonic()
    try:
        while limit is None or shown < limit:
            messages = consumer.consume(100, timeout=0.2)
            if not messages and idle_exit is not None and time.monotonic() - last > idle_exit:
                break
            for message in messages:
                if message.error() is not None:
                    continue
                last = time.monotonic()
                try:
                    outcome = codec.decode(
                        message.value(),
                        topic=topic,
                        partition=message.partition(),
                        offset=message.offset(),
                        expected=CycleOutcome,
                    )
                except DecodeError as exc:
                    print(f"?        {exc}", file=stream, flush=True)
                    continue
                print(outcome_line(outcome), file=stream, flush=True)
                shown += 1
    finally:
        consumer.close()
    return shown
