"""Topic creation and the co-partitioning check, against the real broker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, NewTopic

from portfolio_tx.errors import KafkaSetupError
from portfolio_tx.kafka.admin import (
    TopicNames,
    check_copartitioned,
    create_topics,
    partition_count,
)


@pytest.fixture
def names(topic_prefix: str, admin_client: Any) -> Iterator[TopicNames]:
    """This test's six topic names; whichever of them exist afterwards are deleted."""
    names = TopicNames.with_prefix(topic_prefix)
    yield names
    existing = set(admin_client.list_topics(timeout=10).topics)
    doomed = [topic for topic in names.all() if topic in existing]
    if doomed:
        for future in admin_client.delete_topics(doomed, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):  # a test deleted it already
                future.result(timeout=30)


def _config(admin_client: Any, topic: str, key: str) -> str:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin_client.describe_configs([resource])[resource].result(timeout=30)
    return str(entries[key].value)


def test_with_prefix_puts_the_prefix_before_each_default_name() -> None:
    names = TopicNames.with_prefix("t-abc.")
    assert names.fills == "t-abc.portfolio.fills"
    assert names.all() == tuple("t-abc." + topic for topic in TopicNames().all())


def test_create_makes_every_topic_once_and_again_is_a_no_op(
    bootstrap_servers: str, names: TopicNames
) -> None:
    created = create_topics(bootstrap_servers, names, partitions=3, marks_partitions=1)
    assert created == list(names.all())
    assert create_topics(bootstrap_servers, names, partitions=3, marks_partitions=1) == []
    assert [partition_count(bootstrap_servers, t) for t in names.copartitioned()] == [3] * 4
    assert partition_count(bootstrap_servers, names.marks) == 1
    check_copartitioned(bootstrap_servers, names)


def test_marks_is_compacted_and_the_commit_log_is_kept_forever(
    bootstrap_servers: str, names: TopicNames, admin_client: Any
) -> None:
    create_topics(admin_client, names, partitions=2)
    assert _config(admin_client, names.marks, "cleanup.policy") == "compact"
    assert _config(admin_client, names.fills, "cleanup.policy") == "delete"
    assert _config(admin_client, names.deadletter, "cleanup.policy") == "delete"
    assert _config(admin_client, names.commits, "cleanup.policy") == "delete"
    assert _config(admin_client, names.commits, "retention.ms") == "-1"


def test_mismatched_partition_counts_are_reported_in_one_line(
    bootstrap_servers: str, names: TopicNames, admin_client: Any
) -> None:
    odd = NewTopic(names.pnl, num_partitions=2, replication_factor=1)
    admin_client.create_topics([odd])[names.pnl].result(timeout=30)
    assert create_topics(bootstrap_servers, names, partitions=4) == [
        names.fills,
        names.cycles,
        names.marks,
        names.commits,
        names.deadletter,
    ]
    with pytest.raises(KafkaSetupError) as caught:
        check_copartitioned(bootstrap_servers, names)
    assert str(caught.value) == (
        f"topics not co-partitioned: {names.fills} has 4 partitions, {names.pnl} has 2, "
        f"{names.cycles} has 4, {names.commits} has 4 — recreate them with the same count "
        "(portfolio-tx topics create --partitions N)"
    )


def test_a_missing_topic_is_named_with_the_command_that_creates_it(
    bootstrap_servers: str, names: TopicNames, admin_client: Any
) -> None:
    create_topics(bootstrap_servers, names, partitions=1)
    for future in admin_client.delete_topics([names.pnl], operation_timeout=30).values():
        future.result(timeout=30)
    with pytest.raises(KafkaSetupError) as caught:
        check_copartitioned(bootstrap_servers, names)
    assert str(caught.value) == (
        f"topic {names.pnl} does not exist — run portfolio-tx topics create"
    )


def test_several_missing_topics_are_all_named(bootstrap_servers: str, names: TopicNames) -> None:
    with pytest.raises(KafkaSetupError, match=r"^topics .* do not exist — run portfolio-tx"):
        check_copartitioned(bootstrap_servers, names)


def test_an_unreachable_broker_is_reported_with_its_address() -> None:
    with pytest.raises(KafkaSetupError) as caught:
        check_copartitioned("127.0.0.1:1", TopicNames(), timeout=1.0)
    message = str(caught.value)
    assert message.startswith("cannot reach Kafka at 127.0.0.1:1 (")
    assert message.endswith("— is the broker running? set KAFKA_BOOTSTRAP_SERVERS")


def test_topics_create_asks_for_the_replication_factor_it_is_given(
    bootstrap_servers: str, names: TopicNames, topic_prefix: str
) -> None:
    # one broker: a factor of 2 is refused by Kafka, naming the topic and the broker count
    done = subprocess.run(
        [sys.executable, "-m", "portfolio_tx", "topics", "create", "--replication-factor", "2"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "PTX_TOPIC_PREFIX": topic_prefix,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "cannot create topic" in lines[0] and topic_prefix in lines[0]
    assert "replication factor" in lines[0].lower() and "Traceback" not in done.stderr
    created = create_topics(bootstrap_servers, names, 2, replication_factor=1)
    assert sorted(created) == sorted(names.all())  # the refused run created none
