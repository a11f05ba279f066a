"""Three brokers (replication factor 3, min.insync.replicas 2): kill -9 the leader of the
busiest partition and then the broker of the worker's transaction coordinator, mid-run.

The cluster is scripts/kafka-cluster's, started here (a cluster that cannot start fails the
test). Which broker leads what is asked of the cluster at the moment of the kill; the
coordinator of a transactional id is the leader of ``__transaction_state`` partition
``abs(javaHashCode(id)) % 10`` (Kafka's TransactionStateManager.partitionFor).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from harness import LONG, ROOT, FaultRun, runs_on

from portfolio_tx.kafka.clients import make_reader

SCRIPT = ROOT / "scripts" / "kafka-cluster"
TRANSACTION_LOG_PARTITIONS = 10  # transaction.state.log.num.partitions in the script


def cluster(*args: str) -> str:
    done = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"scripts/kafka-cluster {' '.join(args)}:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[str]:
    out = cluster("up")
    yield out.strip().split("=", 1)[1]
    cluster("down")


@pytest.fixture
def cluster_run(kafka_cluster: str, topic_prefix: str) -> Iterator[Callable[..., FaultRun]]:
    """fault_run's runs, on the three brokers."""
    yield from runs_on(kafka_cluster, topic_prefix)


def java_hash(text: str) -> int:
    """Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1], in 32-bit two's complement."""
    h = 0
    for char in text:
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def test_java_hash_is_javas() -> None:  # values from the JDK's String.hashCode
    assert java_hash("") == 0
    assert java_hash("a") == 97
    assert java_hash("hello") == 99162322
    assert java_hash("polygenelubricants") == -(1 << 31)


def coordinator_partition(transactional_id: str) -> int:
    h = java_hash(transactional_id)
    return (0 if h == -(1 << 31) else abs(h)) % TRANSACTION_LOG_PARTITIONS


def leader(bootstrap: str, topic: str, partition: int) -> int:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15)
    return int(metadata.topics[topic].partitions[partition].leader)


def busiest(run_settings: object, bootstrap: str, topic: str, partitions: int) -> int:
    reader = make_reader(run_settings, "busiest")  # type: ignore[arg-type]
    try:
        highs = [
            reader.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)[1]
            for p in range(partitions)
        ]
    finally:
        reader.close()
    return max(range(partitions), key=lambda p: highs[p])


def kill_and_restart(node: int, down_s: float) -> None:
    cluster("kill", str(node))
    time.sleep(down_s)
    cluster("start", str(node))


@pytest.mark.slow  # ~2 min on two cores: make test-faults
def test_killing_the_busiest_leader_and_the_coordinators_broker_loses_and_doubles_nothing(
    kafka_cluster: str, cluster_run: Callable[..., FaultRun]
) -> None:
    run = cluster_run(
        sessions=30 if LONG else 12,
        cycles=20 if LONG else 10,
        partitions=4,
        replication_factor=3,
    )
    try:
        run.start_worker("w1")
        # paced so both kills land while the stream is still coming (~30 s of it)
        run.publish_in_background(rate=40 if LONG else 20)
        time.sleep(4)
        fills = run.settings.topics.fills
        hot = busiest(run.settings, kafka_cluster, fills, 4)
        first = leader(kafka_cluster, fills, hot)
        assert not run.published.is_set(), "the stream ended before the first kill"
        kill_and_restart(first, down_s=5)
        time.sleep(2)
        transactional_id = f"{run.settings.group_id}-w1"
        partition = coordinator_partition(transactional_id)
        second = leader(kafka_cluster, "__transaction_state", partition)
        assert not run.published.is_set(), "the stream ended before the second kill"
        kill_and_restart(second, down_s=5)
        outcomes = run.wait_for_all_outcomes(timeout=600 if LONG else 240)
        counts = run.assert_exactly_once_and_correct(outcomes)
        run.stop_workers()
        assert sum(counts.values()) == len(run.upstream.cycles)
        print(f"killed broker {first} (leader of {fills}[{hot}]) and broker {second} "
              f"(coordinator of {transactional_id}); {dict(counts)}")
    finally:
        cluster("up")  # every node back for whatever runs next


def test_the_cluster_script_names_three_brokers(kafka_cluster: str) -> None:
    assert kafka_cluster.split(",") == [f"127.0.0.1:{p}" for p in (19092, 19093, 19094)]
    metadata = AdminClient({"bootstrap.servers": kafka_cluster}).list_topics(timeout=15)
    assert sorted(metadata.brokers) == [1, 2, 3]
    assert Path(SCRIPT).stat().st_mode & 0o111  # executable, as make and CI call it


@pytest.mark.slow  # ~2 min on two cores: make test-faults
def test_three_workers_on_the_clusters_one_killed_one_added_lose_and_double_nothing(
    cluster_run: Callable[..., FaultRun], redis_cluster_url: str
) -> None:
    """The whole many-machine shape at once: three brokers (RF 3, min ISR 2), a Redis
    Cluster (three masters, three replicas), three workers; one worker is kill -9'd and a
    fourth joins while the stream is still coming."""
    run = cluster_run(
        sessions=30 if LONG else 12,
        cycles=15 if LONG else 8,
        partitions=6,
        replication_factor=3,
        redis_url=redis_cluster_url,
    )
    for instance in ("w1", "w2", "w3"):
        run.start_worker(instance)
    run.publish_in_background(rate=40 if LONG else 30)
    time.sleep(6)
    assert not run.published.is_set(), "the stream ended before the kill"
    run.kill_worker("w2")
    time.sleep(3)
    run.start_worker("w4")
    outcomes = run.wait_for_all_outcomes(timeout=600 if LONG else 240)
    counts = run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()
    assert run.events["killed"] == 1
    assert sum(counts.values()) == len(run.upstream.cycles)
    print(f"three workers, w2 killed, w4 added, on RF 3 + Redis Cluster: {dict(counts)}")
