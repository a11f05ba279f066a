"""Prometheus metrics for library users, on the registry the caller passes in (off by default).

    portfolio_transaction(store, "s-1", metrics=registry)   # or metrics=TransactionMetrics(...)

Exposed (prefix ``ptx_library`` unless another is given)::

    ptx_library_commits_total                 transactions decided COMMIT
    ptx_library_discards_total{reason}        transactions decided DISCARD, per discard reason
    ptx_library_conflicts_total               commits that lost the race (ConcurrentModification)
    ptx_library_delta_epsilon_ratio           histogram of |Δ|/ε of the decisions that were valued
                                              (≤ 1 commits); not observed when ε = 0 and Δ ≠ 0
    ptx_library_commit_latency_seconds        histogram: commit() called -> store write done

A decision the store had already made (a fenced ``cycle_id``) is not counted again. The
worker has its own endpoint (``portfolio_tx.worker.metrics``); these are for library callers.
The metric objects are registered once per registry: passing the same registry to many
transactions reuses them.
"""

from __future__ import annotations

import decimal
import threading
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Histogram

from portfolio_tx.errors import ConfigError
from portfolio_tx.ledger import LEDGER_CONTEXT, DiscardReason
from portfolio_tx.store.port import Applied

RATIO_BUCKETS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.5, 2.0, 5.0, 10.0, 100.0)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_VALUED = (None, DiscardReason.VALIDATION_FAILED)


class TransactionMetrics:
    """The library's metric objects on one registry."""

    def __init__(self, registry: CollectorRegistry, *, prefix: str = "ptx_library") -> None:
        self.registry = registry
        self.commits = Counter(
            f"{prefix}_commits", "Library transactions decided COMMIT.", registry=registry
        )
        self.discards = Counter(
            f"{prefix}_discards",
            "Library transactions decided DISCARD, per reason.",
            ["reason"],
            registry=registry,
        )
        self.conflicts = Counter(
            f"{prefix}_conflicts",
            "Library commits that lost the optimistic-lock race.",
            registry=registry,
        )
        self.delta_ratio = Histogram(
            f"{prefix}_delta_epsilon_ratio",
            "|delta| / epsilon of the valued decisions (at most 1 commits).",
            buckets=RATIO_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            f"{prefix}_commit_latency_seconds",
            "Seconds from commit() called to the store write done.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, applied: Applied, seconds: float) -> None:
        """Count one decision the store applied (fenced ones are not counted again)."""
        if applied.fenced:
            return
        decision = applied.decision
        if decision.committed:
            self.commits.inc()
        else:
            self.discards.labels(reason=str(decision.reason)).inc()
        if decision.reason in _VALUED:
            ratio = delta_epsilon_ratio(decision.delta, decision.epsilon)
            if ratio is not None:
                self.delta_ratio.observe(ratio)
        self.latency.observe(seconds)

    def conflict(self) -> None:
        self.conflicts.inc()


def delta_epsilon_ratio(delta: decimal.Decimal, epsilon: decimal.Decimal) -> float | None:
    """|Δ|/ε as a float for the histogram; None when ε = 0 and Δ ≠ 0 (no finite ratio)."""
    if epsilon.is_zero():
        return 0.0 if delta.is_zero() else None
    return float(LEDGER_CONTEXT.divide(abs(delta), epsilon))


_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, TransactionMetrics] = WeakKeyDictionary()
_LOCK = threading.Lock()


def metrics_for(metrics: object) -> TransactionMetrics | None:
    """None (off), a TransactionMetrics as given, or the one of a registry (made once)."""
    if metrics is None or isinstance(metrics, TransactionMetrics):
        return metrics
    if isinstance(metrics, CollectorRegistry):
        with _LOCK:
            found = _BY_REGISTRY.get(metrics)
            if found is None:
                found = _BY_REGISTRY[metrics] = TransactionMetrics(metrics)
            return found
    raise ConfigError(
        f"metrics= takes a prometheus_client CollectorRegistry or a TransactionMetrics, "
        f"not {type(metrics).__name__}"
    )
