"""The worker's Prometheus endpoint (``portfolio-tx worker --metrics-port N``).

A custom collector renders ``WorkerStats`` at scrape time instead of keeping a second set of
prometheus Counters beside it: WorkerStats stays the single record the loop writes (the demo
summary and the tests read the same numbers), so an exported counter cannot drift from it,
and the loop does not depend on prometheus_client. The price is one ``snapshot()`` copy per
scrape, a few dicts.

Exposed (every name prefixed ``ptx_``)::

    events_consumed_total{topic}          input records read (fills, pnl, cycles)
    cycles_committed_total                cycles decided COMMIT
    cycles_discarded_total{reason}        cycles decided DISCARD, per discard reason
    dead_lettered_total                   records sent to the dead-letter topic
    duplicate_events_total                events counted once within their cycle
    redelivered_events_total              events of decided cycles skipped quietly
    fenced_decisions_total                cycles found already decided in Redis
    transactions_total                    Kafka transactions committed
    restored_sessions_total               sessions restored from the commit topic (Redis lost)
    repaired_sessions_total               sessions restored because Redis held them older
                                          than the commit topic (went back in time)
    residual_abs_total                    Σ |Δ| accepted within ε by committed cycles
    cycles_with_residual_total            committed cycles whose Δ was not 0
    transaction_aborts_total              Kafka transactions aborted
    redis_errors_total{kind}              Redis errors the worker met
    kafka_errors_total{kind}              Kafka errors the worker met (KafkaError name)
    decision_latency_seconds              histogram: marker consumed -> outcome committed
    open_cycles                           gauge: cycles staged, not yet decided
    refused_events_total                  events dead-lettered: their cycle is past a limit
    outcome_produce_errors_total{kind}    failed attempts to produce an outcome record
    buffered_bytes                        gauge: bytes of events buffered in open cycles
    paused_partitions                     gauge: input partitions paused at the buffer limit
    consumer_lag{topic,partition}         gauge: records behind the last stable offset
    iteration_seconds_total{phase}        wall seconds of the loop's iterations per step:
                                          route, decide (incl. the marks catch-up), redis,
                                          produce, offsets, commit (the rest is waiting
                                          for input)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from portfolio_tx.errors import ConfigError
from portfolio_tx.worker.stats import LATENCY_BUCKETS, WorkerStats

PREFIX = "ptx"


class WorkerCollector(Collector):
    """Renders one WorkerStats as Prometheus metric families on every scrape."""

    def __init__(self, stats: WorkerStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats.snapshot()

        consumed = _counter("events_consumed", "Input records read, per topic.", ["topic"])
        for topic, count in sorted(s.consumed.items()):
            consumed.add_metric([topic], count)
        yield consumed

        yield _total("cycles_committed", "Cycles decided COMMIT.", s.committed)
        discarded = _counter("cycles_discarded", "Cycles decided DISCARD, per reason.", ["reason"])
        for reason, count in sorted(s.discarded.items()):
            discarded.add_metric([reason], count)
        yield discarded

        yield _total("dead_lettered", "Records sent to the dead-letter topic.", s.dead_lettered)
        yield _total("duplicate_events", "Duplicate events counted once.", s.duplicates)
        yield _total("redelivered_events", "Events of decided cycles skipped.", s.redelivered)
        yield _total("fenced_decisions", "Cycles found already decided in Redis.", s.fenced)
        yield _total("transactions", "Kafka transactions committed.", s.transactions)
        yield _total(
            "restored_sessions", "Sessions restored from the commit topic.", s.restored_sessions
        )
        yield _total(
            "repaired_sessions",
            "Sessions restored because Redis held them older than the commit topic.",
            s.repaired_sessions,
        )
        yield _total(
            "residual_abs",
            "Sum of |delta| accepted within epsilon by committed cycles (currency units).",
            float(s.residual_abs),
        )
        yield _total(
            "cycles_with_residual",
            "Committed cycles whose delta was not zero.",
            s.residual_cycles,
        )
        yield _total("transaction_aborts", "Kafka transactions aborted.", s.aborted_transactions)
        yield _total("refused_events", "Events of cycles past a limit, dead-lettered.", s.refused)
        for name, doc, by_kind in (
            ("redis_errors", "Redis errors, per kind.", s.redis_errors),
            ("kafka_errors", "Kafka errors, per KafkaError name.", s.kafka_errors),
            (
                "outcome_produce_errors",
                "Failed attempts to produce an outcome record, per KafkaError name.",
                s.outcome_produce_errors,
            ),
        ):
            family = _counter(name, doc, ["kind"])
            for kind, count in sorted(by_kind.items()):
                family.add_metric([kind], count)
            yield family

        latency = s.latency
        buckets = [
            (_bound(bound), count)
            for bound, count in zip(LATENCY_BUCKETS, latency.counts, strict=True)
        ]
        buckets.append(("+Inf", latency.count))
        yield HistogramMetricFamily(
            f"{PREFIX}_decision_latency_seconds",
            "Seconds from a cycle's marker consumed to its outcome committed on Kafka.",
            buckets=buckets,
            sum_value=latency.total,
        )

        phases = _counter("iteration_seconds", "Wall seconds of iterations, per step.", ["phase"])
        for phase, seconds in sorted(s.phase_seconds.items()):
            phases.add_metric([phase], seconds)
        yield phases

        yield GaugeMetricFamily(
            f"{PREFIX}_open_cycles", "Cycles staged and not yet decided.", value=s.open_cycles
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_buffered_bytes", "Bytes of events buffered.", value=s.buffered_bytes
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_paused_partitions",
            "Input partitions paused at the buffer limit.",
            value=s.paused_partitions,
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag",
            "Records between the consumer's position and the partition's last stable offset.",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(s.lag.items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)


def _total(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _bound(bound: float) -> str:
    return repr(float(bound))


def registry_for(stats: WorkerStats) -> CollectorRegistry:
    """A registry with the worker's metrics and the standard ``process_*`` ones."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(stats))
    ProcessCollector(registry=registry)
    return registry


@dataclass(slots=True)
class MetricsServer:
    """The running endpoint; ``close()`` stops it."""

    host: str
    port: int
    _server: WSGIServer
    _thread: Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(stats: WorkerStats, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``stats`` at http://HOST:PORT/metrics on a daemon thread.

    Raises ConfigError with the fix when the address cannot be bound (port in use, ...).
    """
    try:
        server, thread = start_http_server(port, addr=host, registry=registry_for(stats))
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}) — choose another "
            "--metrics-port (PTX_METRICS_PORT), or 0 to turn metrics off"
        ) from exc
    return MetricsServer(host, server.server_address[1], server, thread)
