"""The throughput scenarios: the two ceilings and the worker (one or more processes).

Times are wall clock. A ceiling runs from its first record to its last; the worker runs from
its first ``assigned`` log line (it reads from there on) to the moment the last outcome is
visible to a read_committed reader, which is the user's view of "done".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from check import check_outcomes, check_redis, decode
from harness import (
    CpuMeter,
    OutcomeWatch,
    Stack,
    WorkerSpec,
    clear_redis,
    create,
    run_topics,
    stack_pids,
    start_worker,
)
from workload import Workload

from portfolio_tx.store import RedisStateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.wire.topics import TopicNames


@dataclass
class Result:
    name: str
    seconds: float
    events: int
    cycles: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # cores used per process
    problems: list[str] = field(default_factory=list)
    rss_peak_mb: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def ceiling(stack: Stack, topics: TopicNames, expected: int, *, decode_values: bool,
            batch: int = 1000) -> Result:
    """A bare confluent-kafka consumer over the three input topics (read_committed, batch
    consume); with ``decode_values`` every value also goes through our Codec."""
    from harness import reader

    consumer = reader(stack, f"bench-ceiling-{time.monotonic_ns()}")
    consumer.subscribe([topics.fills, topics.pnl, topics.cycles])
    codec = Codec()
    expected_type = {topics.fills: Fill, topics.pnl: PnlEvent, topics.cycles: CycleMarker}
    meter = CpuMeter(stack_pids())
    seen = 0
    first = last = 0.0
    deadline = time.monotonic() + 600
    try:
        while seen < expected and time.monotonic() < deadline:
            messages = consumer.consume(batch, timeout=0.5)
            if messages and not first:
                first = time.time()
                meter.start()
            for message in messages:
                if message.error() is not None:
                    continue
                if decode_values:
                    topic = message.topic()
                    codec.decode(message.value(), topic=topic, partition=message.partition(),
                                 offset=message.offset(), expected=expected_type[topic])
                seen += 1
            last = time.time()
        meter.sample()
    finally:
        consumer.close()
    name = "ceiling B (consume + decode)" if decode_values else "ceiling A (consume)"
    problems = [] if seen == expected else [f"read {seen} of {expected} records"]
    result = Result(name, last - first, seen, problems=problems)
    result.cpu = meter.share()
    return result


def vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def worker_run(
    stack: Stack,
    inputs: TopicNames,
    partitions: int,
    workload: Workload,
    name: str,
    logs: Path,
    *,
    workers: int = 1,
    patches: str = "",
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    service_pids: dict[str, int] | None = None,
) -> Result:
    """Run ``workers`` worker processes in one fresh group over the loaded inputs until every
    cycle's outcome is visible; then check the outcomes and a sample of Redis states.
    ``service_pids``: the broker and Redis processes whose CPU the row reports (default
    scripts/stack's single broker and Redis)."""
    topics = run_topics(inputs, name)
    create(stack, topics, partitions)
    prefix = inputs.fills.removesuffix("portfolio.fills")
    namespace = f"{prefix}{name}"
    clear_redis(stack, namespace)
    watch = OutcomeWatch(stack, topics.commits, workload.cycles)
    meter = CpuMeter(stack_pids() if service_pids is None else service_pids).start()
    procs = []
    for n in range(workers):
        spec = WorkerSpec(stack, topics, f"{prefix}{name}.group", f"{name}-{n}", namespace,
                          env=dict(env or {}), patches=patches)
        procs.append(start_worker(spec, logs))
        meter.add(f"worker{n}" if workers > 1 else "worker", procs[-1].process.pid)
    limit = timeout if timeout is not None else max(180.0, workload.shape.input_events / 300)
    finished = watch.wait(limit, alive=[p.process for p in procs])
    meter.sample()
    rss = max(vm_hwm_mb(p.process.pid) for p in procs)
    for proc in procs:
        proc.stop()
    watch.close()
    starts = [t for t in (p.assigned_at(topics.cycles) for p in procs) if t is not None]
    problems: list[str] = []
    if not finished:
        tails = " | ".join(p.log.read_text(errors="replace")[-600:] for p in procs)
        problems.append(f"not finished: {len(watch.records)} of {workload.cycles} outcomes; "
                        f"log tail: {tails}")
    seconds = (watch.done_at or time.time()) - (min(starts) if starts else meter._t0)
    outcomes = decode(watch.records, topics.commits)
    problems += check_outcomes(workload, outcomes)
    store = RedisStateStore.from_url(stack.redis_url, namespace=namespace)
    problems += check_redis(workload, store)
    result = Result(name, seconds, workload.shape.input_events, workload.cycles,
                    cpu=meter.share(), problems=problems, rss_peak_mb=rss)
    clear_redis(stack, namespace)
    return result
