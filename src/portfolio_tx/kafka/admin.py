"""Topic names, topic creation and the co-partitioning check the worker runs at start.

Fills, pnl, cycles and commits must have the same partition count (CONTRACT §3): a session's
events and its outcomes then live in partitions of the same number. Marks are compacted (the
latest mark per symbol is what matters) and every worker reads all of their partitions.
The commit topic keeps its records forever: it is the log a lost Redis is restored from.

Every confluent-kafka error is translated here into ``KafkaSetupError`` with one line that
says what to do.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports NewTopic without marking it public for type checkers
from confluent_kafka.cimpl import NewTopic

from portfolio_tx.config import Settings
from portfolio_tx.errors import ConfigError, KafkaSetupError
from portfolio_tx.kafka.clients import (
    LIBRDKAFKA_LOG,
    UNREACHABLE_FIX,
    as_settings,
    common_config,
    describe_target,
    kafka_error,
    kafka_errors,
)
from portfolio_tx.kafka.refusals import Refusals, refusal
from portfolio_tx.wire.topics import TopicNames

DEFAULT_TIMEOUT_S = 10.0
_CREATE_HINT = "run portfolio-tx topics create"


def topic_configs(names: TopicNames) -> Mapping[str, Mapping[str, str]]:
    """The topic-level configs ``create_topics`` sets, per topic."""
    delete = {"cleanup.policy": "delete"}
    return {
        names.fills: delete,
        names.pnl: delete,
        names.cycles: delete,
        names.marks: {"cleanup.policy": "compact"},
        names.commits: {**delete, "retention.ms": "-1", "retention.bytes": "-1"},
        names.deadletter: delete,
    }


class _AdminLog:
    """librdkafka's lines of an admin client, kept for --log-level DEBUG: otherwise they
    only repeat the one line the failed call raises (served by its poll, they would
    precede that line)."""

    def log(self, level: int, msg: str, *args: object) -> None:
        if LIBRDKAFKA_LOG.isEnabledFor(logging.DEBUG):
            LIBRDKAFKA_LOG.log(level, msg, *args)


# each admin client's error callback (its config is not readable back from the client)
_REFUSALS: weakref.WeakKeyDictionary[AdminClient, Refusals] = weakref.WeakKeyDictionary()


def admin_client(target: Settings | str) -> AdminClient:
    """An AdminClient with the common config (``target``: settings, or a bare bootstrap
    string for a plaintext cluster) whose librdkafka log goes to Python logging."""
    config: dict[str, Any] = {**common_config(as_settings(target)), "logger": _AdminLog()}
    refusals = config["error_cb"]
    with kafka_errors("cannot create a Kafka admin client"):
        admin = AdminClient(config)
    _REFUSALS[admin] = refusals
    return admin


Target = AdminClient | Settings | str


def _admin(target: Target) -> tuple[AdminClient, str]:
    if isinstance(target, AdminClient):
        return target, "the configured bootstrap servers"
    settings = as_settings(target)
    return admin_client(settings), describe_target(settings)


def _metadata(admin: AdminClient, where: str, timeout: float) -> Any:
    """The cluster's metadata, asked in short attempts: between them the error callback is
    served, so a refused login or an untrusted certificate is its own one-line error within
    about a second instead of a "transport failure" after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        attempt = max(0.1, min(1.0, deadline - time.monotonic()))
        try:
            return admin.list_topics(timeout=attempt)
        except KafkaException as exc:
            admin.poll(0)  # serves the error callback, which keeps a security refusal
            if (refusals := _REFUSALS.get(admin)) is not None:
                refusals.raise_first()
            if time.monotonic() < deadline:
                continue
            reason = kafka_error(exc).str()
            raise KafkaSetupError(
                f"cannot reach Kafka at {where} ({reason}) — {UNREACHABLE_FIX}"
            ) from exc


def _partition_counts(metadata: Any, topics: tuple[str, ...]) -> dict[str, int | None]:
    """Partition count per topic; None for a topic the cluster does not have. A topic the
    principal may not describe is a KafkaSetupError naming it (not "missing")."""
    counts: dict[str, int | None] = {}
    for topic in topics:
        found = metadata.topics.get(topic)
        if (
            found is not None
            and found.error is not None
            and (found.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED)
        ):
            raise KafkaSetupError(
                f"not authorised on topic {topic}: the principal lacks a DESCRIBE ACL for it"
            )
        ok = found is not None and found.error is None
        counts[topic] = len(found.partitions) if ok else None
    return counts


