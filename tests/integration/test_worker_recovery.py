"""Crashes, restarts and a lost Redis: still exactly one outcome per cycle, state applied once."""

from __future__ import annotations

import json
import signal
import time

from pipeline import Pipeline
from test_worker_worked_example import S, publish_worked_example

from portfolio_tx.ledger import OutcomeKind

EXPECTED = [
    (1, OutcomeKind.COMMIT),
    (2, OutcomeKind.COMMIT),
    (3, OutcomeKind.DISCARD),
    (4, OutcomeKind.COMMIT),
    (5, OutcomeKind.DISCARD),
    (6, OutcomeKind.COMMIT),
]
FINAL = {"cash": "70934.6", "equity": "101934.6", "realized_pnl": "987.5", "fees": "52.9"}


def _final_state_matches(p: Pipeline) -> None:
    shown = p.cli("state", S, "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert {k: document[k] for k in FINAL} == FINAL
    assert document["version"] == 4 and document["last_cycle"] == 6


def test_sigkill_after_the_redis_write_before_the_kafka_commit_publishes_once(
    pipeline: Pipeline,
) -> None:
    publish_worked_example(pipeline)
    first = pipeline.spawn_worker(kill_after_decisions=3)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == -signal.SIGKILL, out
    snapshot = pipeline.store.load(S)
    assert snapshot.last_decided is not None and snapshot.last_decided >= 3
    assert snapshot.published_through is None  # decided in Redis, never published

    stats = pipeline.run_worker(until_idle=3.0)
    assert stats.fenced >= 3  # the decided cycles were re-published, not re-decided
    outcomes = pipeline.outcomes(expected=6)
    assert [(o.cycle_id, o.outcome) for o in outcomes] == EXPECTED
    _final_state_matches(pipeline)


def test_sigterm_finishes_the_open_transaction_and_exits_zero(pipeline: Pipeline) -> None:
    publish_worked_example(pipeline)
    worker = pipeline.spawn_worker()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (pipeline.store.load(S).last_decided or 0) < 6:
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out
    assert "Traceback" not in out
    assert [(o.cycle_id, o.outcome) for o in pipeline.outcomes(expected=6)] == EXPECTED


def test_a_flushed_redis_is_restored_from_the_commit_topic_before_deciding(
    pipeline: Pipeline,
) -> None:
    publish_worked_example(pipeline)
    pipeline.run_worker(max_cycles=6)
    namespace = pipeline.settings.redis_namespace
    lost = list(pipeline.store.client.scan_iter(match=f"{namespace}:*"))
    assert lost
    pipeline.store.client.delete(*lost)  # what FLUSHALL does to this namespace
    assert pipeline.store.load(S).state.version == 0

    pipeline.fill(S, 7, "ETH/USDT", "SELL", "10", "3200", "3", event_id="c7-f")
    pipeline.pnl(S, 7, "REALIZED", "2000", event_id="c7-r")
    pipeline.marker(S, 7, 1, 1, ts=pipeline_ts(7))
    pipeline.flush()
    stats = pipeline.run_worker(until_idle=3.0)

    assert stats.restored_sessions == 1 and stats.committed == 1
    outcomes = pipeline.outcomes(expected=7)
    assert [o.cycle_id for o in outcomes] == [1, 2, 3, 4, 5, 6, 7]
    last = outcomes[-1]
    assert last.committed and last.version == 5 and last.total == last.cash
    state = pipeline.store.load(S).state
    assert state.version == 5 and not state.lots and state.realized_pnl == last.realized_pnl


def pipeline_ts(cycle: int) -> int:
    from pipeline import T0

    return T0 + cycle * 60_000
