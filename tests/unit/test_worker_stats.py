"""WorkerStats as the metrics endpoint reads it: latency timed per committed transaction."""

from __future__ import annotations

import time

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from portfolio_tx.worker.metrics import registry_for
from portfolio_tx.worker.stats import WorkerStats


def samples(stats: WorkerStats) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry_for(stats)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("ptx_")
    }


def test_decision_latency_runs_from_the_marker_to_the_transaction_commit() -> None:
    stats = WorkerStats()
    stats.decision_staged(marked_at=10.0)
    stats.decision_staged(marked_at=10.25)
    stats.transaction_committed(now=10.3)
    latency = stats.latency()
    assert latency.count == 2
    assert abs(latency.total - 0.35) < 1e-9
    got = samples(stats)
    assert got[("ptx_decision_latency_seconds_bucket", (("le", "0.1"),))] == 1
    assert got[("ptx_decision_latency_seconds_bucket", (("le", "0.5"),))] == 2
    assert got[("ptx_decision_latency_seconds_count", ())] == 2


def test_decisions_of_an_aborted_transaction_are_not_timed() -> None:
    stats = WorkerStats()
    stats.decision_staged(marked_at=1.0)
    stats.transaction_aborted()
    stats.transaction_committed(now=5.0)
    assert stats.latency().count == 0


def test_lag_of_revoked_partitions_disappears_when_the_lag_is_replaced() -> None:
    stats = WorkerStats()
    stats.replace_lag({("fills", 0): 5, ("fills", 1): 2})
    stats.replace_lag({("fills", 1): 0})
    got = samples(stats)
    assert got[("ptx_consumer_lag", (("partition", "1"), ("topic", "fills")))] == 0
    assert ("ptx_consumer_lag", (("partition", "0"), ("topic", "fills"))) not in got


def test_counters_are_read_from_the_stats_the_loop_writes() -> None:
    stats = WorkerStats()
    stats.consumed["fills"] += 3
    stats.committed += 2
    stats.discarded["MISSING_MARK"] += 1
    stats.record_kafka_error("_TRANSPORT")
    got = samples(stats)
    assert got[("ptx_events_consumed_total", (("topic", "fills"),))] == 3
    assert got[("ptx_cycles_committed_total", ())] == 2
    assert got[("ptx_cycles_discarded_total", (("reason", "MISSING_MARK"),))] == 1
    assert got[("ptx_kafka_errors_total", (("kind", "_TRANSPORT"),))] == 1
    stats.committed += 1
    assert samples(stats)[("ptx_cycles_committed_total", ())] == 3


def test_laps_add_the_time_since_the_last_lap_to_their_phase() -> None:
    stats = WorkerStats()
    stats.lap()  # starts timing only
    time.sleep(0.02)
    stats.lap("route")
    stats.lap("decide")  # right after: next to nothing
    time.sleep(0.01)
    stats.lap("route")  # a second iteration adds to the first
    assert stats.phase_seconds["route"] >= 0.03
    assert stats.phase_seconds["decide"] < 0.01
    got = samples(stats)
    route = got[("ptx_iteration_seconds_total", (("phase", "route"),))]
    assert route == stats.phase_seconds["route"]
    assert stats.snapshot().phase_seconds == stats.phase_seconds
