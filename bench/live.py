"""The live scenarios: latency at a steady load, and memory with many open cycles.

Latency: a paced publisher sends a fresh workload at ``rate`` input events/s (marks besides)
to a running worker and notes the wall time at which it published each marker; a reader in
a separate process (``python bench/live.py reader ...``) reads the commits topic
read_committed and notes when each outcome became visible. Latency = visible - published,
matched by (session, cycle).

Memory: 10,000 sessions each with an open cycle (10 fills + 2 reports, markers withheld);
once the worker has consumed them all (its metrics endpoint says so), its peak RSS is read
from /proc/<pid>/status (VmHWM).
"""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from harness import BENCH, Stack, WorkerSpec, clear_redis, create, run_topics, start_worker
from workload import KINDS, Shape, build

from portfolio_tx.kafka.clients import plain_producer_config
from portfolio_tx.wire.topics import TopicNames


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latency_run(stack: Stack, prefix: str, partitions: int, rate: float, duration: float,
                logs: Path, *, warmup: float = 10.0, patches: str = "",
                env: dict[str, str] | None = None, name: str = "lat") -> dict[str, float]:
    """Publish at ``rate`` for ``warmup`` + ``duration`` seconds; percentiles over the
    markers published after the warm-up (the worker's first iterations restore its
    partitions and load every session from Redis once)."""
    from confluent_kafka import Producer

    shape = Shape(cycles=max(2, math.ceil(rate * (duration + warmup) / 13 / 1000)),
                  prefix=f"L{int(rate)}-")
    workload = build(shape)
    inputs = TopicNames.with_prefix(f"{prefix}{name}.")
    create(stack, inputs, partitions)
    topics = run_topics(inputs, "out")
    create(stack, topics, partitions)
    namespace = f"{prefix}{name}"
    clear_redis(stack, namespace)
    port = _free_port()
    worker = start_worker(WorkerSpec(stack, topics, f"{namespace}.group", f"{name}-0",
                                     namespace, env={"PTX_METRICS_PORT": str(port),
                                                     **(env or {})},
                                     patches=patches), logs)
    out = logs / f"{name}-seen.jsonl"
    reader = subprocess.Popen(
        [sys.executable, str(BENCH / "live.py"), "reader", stack.bootstrap, topics.commits,
         str(workload.cycles), str(out)], stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None
    reader.stdout.readline()  # "ready"
    deadline = time.monotonic() + 60
    while worker.assigned_at(inputs.cycles) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the worker's first iteration (partition restore) is not steady state
    names = (inputs.fills, inputs.pnl, inputs.cycles, inputs.marks)
    producer = Producer(plain_producer_config(stack.bootstrap))
    markers = {index: (session, cycle) for index, session, cycle in workload.markers}
    published: dict[tuple[str, int], float] = {}
    cycles_kind = KINDS.index("cycles")
    marks_kind = KINDS.index("marks")
    sent = 0
    start = time.time()
    phases_at: list[tuple[float, dict[str, float]]] = []
    for index, (kind, key, value) in enumerate(workload.records):
        if not phases_at and time.time() >= start + warmup:
            phases_at.append((time.monotonic(), _phases(port)))
        if kind != marks_kind:
            due = start + sent / rate
            sent += 1
            wait = due - time.time()
            if wait > 0.002:
                time.sleep(wait)
        producer.produce(names[kind], key=key.encode(), value=value)
        if kind == cycles_kind:
            published[markers[index]] = time.time()
        producer.poll(0)
    producer.flush(30)
    achieved = sent / (time.time() - start)
    reader.wait(timeout=120)
    phases_at.append((time.monotonic(), _phases(port)))
    worker.stop()
    seen = {}
    for line in out.read_text().splitlines():
        session, cycle, at = json.loads(line)
        seen[(session, cycle)] = at
    steady = {k: t for k, t in published.items() if t >= start + warmup}
    latencies = [(seen[k] - t) * 1000 for k, t in steady.items() if k in seen]
    clear_redis(stack, namespace)
    return {
        "rate": achieved,
        "outcomes": len(latencies),
        "cycles": len(steady),
        "missing": sum(1 for k in published if k not in seen),
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "p999": _percentile(latencies, 0.999),
        "max": max(latencies) if latencies else float("nan"),
        **_phase_shares(phases_at),
    }


def _phases(port: int) -> dict[str, float]:
    """The worker's ``ptx_iteration_seconds_total`` per phase ({} if it did not answer)."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return {}
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^ptx_iteration_seconds_total{phase="(\w+)"} (\S+)$', text.decode(), re.MULTILINE)}


def _step(steps: tuple[str, ...]) -> Callable[[str], int]:
    return lambda name: steps.index(name) if name in steps else len(steps)


def _phase_shares(phases_at: list[tuple[float, dict[str, float]]]) -> dict[str, object]:
    """Between the end of the warm-up and the end of the run: the share of the worker's wall
    time each step of its iterations took; the rest it spent waiting for input."""
    if len(phases_at) < 2 or not phases_at[0][1] or not phases_at[-1][1]:
        return {}
    (t0, first), (t1, last) = phases_at[0], phases_at[-1]
    span = t1 - t0
    steps = ("route", "decide", "redis", "produce", "offsets", "commit")
    shares = {k: (last[k] - first.get(k, 0.0)) / span for k in sorted(last, key=_step(steps))}
    shares["waiting"] = max(0.0, 1.0 - sum(shares.values()))
    return {"phase_shares": shares, "phase_span_s": span}


def reader_main(bootstrap: str, topic: str, expected: int, out: str) -> None:
    from harness import assign_all, reader

    from portfolio_tx.wire.codec import Codec
    from portfolio_tx.wire.outcomes import CycleOutcome

    codec = Codec()
    consumer = reader(Stack(bootstrap, ""), f"bench-lat-{time.monotonic_ns()}",
                      **{"fetch.wait.max.ms": 5})
    assign_all(consumer, topic)
    print("ready", flush=True)
    seen: list[tuple[str, int, float]] = []
    deadline = time.monotonic() + 600
    idle_since = time.monotonic()
    while len(seen) < expected and time.monotonic() < deadline:
        messages = consumer.consume(1000, timeout=0.01)
        now = time.time()
        for message in messages:
            if message.error() is None:
                outcome = codec.decode(message.value(), topic=topic, partition=None,
                                       offset=None, expected=CycleOutcome)
                seen.append((outcome.session_id, outcome.cycle_id, now))
        if messages:
            idle_since = time.monotonic()
        elif seen and time.monotonic() - idle_since > 30:
            break
    consumer.close()
    Path(out).write_text("".join(json.dumps(item) + "\n" for item in seen))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text,
                                                         re.MULTILINE))


def memory_run(stack: Stack, prefix: str, partitions: int, logs: Path, *, sessions: int = 10_000,
               patches: str = "", env: dict[str, str] | None = None) -> dict[str, float]:
    from harness import produce_all
    from scenarios import vm_hwm_mb

    workload = build(Shape(sessions=sessions, cycles=1, markers=False, prefix="M"))
    inputs = TopicNames.with_prefix(f"{prefix}mem.")
    create(stack, inputs, partitions)
    topics = run_topics(inputs, "out")
    create(stack, topics, partitions)
    produce_all(stack, inputs, workload.records)
    namespace = f"{prefix}mem"
    clear_redis(stack, namespace)
    port = _free_port()
    worker = start_worker(WorkerSpec(stack, topics, f"{namespace}.group", "mem-0", namespace,
                                     env={"PTX_METRICS_PORT": str(port), **(env or {})},
                                     patches=patches), logs)
    events = workload.shape.input_events
    consumed = opened = 0.0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and worker.process.poll() is None:
        time.sleep(1.0)
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        except OSError:
            continue
        metrics = text.decode()
        consumed = _metric(metrics, "ptx_events_consumed_total")
        opened = _metric(metrics, "ptx_open_cycles")
        if consumed >= events and opened >= sessions:
            time.sleep(2.0)
            break
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    hwm = vm_hwm_mb(worker.process.pid)
    worker.stop()
    clear_redis(stack, namespace)
    return {"sessions": sessions, "open_cycles": opened, "consumed": consumed,
            "events": events, "rss_mb": rss, "hwm_mb": hwm}


if __name__ == "__main__" and sys.argv[1] == "reader":
    reader_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
