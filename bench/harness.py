"""Plumbing shared by the scenarios: topics, loading, worker processes, outcome readers, CPU.

Everything runs against the broker and Redis of ``scripts/stack``. A bench run loads its
workload once into topics under a fresh prefix; each scenario then writes its outcomes to its
own commits/deadletter topics (``<prefix><run>.commits``), with its own consumer group and
Redis namespace, so scenarios never see each other's output.
"""

from __future__ import annotations

import calendar
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from portfolio_tx.kafka.admin import create_topics
from portfolio_tx.kafka.clients import plain_producer_config
from portfolio_tx.wire.topics import TopicNames

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    redis_url: str
    replication_factor: int = 1  # 3 on the cluster stack

    @classmethod
    def from_env(cls) -> Stack:
        return cls(
            os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        )


def run_topics(inputs: TopicNames, run: str) -> TopicNames:
    """The input topics of ``inputs`` with this run's own commits and deadletter topics."""
    prefix = inputs.fills.removesuffix("portfolio.fills")
    return replace(inputs, commits=f"{prefix}{run}.commits", deadletter=f"{prefix}{run}.dlq")


def create(stack: Stack, topics: TopicNames, partitions: int) -> None:
    create_topics(stack.bootstrap, topics, partitions,
                  replication_factor=stack.replication_factor)


def delete_prefix(stack: Stack, prefix: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(Exception):  # best effort cleanup
                future.result(timeout=30)


def clear_redis(stack: Stack, namespace: str) -> None:
    from portfolio_tx.store.cluster import client_from_url, is_cluster

    client = client_from_url(stack.redis_url)  # a Redis Cluster too (redis+cluster://)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=5000))
    if is_cluster(client):  # a DEL of many keys must stay in one slot there
        for key in keys:
            client.delete(key)
        return
    for start in range(0, len(keys), 5000):
        client.delete(*keys[start : start + 5000])


def produce_all(
    stack: Stack, topics: TopicNames, records: list[tuple[int, str, bytes]]
) -> float:
    """Publish ``records`` ((kind, key, value), kind indexing fills/pnl/cycles/marks) in
    order with the murmur2 partitioner; returns seconds taken."""
    names = (topics.fills, topics.pnl, topics.cycles, topics.marks)
    producer = Producer(plain_producer_config(stack.bootstrap, **{"linger.ms": 20}))
    started = time.monotonic()
    for kind, key, value in records:
        while True:
            try:
                producer.produce(names[kind], key=key.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.01)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} records not delivered")
    return time.monotonic() - started


# -- reading outcomes ----------------------------------------------------------------------


def reader(stack: Stack, group: str, **extra: object) -> Consumer:
    return Consumer({
        "bootstrap.servers": stack.bootstrap,
        "group.id": group,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        **extra,
    })


def assign_all(consumer: Consumer, topic: str) -> None:
    meta = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, -2) for p in meta.topics[topic].partitions])