def create_topics(
    admin_or_bootstrap: Target,
    names: TopicNames,
    partitions: int,
    marks_partitions: int | None = None,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create the topics of ``names`` that do not exist yet; returns the ones it created.

    Fills, pnl, cycles, commits and deadletter get ``partitions`` partitions, marks gets
    ``marks_partitions`` (default ``partitions``). Existing topics are left as they are,
    whatever their partition count: ``check_copartitioned`` says whether they fit. Returns
    once every topic is visible with a leader for each partition. Raises ``ConfigError`` for
    a count below 1 and ``KafkaSetupError`` when Kafka is unreachable or refuses a topic.
    """
    marks_count = partitions if marks_partitions is None else marks_partitions
    if partitions < 1 or marks_count < 1 or replication_factor < 1:
        raise ConfigError(
            f"partitions ({partitions}), marks partitions ({marks_count}) and replication "
            f"factor ({replication_factor}) must be at least 1"
        )
    admin, where = _admin(admin_or_bootstrap)
    existing = _partition_counts(_metadata(admin, where, timeout), names.all())
    configs = topic_configs(names)
    new = [
        NewTopic(
            topic,
            num_partitions=marks_count if topic == names.marks else partitions,
            replication_factor=replication_factor,
            config=dict(configs[topic]),
        )
        for topic in names.all()
        if existing[topic] is None
    ]
    created: list[str] = []
    if new:
        futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
        for topic, future in futures.items():
            try:
                future.result(timeout=timeout)
                created.append(topic)
            except KafkaException as exc:
                if kafka_error(exc).code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # another process created it meanwhile
                if (denied := refusal(exc.args[0], where, topic)) is not None:
                    raise denied from exc
                reason = kafka_error(exc).str()
                raise KafkaSetupError(f"cannot create topic {topic}: {reason}") from exc
            except TimeoutError as exc:
                raise KafkaSetupError(
                    f"creating topic {topic} at {where} took longer than {timeout:g}s"
                ) from exc
    _wait_for_leaders(admin, where, names.all(), timeout)
    return [topic for topic in names.all() if topic in created]


def _wait_for_leaders(
    admin: AdminClient, where: str, topics: tuple[str, ...], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        metadata = _metadata(admin, where, timeout)
        waiting = [
            topic
            for topic in topics
            if (found := metadata.topics.get(topic)) is None
            or found.error is not None
            or not found.partitions
            or any(p.leader < 0 for p in found.partitions.values())
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise KafkaSetupError(
                f"topics {', '.join(waiting)} have no leader after {timeout:g}s at {where}"
            )
        time.sleep(0.1)


def check_copartitioned(
    bootstrap_or_admin: Target,
    names: TopicNames,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Make sure every topic of ``names`` exists and the co-partitioned ones agree.

    Raises ``KafkaSetupError`` with one line: Kafka unreachable (within ``timeout``), which
    topics are missing, or each co-partitioned topic's partition count.
    """
    admin, where = _admin(bootstrap_or_admin)
    counts = _partition_counts(_metadata(admin, where, timeout), names.all())
    missing = [topic for topic, count in counts.items() if count is None]
    if len(missing) == 1:
        raise KafkaSetupError(f"topic {missing[0]} does not exist — {_CREATE_HINT}")
    if missing:
        raise KafkaSetupError(f"topics {', '.join(missing)} do not exist — {_CREATE_HINT}")
    together = names.copartitioned()
    if len({counts[topic] for topic in together}) > 1:
        first, *rest = together
        described = ", ".join(
            [f"{first} has {counts[first]} partitions", *(f"{t} has {counts[t]}" for t in rest)]
        )
        raise KafkaSetupError(
            f"topics not co-partitioned: {described} — recreate them with the same count "
            "(portfolio-tx topics create --partitions N)"
        )


def partition_count(
    bootstrap_or_admin: Target, topic: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> int:
    """How many partitions ``topic`` has; ``KafkaSetupError`` when it does not exist."""
    admin, where = _admin(bootstrap_or_admin)
    count = _partition_counts(_metadata(admin, where, timeout), (topic,))[topic]
    if count is None:
        raise KafkaSetupError(f"topic {topic} does not exist — {_CREATE_HINT}")
    return count
