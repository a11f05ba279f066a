"""Wiring a Worker from Settings: the only place that opens the worker's connections."""

from __future__ import annotations

from collections.abc import Callable

from portfolio_tx.config import Settings
from portfolio_tx.kafka.admin import check_copartitioned
from portfolio_tx.kafka.clients import (
    consumer_config,
    make_consumer,
    make_producer,
    make_reader,
    producer_config,
)
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.kafka.mark_feed import MarkFeed
from portfolio_tx.security import redacted_url
from portfolio_tx.store import RedisStateStore
from portfolio_tx.store.cluster import check_mode
from portfolio_tx.store.replies import redis_errors, redis_refusals
from portfolio_tx.wire.codec import Codec
from portfolio_tx.worker.loop import Worker
from portfolio_tx.worker.mark_table import MarkTable
from portfolio_tx.worker.stats import WorkerStats

# the worker's readers wait on the broker briefly: they run between the worker's polls
_SHORT_FETCH = {"fetch.wait.max.ms": 20}


def connect_store(settings: Settings) -> RedisStateStore:
    """A RedisStateStore that answered PING, in the mode its URL says (a ``redis://`` URL
    naming a cluster node is refused); StateStoreError with a fix otherwise: one line for a
    refused login or an untrusted certificate too, never with the password. It remembers no
parsed states: the worker and the commands keep what they need themselves."""
    url = settings.redis_url
    store = RedisStateStore.from_url(
        url,
        namespace=settings.redis_namespace,
        parsed_states=0,  # the worker keeps its sessions' states itself (worker.cache)
        **settings.redis_security.client_kwargs(url),
    )
    where = redacted_url(url)
    with (
        redis_errors(f"cannot reach Redis at {where}", fix="is it running? set REDIS_URL"),
        redis_refusals(where),
    ):
        store.client.ping()
    check_mode(store.client, url)
    return store


def build_worker(
    settings: Settings,
    store: RedisStateStore | None = None,
    *,
    before_kafka_commit: Callable[[WorkerStats], None] | None = None,
) -> Worker:
    """Check the topics, connect Redis and Kafka, and return a Worker ready to ``run``
    (``before_kafka_commit``: a test's hook, see ``Worker``).

    Raises KafkaSetupError (unreachable, topics missing or not co-partitioned) or
    StateStoreError (Redis unreachable) with one line saying what to do.
    """
    check_copartitioned(settings, settings.topics)
    store = store if store is not None else connect_store(settings)
    codec = Codec(settings.schema_registry_url)
    marks = MarkFeed(
        make_reader(settings, "marks", **_SHORT_FETCH),
        settings.topics.marks,
        codec,
        MarkTable(retention_ms=max(int(settings.max_mark_age_s * 4000), 3_600_000)),
        ends=make_reader(settings, "marks-ends"),
    )
    commit_log = CommitLog.open(
        settings,
        "commit-log",
        codec=codec,
        wait_s=settings.transaction_timeout_ms / 1000 + 15,
        **_SHORT_FETCH,
    )
    return Worker(
        settings,
        consumer=make_consumer(consumer_config(settings)),
        producer_factory=lambda: make_producer(producer_config(settings)),
        marks=marks,
        commit_log=commit_log,
        store=store,
        codec=codec,
        before_kafka_commit=before_kafka_commit,
    )
