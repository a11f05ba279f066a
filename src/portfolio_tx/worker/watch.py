"""What the loop tells the outside once a second, and reads off its consumer for free:
open cycles, consumer lag, the heartbeat, and which input partitions are read to their end."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, Message

from portfolio_tx.errors import StateStoreError, WorkerFatalError
from portfolio_tx.store.cluster import Client
from portfolio_tx.worker.cycles import TopicPartition
from portfolio_tx.worker.health import beat
from portfolio_tx.worker.stats import WorkerStats, record_consumer_lag

log = logging.getLogger("portfolio_tx.worker")


def read_to_end(consumer: Consumer, topics: tuple[str, ...]) -> set[TopicPartition]:
    """The assigned partitions of ``topics`` whose position is at the last stable offset
    librdkafka last saw (no broker round trip); an empty partition counts, one not fetched
    from yet does not."""
    assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    caught_up = set()
    for tp in consumer.position(assigned) if assigned else []:
        _, high = consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
        # high < 0: nothing fetched from it yet, so its end is unknown: not caught up (a
        # worker starting into a backlog would otherwise time complete cycles out)
        if high == 0 or (high > 0 and tp.offset >= high):
            caught_up.add((tp.topic, tp.partition))
    return caught_up


def record_gauges(
    stats: WorkerStats,
    consumer: Consumer,
    open_cycles: int,
    heartbeat: tuple[Client, str] | None,
    partitions: int,
) -> None:
    """Open cycles and consumer lag for the metrics endpoint, and the heartbeat that
    ``portfolio-tx check`` reads (a Redis hiccup only counts an error)."""
    stats.set_open_cycles(open_cycles)
    record_consumer_lag(stats, consumer)
    if heartbeat is None:
        return
    try:
        beat(
            heartbeat[0],
            heartbeat[1],
            ready=partitions > 0,
            partitions=partitions,
            decided=stats.decided,
        )
    except StateStoreError:
        stats.record_redis_error("heartbeat")


def wall_ms() -> int:
    return int(time.time() * 1000)


def consumer_error(message: Message, stats: WorkerStats) -> bool:
    """True when ``message`` is a consumer error, counted and logged (no record to route);
    WorkerFatalError when librdkafka says the consumer cannot go on."""
    error = message.error()
    if error is None:
        return False
    if error.fatal():
        raise WorkerFatalError(f"fatal consumer error: {error}")
    stats.record_kafka_error(error.name())
    log.warning("consumer error: %s", error)
    return True
