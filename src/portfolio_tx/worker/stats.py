"""Counters the worker keeps: the one record the demo's summary, the tests and the Prometheus
endpoint (``portfolio_tx.worker.metrics``) all read, so no two of them can disagree.

Written only by the worker's loop thread. Other threads (the metrics endpoint) read it through
``snapshot()``, which copies every field; copying a dict is atomic under the GIL, so a scrape
never sees a counter half-updated and never raises "changed size during iteration".
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka import Consumer

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)
"""Upper bounds (seconds) of the decision-latency histogram; +Inf is implied."""


@dataclass(frozen=True, slots=True)
class LatencySnapshot:
    """A cumulative histogram: ``counts[i]`` observations ≤ ``LATENCY_BUCKETS[i]``."""

    counts: tuple[int, ...]
    count: int
    total: float


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """A consistent copy of WorkerStats, safe to read on another thread."""

    consumed: dict[str, int]
    committed: int
    discarded: dict[str, int]
    dead_lettered: int
    duplicates: int
    redelivered: int
    fenced: int
    aborted_transactions: int
    transactions: int
    restored_sessions: int
    repaired_sessions: int
    residual_abs: Decimal
    residual_cycles: int
    open_cycles: int
    refused: int
    buffered_bytes: int
    paused_partitions: int
    outcome_produce_errors: dict[str, int]
    lag: dict[tuple[str, int], int]
    redis_errors: dict[str, int]
    kafka_errors: dict[str, int]
    latency: LatencySnapshot
    phase_seconds: dict[str, float]


@dataclass(slots=True)
class WorkerStats:
    consumed: Counter[str] = field(default_factory=Counter)  # per topic
    committed: int = 0
    discarded: Counter[str] = field(default_factory=Counter)  # per reason
    dead_lettered: int = 0
    duplicates: int = 0
    redelivered: int = 0
    fenced: int = 0
    aborted_transactions: int = 0
    transactions: int = 0
    open_cycles: int = 0  # staged, not yet decided (set by the loop after each iteration)
    restored_sessions: int = 0  # rebuilt from the commit topic after the store lost them
    refused: int = 0  # events dead-lettered because their cycle is past a limit
    buffered_bytes: int = 0  # gauge: events buffered in open cycles (set by the loop)
    paused_partitions: int = 0  # gauge: input partitions paused at the buffer limit
    outcome_produce_errors: Counter[str] = field(default_factory=Counter)  # per error name
    repaired_sessions: int = 0  # rebuilt because the store held them older than the topic
    residual_abs: Decimal = Decimal(0)  # Σ |Δ| accepted within ε by the committed cycles
    residual_cycles: int = 0  # committed cycles with Δ ≠ 0
    lag: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> lag
    redis_errors: Counter[str] = field(default_factory=Counter)  # per error kind
    kafka_errors: Counter[str] = field(default_factory=Counter)  # per KafkaError name
    _latency_buckets: list[int] = field(
        default_factory=lambda: [0] * len(LATENCY_BUCKETS), init=False, repr=False
    )
    _latency_count: int = field(default=0, init=False, repr=False)
    _latency_sum: float = field(default=0.0, init=False, repr=False)
    # wall seconds of the iterations, per phase (see ``lap``): where an iteration's time goes
    phase_seconds: dict[str, float] = field(default_factory=dict)
    _pending_marked_at: list[float] = field(default_factory=list, init=False, repr=False)
    _lap_at: float = field(default=0.0, init=False, repr=False)

    @property
    def decided(self) -> int:
        return self.committed + sum(self.discarded.values())

    # -- hooks the loop calls --------------------------------------------------------------

    def committed_with(self, delta: Decimal) -> None:
        """A COMMIT decided with ``delta`` (accepted within ε)."""
        self.committed += 1
        if delta:
            self.residual_cycles += 1
            self.residual_abs += abs(delta)

    def decision_staged(self, marked_at: float) -> None:
        """A cycle whose marker arrived at ``marked_at`` (monotonic s) was decided in the
        open Kafka transaction; its latency is recorded when that transaction commits."""
        self._pending_marked_at.append(marked_at)

    def transaction_committed(self, now: float) -> None:
        """The Kafka transaction committed at ``now``: its decisions are now visible."""
        pending, self._pending_marked_at = self._pending_marked_at, []
        for marked_at in pending:
            self.observe_decision_latency(max(now - marked_at, 0.0))

    def lap(self, phase: str | None = None) -> None:
        """Add the wall time since the last lap to ``phase`` (None: only start timing). The
        loop and the commit protocol lap at the end of each step of an iteration: route,
        decide, redis, produce, offsets, commit."""
        now = time.perf_counter()
        if phase is not None:
            self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + (now - self._lap_at)
        self._lap_at = now

    def transaction_aborted(self) -> None:
        """The open transaction was aborted: its decisions will be made (and timed) again."""
        self._pending_marked_at = []

    def observe_decision_latency(self, seconds: float) -> None:
        index = bisect_left(LATENCY_BUCKETS, seconds)
        if index < len(self._latency_buckets):
            self._latency_buckets[index] += 1
        self._latency_count += 1
        self._latency_sum += seconds

    def set_open_cycles(self, count: int) -> None:
        self.open_cycles = count

    def record_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag[(topic, partition)] = max(lag, 0)

    def replace_lag(self, lags: dict[tuple[str, int], int]) -> None:
        """Every assigned partition's lag at once (revoked partitions disappear)."""
        self.lag = {where: max(lag, 0) for where, lag in lags.items()}

    def record_redis_error(self, kind: str) -> None:
        self.redis_errors[kind] += 1

    def record_kafka_error(self, kind: str) -> None:
        self.kafka_errors[kind] += 1

    # -- readers ---------------------------------------------------------------------------

    def latency(self) -> LatencySnapshot:
        cumulative: list[int] = []
        running = 0
        for count in list(self._latency_buckets):
            running += count
            cumulative.append(running)
        return LatencySnapshot(tuple(cumulative), self._latency_count, self._latency_sum)

    def snapshot(self) -> StatsSnapshot:
        return StatsSnapshot(
            consumed=dict(self.consumed),
            committed=self.committed,
            discarded=dict(self.discarded),
            dead_lettered=self.dead_lettered,
            duplicates=self.duplicates,
            redelivered=self.redelivered,
            fenced=self.fenced,
            aborted_transactions=self.aborted_transactions,
            transactions=self.transactions,
            restored_sessions=self.restored_sessions,
            repaired_sessions=self.repaired_sessions,
            residual_abs=self.residual_abs,
            residual_cycles=self.residual_cycles,
            open_cycles=self.open_cycles,
            refused=self.refused,
            buffered_bytes=self.buffered_bytes,
            paused_partitions=self.paused_partitions,
            outcome_produce_errors=dict(self.outcome_produce_errors),
            lag=dict(self.lag),
            redis_errors=dict(self.redis_errors),
            kafka_errors=dict(self.kafka_errors),
            latency=self.latency(),
            phase_seconds=dict(self.phase_seconds),
        )

    def summary(self) -> dict[str, object]:
        return {
            "consumed": dict(self.consumed),
            "committed": self.committed,
            "discarded": dict(self.discarded),
            "dead_lettered": self.dead_lettered,
            "duplicates": self.duplicates,
            "redelivered": self.redelivered,
            "fenced": self.fenced,
            "aborted_transactions": self.aborted_transactions,
            "transactions": self.transactions,
            "restored_sessions": self.restored_sessions,
            "refused": self.refused,
            "outcome_produce_errors": dict(self.outcome_produce_errors),
            "repaired_sessions": self.repaired_sessions,
            "residual_abs": str(self.residual_abs),
            "residual_cycles": self.residual_cycles,
            "redis_errors": dict(self.redis_errors),
            "kafka_errors": dict(self.kafka_errors),
        }


def record_consumer_lag(stats: WorkerStats, consumer: Consumer) -> None:
    """Measure every assigned partition's lag without a broker round trip and store it.

    Lag = the high watermark librdkafka cached from the last fetch (the last stable offset
    under read_committed) − the consumer's position. A partition nothing was read from yet
    has no position: its lag is 0 when it is empty (low = high), else unknown until its first
    record is read, and it is left out, as is one without a fetched watermark. Call it on the
    thread that polls the consumer.
    """
    lags: dict[tuple[str, int], int] = {}
    assigned = consumer.assignment()
    if assigned:
        for tp in consumer.position(assigned):
            marks = consumer.get_watermark_offsets(tp, cached=True)
            if marks is None or marks[1] < 0:
                continue
            low, high = marks
            if tp.offset >= 0:
                lags[(tp.topic, tp.partition)] = high - tp.offset
            elif low == high:
                lags[(tp.topic, tp.partition)] = 0
    stats.replace_lag(lags)