class OutcomeWatch:
    """Reads a commits topic read_committed in a thread, keeping every record and the wall
    time at which the ``expected``-th became visible."""

    def __init__(self, stack: Stack, topic: str, expected: int) -> None:
        self.expected = expected
        self.records: list[tuple[bytes | None, bytes]] = []
        self.first_at: float | None = None
        self.done_at: float | None = None
        self._stop = threading.Event()
        self._consumer = reader(stack, f"bench-watch-{time.monotonic_ns()}")
        assign_all(self._consumer, topic)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for message in self._consumer.consume(2000, timeout=0.05):
                    if message.error() is None:
                        if self.first_at is None:
                            self.first_at = time.time()
                        self.records.append((message.key(), message.value()))
                if self.done_at is None and len(self.records) >= self.expected:
                    self.done_at = time.time()
        finally:
            self._consumer.close()

    def wait(self, timeout: float, alive: list[subprocess.Popen[bytes]] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.done_at is not None:
                return True
            if alive and any(p.poll() is not None for p in alive):
                return False
            time.sleep(0.05)
        return self.done_at is not None

    def close(self, settle: float = 1.0) -> None:
        time.sleep(settle)  # extra outcomes (duplicates) would show up now
        self._stop.set()
        self._thread.join(10)


# -- processes -----------------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def assigned_at(self, topic: str = "") -> float | None:
        """Wall time of the first ``assigned`` log line (naming ``topic``), epoch seconds."""
        pattern = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \S+\s+\S+: assigned \[")
        for line in self.log.read_text(errors="replace").splitlines():
            found = pattern.match(line)
            if found and "[]" not in line and topic in line:
                seconds = calendar.timegm(time.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S"))
                return seconds + int(found.group(2)) / 1000
        return None

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class WorkerSpec:
    """How to start one worker process on a run's topics."""

    stack: Stack
    topics: TopicNames
    group: str
    instance: str
    namespace: str
    env: dict[str, str] = field(default_factory=dict)
    patches: str = ""  # comma-separated names from bench/patches.py; empty: the product as is

    def environment(self) -> dict[str, str]:
        t = self.topics
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.stack.bootstrap,
            "REDIS_URL": self.stack.redis_url,
            "PTX_TOPIC_FILLS": t.fills,
            "PTX_TOPIC_PNL": t.pnl,
            "PTX_TOPIC_CYCLES": t.cycles,
            "PTX_TOPIC_MARKS": t.marks,
            "PTX_TOPIC_COMMITS": t.commits,
            "PTX_TOPIC_DEADLETTER": t.deadletter,
            "PTX_GROUP_ID": self.group,
            "PTX_INSTANCE_ID": self.instance,
            "PTX_REDIS_NAMESPACE": self.namespace,
            **self.env,
        }


def start_worker(spec: WorkerSpec, logs: Path, *extra_args: str) -> Worker:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec.instance}.log"
    if spec.patches:
        command = [sys.executable, str(BENCH / "patched_worker.py"), spec.patches]
    else:
        command = [sys.executable, "-m", "portfolio_tx"]
    handle = log.open("wb")
    process = subprocess.Popen(
        [*command, "worker", *extra_args], env=spec.environment(), stdout=handle,
        stderr=subprocess.STDOUT, cwd=ROOT,
    )
    return Worker(process, log)


# -- CPU accounting ------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def stack_pids() -> dict[str, int]:
    """The broker's and Redis's pids when scripts/stack runs them as local processes."""
    pids: dict[str, int] = {}
    state = Path(os.environ.get("PTX_STACK_DIR") or ROOT / ".stack")
    for name, pidfile in (("broker", "kafka.pid"), ("redis", "redis.pid")):
        for candidate in (state / pidfile, state / name / pidfile):
            if candidate.exists():
                with contextlib.suppress(ValueError, IndexError):
                    pid = int(candidate.read_text().split()[0])
                    if Path(f"/proc/{pid}").exists():
                        pids[name] = pid
    redis_port = b":" + (os.environ.get("REDIS_URL", "").rsplit(":", 1)[-1].split("/")[0]
                         or "6379").encode()
    if len(pids) < 2:  # started by someone else: find them by their command lines
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"kafka.Kafka" in command and b"java" in command:
                pids.setdefault("broker", int(proc.name))
            elif command.startswith(b"/usr/bin/redis-server") and redis_port in command:
                pids.setdefault("redis", int(proc.name))
    if len(pids) < 2:
        try:
            out = subprocess.run([str(ROOT / "scripts" / "stack"), "status"], capture_output=True,
                                 text=True, timeout=30, check=False).stdout
        except OSError:
            out = ""
        for line in out.splitlines():
            found = re.match(r"^(kafka|redis)\s.*pid (\d+)", line)
            if found:
                pids["broker" if found.group(1) == "kafka" else "redis"] = int(found.group(2))
    return pids


class CpuMeter:
    """CPU seconds used by named processes between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._before: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._t0 = 0.0

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self._before[name] = cpu_seconds(pid)

    def start(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._before.update({n: cpu_seconds(p) for n, p in self.pids.items()})
        return self

    def sample(self) -> None:
        """Read now (the worker's counters vanish when it exits)."""
        self.wall = time.monotonic() - self._t0
        self.used = {n: cpu_seconds(p) - self._before.get(n, 0.0) for n, p in self.pids.items()}

    def share(self) -> dict[str, float]:
        """Cores used per process (1.0 = one core busy for the whole interval)."""
        return {n: used / self.wall for n, used in self.used.items()} if self.wall else {}
