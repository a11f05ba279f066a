"""An outcome record the broker keeps refusing: one diagnostic line naming the session and
the cycle, a metric, and the other partitions go on."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from pipeline import T0, Pipeline

from portfolio_tx.worker.build import build_worker


def test_an_outcome_refused_again_and_again_is_diagnosed_in_one_line(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    p = pipeline
    commits = p.settings.topics.commits
    admin = AdminClient({"bootstrap.servers": p.settings.bootstrap_servers})
    small = ConfigEntry("max.message.bytes", "100", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", commits, incremental_configs=[small])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    time.sleep(1)  # the broker applies topic configs asynchronously
    p.pnl("refused", 1, "TRANSFER", "100000", event_id="refused-fund")
    p.marker("refused", 1, 0, 1, ts=T0)
    p.flush()

    worker = build_worker(p.settings, store=p.store)
    caplog.set_level(logging.ERROR, logger="portfolio_tx.worker")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while sum(worker.stats.outcome_produce_errors.values()) < 3:
        assert time.monotonic() < deadline, worker.stats.summary()
        time.sleep(0.2)
    worker.stop()
    thread.join(timeout=60)

    lines = [r.getMessage() for r in caplog.records if "cannot be produced" in r.getMessage()]
    assert len(lines) == 1, lines  # one line, not one per retry
    assert "session refused cycle 1" in lines[0] and "MSG_SIZE_TOO_LARGE" in lines[0]
    assert worker.stats.outcome_produce_errors["MSG_SIZE_TOO_LARGE"] >= 3
