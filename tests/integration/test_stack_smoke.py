"""The local stack is the real thing: Kafka transactions with read_committed, and Redis.

If these fail, nothing built on the stack can pass: look at the logs attached to the report.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

STACK_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stack"

PARTITIONS = 2
TIMEOUT_S = 30.0


def produce_transaction(producer: Producer, topic: str, label: str, count: int) -> list[str]:
    values = [f"{label}-{i}" for i in range(count)]
    producer.begin_transaction()
    for i, value in enumerate(values):
        producer.produce(topic, key=f"session-{i % 5}", value=value)
    # The records reach the partition logs before the transaction is decided, so an abort
    # really has something to hide.
    producer.flush(TIMEOUT_S)
    return values


def read_all(bootstrap_servers: str, topic: str, group: str, isolation: str) -> list[str]:
    """Every value visible at `isolation`, reading each partition up to its end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group,
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    values: list[str] = []
    at_end: set[int] = set()
    try:
        while len(at_end) < PARTITIONS:
            msg = consumer.poll(TIMEOUT_S)
            assert msg is not None, f"no message nor end of partition within {TIMEOUT_S}s"
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, err
                at_end.add(msg.partition() or 0)
                continue
            values.append((msg.value() or b"").decode())
    finally:
        consumer.close()
    return values


def test_read_committed_consumer_sees_exactly_the_committed_transactions(
    bootstrap_servers: str,
    create_topics: Callable[..., tuple[str, ...]],
    unique_name: Callable[[str], str],
) -> None:
    (topic,) = create_topics(unique_name("smoke"), partitions=PARTITIONS)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "transactional.id": unique_name("txn"),
            "linger.ms": 5,
        }
    )
    producer.init_transactions(TIMEOUT_S)

    first = produce_transaction(producer, topic, "committed", 10)
    producer.commit_transaction(TIMEOUT_S)
    aborted = produce_transaction(producer, topic, "aborted", 10)
    producer.abort_transaction(TIMEOUT_S)
    second = produce_transaction(producer, topic, "committed-after-abort", 3)
    producer.commit_transaction(TIMEOUT_S)

    committed_view = read_all(bootstrap_servers, topic, unique_name("rc"), "read_committed")
    uncommitted_view = read_all(bootstrap_servers, topic, unique_name("ru"), "read_uncommitted")

    assert sorted(committed_view) == sorted(first + second)
    assert not set(committed_view) & set(aborted)
    # The aborted records were written: it is the isolation level that hides them.
    assert sorted(uncommitted_view) == sorted(first + aborted + second)


def test_redis_answers_ping_set_and_get(redis_client: Any, redis_prefix: str) -> None:
    assert redis_client.ping() is True
    key = f"{redis_prefix}greeting"
    assert redis_client.set(key, "hello", ex=60) is True
    assert redis_client.get(key) == b"hello"
    assert list(redis_client.scan_iter(match=f"{redis_prefix}*")) == [key.encode()]


def test_stack_status_reports_both_services_ready(bootstrap_servers: str) -> None:
    done = subprocess.run(
        [sys.executable, str(STACK_SCRIPT), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kafka" in done.stdout and "redis" in done.stdout
