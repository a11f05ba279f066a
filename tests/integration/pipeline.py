"""A test harness around one isolated pipeline: its own topics, group, Redis namespace."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from portfolio_tx.config import Settings
from portfolio_tx.kafka.admin import create_topics
from portfolio_tx.kafka.clients import common_config
from portfolio_tx.kafka.publisher import Publisher
from portfolio_tx.ledger import PnlKind, Side
from portfolio_tx.store import RedisStateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, MarkPrice, PnlEvent
from portfolio_tx.wire.outcomes import CycleOutcome
from portfolio_tx.wire.topics import TopicNames
from portfolio_tx.worker.build import build_worker
from portfolio_tx.worker.stats import WorkerStats

ROOT = Path(__file__).resolve().parents[2]
KILLED_WORKER = Path(__file__).resolve().parent / "killed_worker.py"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, epoch ms


@dataclass
class Pipeline:
    settings: Settings
    store: RedisStateStore
    publisher: Publisher
    codec: Codec = field(default_factory=Codec)
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))

    # -- upstream --------------------------------------------------------------------------

    def fill(
        self,
        session: str,
        cycle: int,
        symbol: str,
        side: str,
        qty: str,
        price: str,
        fee: str,
        *,
        event_id: str | None = None,
        ts: int = T0,
    ) -> str:
        event_id = event_id or f"f-{next(self._ids)}"
        self.publisher.publish(
            Fill(
                event_id,
                session,
                cycle,
                symbol,
                Side(side),
                Decimal(qty),
                Decimal(price),
                Decimal(fee),
                ts,
            )
        )
        return event_id

    def pnl(
        self,
        session: str,
        cycle: int,
        kind: str,
        amount: str,
        *,
        event_id: str | None = None,
        ts: int = T0,
    ) -> str:
        event_id = event_id or f"p-{next(self._ids)}"
        event = PnlEvent(event_id, session, cycle, PnlKind(kind), Decimal(amount), ts)
        self.publisher.publish(event)
        return event_id

    def marker(self, session: str, cycle: int, fills: int, pnl: int, *, ts: int = T0) -> None:
        self.publisher.publish(CycleMarker(session, cycle, fills, pnl, ts))

    def mark(self, symbol: str, price: str, *, ts: int = T0) -> None:
        self.publisher.publish(MarkPrice(symbol, Decimal(price), ts))

    def flush(self) -> None:
        self.publisher.flush()

    # -- the worker ------------------------------------------------------------------------

    def run_worker(self, **run: Any) -> WorkerStats:
        """Run a worker in this thread until idle (default 3 s) or ``max_cycles``."""
        run.setdefault("until_idle", 3.0)
        worker = build_worker(self.settings, store=self.store)
        return worker.run(**run)

    def run_worker_publishing(
        self,
        caplog: pytest.LogCaptureFixture,
        when: str,
        publish: Callable[[], None],
        wait_s: float = 30.0,
    ) -> None:
        """Run a worker until idle, its log captured at INFO; once the log says ``when`` (or
        after ``wait_s``), another thread calls ``publish`` and flushes."""

        def later() -> None:
            deadline = time.monotonic() + wait_s
            while when not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.1)
            publish()
            self.flush()

        publisher = threading.Thread(target=later)
        publisher.start()
        try:
            with caplog.at_level(logging.INFO, logger="portfolio_tx.worker"):
                self.run_worker(until_idle=3.0)
        finally:
            publisher.join()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment that makes ``portfolio-tx`` talk to this pipeline."""
        s = self.settings
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers,
            "REDIS_URL": s.redis_url,
            "PTX_TOPIC_PREFIX": s.topics.fills.removesuffix("portfolio.fills"),
            "PTX_GROUP_ID": s.group_id,
            "PTX_INSTANCE_ID": s.instance_id,
            "PTX_REDIS_NAMESPACE": s.redis_namespace,
            "PTX_CYCLE_TIMEOUT": str(s.cycle_timeout_s),
            "PTX_MAX_MARK_AGE": str(s.max_mark_age_s),
            **extra,
        }

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "portfolio_tx", *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def spawn_worker(
        self, *, kill_after_decisions: int | None = None, **extra: str
    ) -> subprocess.Popen[str]:
        """``portfolio-tx worker``; with ``kill_after_decisions``, a worker that SIGKILLs
        itself between a batch's Redis write and its Kafka commit (``killed_worker.py``)."""
        command = [sys.executable, "-m", "portfolio_tx", "worker"]
        if kill_after_decisions is not None:
            command = [sys.executable, str(KILLED_WORKER), str(kill_after_decisions)]
        return subprocess.Popen(
            command,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    # -- reading back ----------------------------------------------------------------------

    def read(self, topic: str, expected: int, timeout: float = 60.0) -> list[Any]:
        """Every record of ``topic`` as a read_committed reader sees it; waits for
        ``expected`` records, then keeps reading briefly so that extra ones show up."""
        consumer = Consumer(
            {
                **common_config(self.settings),  # a secured pipeline reads as its principal
                "group.id": f"{self.settings.group_id}-reader-{time.monotonic_ns()}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        meta = consumer.list_topics(topic, timeout=10)
        consumer.assign([TopicPartition(topic, p, -2) for p in meta.topics[topic].partitions])
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        settle: float | None = None
        try:
            while time.monotonic() < deadline:
                for message in consumer.consume(500, timeout=0.2):
                    if message.error() is None:
                        records.append(message)
                if len(records) >= expected:
                    settle = settle or time.monotonic() + 1.0
                    if time.monotonic() > settle:
                        break
        finally:
            consumer.close()
        return records

    def outcomes(self, expected: int, timeout: float = 60.0) -> list[CycleOutcome]:
        topic = self.settings.topics.commits
        return [
            self.codec.decode(
                m.value(),
                topic=topic,
                partition=m.partition(),
                offset=m.offset(),
                expected=CycleOutcome,
            )
            for m in self.read(topic, expected, timeout)
        ]

    def dead_letters(self, expected: int, timeout: float = 60.0) -> list[Any]:
        return self.read(self.settings.topics.deadletter, expected, timeout)


def make_pipeline(
    bootstrap_servers: str, redis_url: str, prefix: str, *, partitions: int = 3, **overrides: Any
) -> tuple[Pipeline, Callable[[], None]]:
    topics = TopicNames.with_prefix(prefix)
    create_topics(bootstrap_servers, topics, partitions)
    settings = Settings(
        bootstrap_servers=bootstrap_servers,
        redis_url=redis_url,
        topics=topics,
        group_id=f"{prefix}group",
        instance_id=f"{prefix}worker",
        redis_namespace=prefix.rstrip("."),
        cycle_timeout_s=3.0,
        max_mark_age_s=300.0,
    )
    settings = replace(settings, **overrides)
    store = RedisStateStore.from_url(redis_url, namespace=settings.redis_namespace)
    pipeline = Pipeline(settings, store, Publisher(bootstrap_servers, topics))

    def cleanup() -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap_servers})
        for future in admin.delete_topics(list(topics.all()), operation_timeout=30).values():
            with contextlib.suppress(Exception):  # best effort
                future.result(timeout=30)
        for key in store.client.scan_iter(match=f"{settings.redis_namespace}:*", count=1000):
            store.client.delete(key)

    return pipeline, cleanup
