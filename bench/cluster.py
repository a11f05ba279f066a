"""The cluster rows (issue 13): one worker and three workers in one group on the cluster stack
(``scripts/stack up --cluster``: three Kafka brokers, replication factor 3,
``min.insync.replicas`` 2; a Redis Cluster of three masters and three replicas), on the same
workload in the same run. Every row is checked like the others (bench/check.py).

On one machine the three brokers, six Redis nodes and the workers share its cores, so the
rows say what replication costs a worker and whether more workers still help there; they
are not a many-machine throughput.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from harness import ROOT, Stack, create, delete_prefix, produce_all
from scenarios import Result, worker_run
from workload import Workload

from portfolio_tx.wire.topics import TopicNames

STACK = ROOT / "scripts" / "stack"
STATE = Path(os.environ.get("PTX_STACK_DIR") or ROOT / ".stack")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_"))}
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def cluster_stack() -> tuple[Stack, bool]:
    """The cluster stack, started when it is not running; (stack, started here)."""
    done = _run(str(STACK), "up", "--cluster")
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if done.returncode != 0 or "KAFKA_BOOTSTRAP_SERVERS" not in env:
        raise RuntimeError(f"scripts/stack up --cluster failed:\n{done.stderr[-2000:]}")
    stack = Stack(env["KAFKA_BOOTSTRAP_SERVERS"], env["REDIS_URL"], replication_factor=3)
    return stack, bool(env.get("PTX_STACK_STARTED"))


def stop_cluster() -> None:
    """Stop the cluster stack only (``scripts/stack down`` would stop the single one too)."""
    _run(str(ROOT / "scripts" / "kafka-cluster"), "down")
    _run(str(STACK), "stop-redis-cluster")


def cluster_pids() -> dict[str, int]:
    """The brokers' and the Redis masters' and replicas' pids, for the CPU column."""
    pids: dict[str, int] = {}
    for pidfile in [*STATE.glob("kafka-cluster-*.pid"), *STATE.glob("redis-cluster-*.pid")]:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            if Path(f"/proc/{pid}").exists():
                pids[pidfile.stem.replace("kafka-cluster-", "broker")] = pid
    return pids


def _summed(cpu: dict[str, float]) -> dict[str, float]:
    """The three brokers as one "brokers" figure and the six Redis nodes as one "redis"."""
    out: dict[str, float] = {}
    for name, cores in cpu.items():
        group = "brokers" if name.startswith("broker") else "redis" if name.startswith(
            "redis-cluster") else name
        out[group] = out.get(group, 0.0) + cores
    return out


def cluster_rows(prefix: str, partitions: int, workload: Workload, logs: Path) -> list[Result]:
    stack, started = cluster_stack()
    try:
        inputs = TopicNames.with_prefix(f"{prefix}cluster.")
        create(stack, inputs, partitions)
        produce_all(stack, inputs, workload.records)
        rows = []
        for workers in (1, 3):
            result = worker_run(stack, inputs, partitions, workload, f"cluster{workers}", logs,
                                workers=workers, service_pids=cluster_pids())
            result.cpu = _summed(result.cpu)
            result.name = (f"{'one worker' if workers == 1 else 'three workers'} on the "
                           "cluster stack (3 brokers RF 3, Redis Cluster)")
            rows.append(result)
        delete_prefix(stack, prefix)
        return rows
    finally:
        if started:
            stop_cluster()
