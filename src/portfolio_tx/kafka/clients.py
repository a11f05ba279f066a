"""Thin confluent-kafka construction: every client the project makes is configured here.

common    what every client shares: the bootstrap servers and the connection security
          (``security.KafkaSecurity``: protocol, SASL, TLS files, the properties file); the
          one place site-wide client settings join. A client.id never carries a secret.
consumer  one group over fills, pnl and cycles; range assignment keeps partition p of
          every co-partitioned topic on one member; read_committed; no auto commit
          (offsets travel inside the producer's transaction)
producer  transactional, stable transactional.id per worker instance, short
          transaction.timeout.ms, Java-compatible murmur2 partitioner
reader    every other consumer (marks, the commit topic, the dead-letter topic, replay's
          input): group-less by manual assignment, read_committed, reports each
          partition's end
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from portfolio_tx.config import Settings
from portfolio_tx.errors import KafkaSetupError
from portfolio_tx.kafka.refusals import Refusals

# librdkafka's own log lines go through Python logging (so --log-format json holds); only
# for polled clients: an unpolled client would queue them.
LIBRDKAFKA_LOG = logging.getLogger("portfolio_tx.librdkafka")

UNREACHABLE_FIX = "is the broker running? set KAFKA_BOOTSTRAP_SERVERS"


def common_config(settings: Settings) -> dict[str, Any]:
    """What every client of the project shares (admin, consumers, producers)."""
    return {
        **settings.kafka_security.client_config(),
        "bootstrap.servers": settings.bootstrap_servers,
        "error_cb": Refusals(describe_target(settings)),
    }


def describe_target(settings: Settings) -> str:
    """Where and as whom the clients connect, for messages: never a secret."""
    security = settings.kafka_security
    who = f" as {security.username}" if security.username else ""
    return f"{settings.bootstrap_servers} ({security.protocol.value}{who})"


def as_settings(target: Settings | str) -> Settings:
    """``target``, or plain settings for a bare bootstrap string (tests, tools)."""
    return target if isinstance(target, Settings) else Settings(bootstrap_servers=target)


def consumer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return {
        **common_config(settings),
        "group.id": settings.group_id,
        "partition.assignment.strategy": "range",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "session.timeout.ms": 6_000,  # the broker's minimum: a killed worker is noticed soon
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": 60_000,
        "fetch.wait.max.ms": 50,
        # A small prefetch: the consumer queue is one FIFO for all partitions, so whatever
        # one flooding partition has prefetched is read before any other partition's next
        # record (at 2 MiB + 1 MiB per fetch, other sessions waited ~2 s behind a flood;
        # at 128 KiB + 64 KiB, ~0.35 s). The queue is refilled 5 ms after it has room
        # (librdkafka's default waits 1 s); a record larger than a fetch still comes whole.
        "queued.max.messages.kbytes": 128,
        "max.partition.fetch.bytes": 64 * 1024,
        "fetch.queue.backoff.ms": 5,
        "client.id": f"portfolio-tx-{settings.instance_id}",
        "logger": LIBRDKAFKA_LOG,
        **extra,
    }


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return {
        **common_config(settings),
        "transactional.id": settings.transactional_id,
        "transaction.timeout.ms": settings.transaction_timeout_ms,
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "linger.ms": 2,
        # A transaction begun right after the last one commits is often answered
        # CONCURRENT_TRANSACTIONS (the coordinator is still writing the last one's markers)
        # and retried after this backoff: at librdkafka's 100 ms that was the p99 of a
        # light load. 10 ms as the Java client's 20 ms; other retries grow from it
        # (exponentially, to retry.backoff.max.ms).
        "retry.backoff.ms": 10,
        # a burst of dead letters (a cycle past its limit) waits for room, not for RAM
        "queue.buffering.max.messages": 20_000,
        "client.id": f"portfolio-tx-{settings.instance_id}",
        **extra,
    }


def reader_config(settings: Settings, purpose: str, **extra: Any) -> dict[str, Any]:
    """A reader's config: ``purpose`` names it in its group id and client id (the group is
    never joined or committed: readers assign partitions by hand)."""
    return {
        **common_config(settings),
        "group.id": f"{settings.group_id}-{purpose}-{uuid.uuid4().hex[:8]}",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "client.id": f"portfolio-tx-{purpose}-{settings.instance_id}",
        "logger": LIBRDKAFKA_LOG,
        **extra,
    }


def make_reader(settings: Settings, purpose: str, **extra: Any) -> Consumer:
    """A read_committed reader (see ``reader_config``). Raises KafkaSetupError."""
    return make_consumer(reader_config(settings, purpose, **extra))


def plain_producer_config(settings: Settings | str, **extra: Any) -> dict[str, Any]:
    """For upstream simulators and tests: idempotent, murmur2, not transactional."""
    return {
        **common_config(as_settings(settings)),
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        **extra,
    }


@contextmanager
def kafka_errors(what: str, *, fix: str = "") -> Iterator[None]:
    """Raise a confluent-kafka error inside as KafkaSetupError: "<what>: <reason>", or
    "<what> (<reason>) — <fix>". The one place a client's error becomes the project's; the
    worker's transaction loop alone reads librdkafka's flags instead (``kafka_error``), to
    tell a retriable error from a fatal one."""
    try:
        yield
    except KafkaException as exc:
        reason = kafka_error(exc).str()
        raise KafkaSetupError(f"{what} ({reason}) — {fix}" if fix else f"{what}: {reason}") from exc


def make_consumer(config: dict[str, Any]) -> Consumer:
    with kafka_errors("cannot create a Kafka consumer"):
        return Consumer(config)


def make_producer(config: dict[str, Any]) -> Producer:
    with kafka_errors("cannot create a Kafka producer"):
        return Producer(config)


def kafka_error(exc: KafkaException) -> KafkaError:
    """The KafkaError inside a KafkaException."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return error
    return KafkaError(KafkaError._FAIL, str(exc))


def located(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record (always set on one without error)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset
