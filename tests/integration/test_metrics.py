"""The worker's Prometheus endpoint, scraped while a real worker process decides real cycles."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from pipeline import Pipeline
from prometheus_client.parser import text_string_to_metric_families
from test_worker_worked_example import S, publish_worked_example

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_until(url: str, done: Callable[[Samples], bool], timeout: float = 60.0) -> Samples:
    """Scrape until ``done`` holds; the last scrape is returned either way (the asserts say
    what was wrong)."""
    deadline = time.monotonic() + timeout
    samples: Samples = {}
    while time.monotonic() < deadline:
        try:
            samples = scrape(url)
        except (urllib.error.URLError, ConnectionError):
            samples = {}
        if samples and done(samples):
            break
        time.sleep(0.3)
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def worker_with_metrics(pipeline: Pipeline) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    worker = pipeline.spawn_worker(PTX_METRICS_PORT=str(port))
    yield worker, f"http://127.0.0.1:{port}/metrics"
    if worker.poll() is None:
        worker.terminate()
        worker.wait(timeout=60)


def test_metrics_count_exactly_what_was_published_and_decided(
    pipeline: Pipeline, worker_with_metrics: tuple[subprocess.Popen[str], str]
) -> None:
    worker, url = worker_with_metrics
    publish_worked_example(pipeline)  # 6 cycles: 4 COMMIT, VALIDATION_FAILED, MISSING_MARK
    pipeline.publisher.raw(pipeline.settings.topics.fills, S, b"not avro")  # dead-lettered
    pipeline.flush()
    topics = pipeline.settings.topics

    samples = scrape_until(
        url,
        lambda s: (
            value(s, "ptx_cycles_committed_total") == 4
            and value(s, "ptx_decision_latency_seconds_count") == 6
            and value(s, "ptx_open_cycles") == 0
            and value(s, "ptx_consumer_lag", topic=topics.cycles, partition="0") is not None
        ),
    )

    assert worker.poll() is None, "the worker is still running while it is scraped"
    assert value(samples, "ptx_events_consumed_total", topic=topics.fills) == 9  # 8 + the bad one
    assert value(samples, "ptx_events_consumed_total", topic=topics.pnl) == 8
    assert value(samples, "ptx_events_consumed_total", topic=topics.cycles) == 6
    assert value(samples, "ptx_cycles_committed_total") == 4
    assert value(samples, "ptx_cycles_discarded_total", reason="VALIDATION_FAILED") == 1
    assert value(samples, "ptx_cycles_discarded_total", reason="MISSING_MARK") == 1
    assert value(samples, "ptx_dead_lettered_total") == 1
    assert value(samples, "ptx_transaction_aborts_total") == 0
    assert value(samples, "ptx_fenced_decisions_total") == 0
    assert value(samples, "ptx_open_cycles") == 0

    # one latency observation per decided cycle, each well under the cycle timeout
    assert value(samples, "ptx_decision_latency_seconds_count") == 6
    assert value(samples, "ptx_decision_latency_seconds_bucket", le="+Inf") == 6
    assert value(samples, "ptx_decision_latency_seconds_bucket", le="30.0") == 6
    assert 0 < (value(samples, "ptx_decision_latency_seconds_sum") or 0) < 6 * 30

    # lag per partition of every input topic, all read
    lags = {
        (dict(labels)["topic"], dict(labels)["partition"]): v
        for (name, labels), v in samples.items()
        if name == "ptx_consumer_lag"
    }
    partitions = [str(p) for p in range(3)]
    assert set(lags) == {(t, p) for t in topics.inputs() for p in partitions}
    assert set(lags.values()) == {0}

    assert not [
        n for (n, _) in samples if n in ("ptx_redis_errors_total", "ptx_kafka_errors_total")
    ]

    # where the iterations' wall time went, per step: every step of a committed transaction
    # was timed, and together they are no more than the worker has been alive
    phases = {
        dict(labels)["phase"]: v
        for (name, labels), v in samples.items()
        if name == "ptx_iteration_seconds_total"
    }
    assert set(phases) == {"route", "decide", "redis", "produce", "offsets", "commit"}
    assert all(v > 0 for v in phases.values()), phases
    alive = time.time() - (value(samples, "process_start_time_seconds") or 0)
    assert sum(phases.values()) < alive, (phases, alive)


def test_metrics_endpoint_listens_on_localhost_only(
    pipeline: Pipeline, worker_with_metrics: tuple[subprocess.Popen[str], str]
) -> None:
    _, url = worker_with_metrics
    assert scrape_until(url, lambda s: ("ptx_cycles_committed_total", ()) in s)
    other_loopback = url.replace("127.0.0.1", "127.0.0.2")  # on lo too, but another address
    with pytest.raises(urllib.error.URLError):
        scrape(other_loopback)
