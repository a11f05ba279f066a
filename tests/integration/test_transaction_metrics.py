"""Library metrics against the real Redis, on a registry the caller passes in."""

from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from portfolio_tx import (
    ConcurrentModificationError,
    PortfolioTransaction,
    RedisStateStore,
    portfolio_transaction,
)

BTC = "BTC/USDT"


def test_commits_discards_ratio_and_latency_are_counted(store: RedisStateStore) -> None:
    registry = CollectorRegistry()
    s = "metrics"

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    with portfolio_transaction(store, s, metrics=registry) as tx:  # Δ 0, ε 1: ratio 0
        tx.stage_transfer("1000")
        assert tx.commit({})
    with portfolio_transaction(store, s, metrics=registry) as tx:  # Δ −3, ε 1: ratio 3
        tx.stage_realized_pnl_delta("3")
        assert not tx.commit({})
    with portfolio_transaction(store, s, metrics=registry) as tx:  # not valued
        tx.stage_fill(BTC, "BUY", "0.01", "100", "0")
        assert not tx.commit({})
    loser = PortfolioTransaction(store, s, metrics=registry)
    with portfolio_transaction(store, s, metrics=registry) as tx:
        tx.stage_transfer("1")
        assert tx.commit({})
    loser.stage_transfer("2")
    with pytest.raises(ConcurrentModificationError):
        loser.commit({})

    assert sample("ptx_library_commits_total") == 2
    assert sample("ptx_library_discards_total", reason="VALIDATION_FAILED") == 1
    assert sample("ptx_library_discards_total", reason="MISSING_MARK") == 1
    assert sample("ptx_library_conflicts_total") == 1
    assert sample("ptx_library_delta_epsilon_ratio_count") == 3
    assert sample("ptx_library_delta_epsilon_ratio_bucket", le="0.0") == 2
    assert sample("ptx_library_delta_epsilon_ratio_bucket", le="2.0") == 2
    assert sample("ptx_library_delta_epsilon_ratio_bucket", le="5.0") == 3
    assert sample("ptx_library_delta_epsilon_ratio_sum") == 3.0
    assert sample("ptx_library_commit_latency_seconds_count") == 4
    latency = sample("ptx_library_commit_latency_seconds_sum")
    assert latency is not None and 0 < latency < 5


def test_metrics_are_off_by_default(store: RedisStateStore) -> None:
    with portfolio_transaction(store, "quiet") as tx:
        tx.stage_transfer("1")
        assert tx.commit({})
    assert prometheus_client.REGISTRY.get_sample_value("ptx_library_commits_total") is None
