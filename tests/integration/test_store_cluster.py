"""What only a Redis Cluster asks of RedisStateStore: a batch's sessions spread over every
master in calls of one slot each and come back in order, a plain ``redis://`` URL naming a
cluster node is refused with the fix, and a failover changes the server identity."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from portfolio_tx import RedisStateStore
from portfolio_tx.config import Settings
from portfolio_tx.errors import StateStoreError
from portfolio_tx.store.port import Applied, WriteQueue
from portfolio_tx.transaction import PortfolioTransaction
from portfolio_tx.worker.build import connect_store


@pytest.fixture
def cluster_store(redis_cluster_url: str) -> Iterator[RedisStateStore]:
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    store = RedisStateStore.from_url(redis_cluster_url, namespace=namespace)
    yield store
    for key in store.client.scan_iter(match=f"{namespace}:*", count=1000):
        store.client.delete(key)


def _masters(store: RedisStateStore) -> list[redis.Redis]:
    return [
        redis.Redis(host=node.host, port=node.port)
        for node in store.client.get_primaries()  # type: ignore[union-attr]
    ]


def test_a_batch_spreads_over_every_master_and_answers_in_request_order(
    cluster_store: RedisStateStore,
) -> None:
    store = cluster_store
    assert store.is_cluster
    sessions = [f"spread-{i}" for i in range(90)]
    capture = WriteQueue()
    for i, session in enumerate(sessions):
        tx = PortfolioTransaction(store, session, cycle_id=1, writer=capture)
        tx.stage_transfer(str(i + 1))
        assert tx.commit({})
    store.mark_partition_ready(0)
    store.mark_partition_ready(5)

    results, ready = store.apply_many(capture.requests, ready=[0, 1, 2, 5])

    assert ready == {0, 5}
    assert [r.decision.state.cash for r in results if isinstance(r, Applied)] == [
        Decimal(i + 1) for i in range(len(sessions))
    ]
    loaded = store.load_many(sessions)
    assert [s.state.cash for s in loaded] == [Decimal(i + 1) for i in range(len(sessions))]
    per_master = [len(m.keys(f"{store.namespace}:{{spread-*")) for m in _masters(store)]
    assert len(per_master) == 3 and all(n > 0 for n in per_master), per_master
    assert sum(per_master) == 3 * len(sessions)  # state, decisions, recent of each session


def test_a_plain_redis_url_naming_a_cluster_node_is_refused_with_the_fix(
    redis_cluster_url: str,
) -> None:
    plain = redis_cluster_url.replace("redis+cluster://", "redis://") + "/0"
    with pytest.raises(StateStoreError, match=r"is a Redis Cluster node: use redis\+cluster://"):
        connect_store(Settings(redis_url=plain))
    assert connect_store(Settings(redis_url=redis_cluster_url)).is_cluster


def test_the_server_identity_changes_when_a_replica_takes_over(
    cluster_store: RedisStateStore,
) -> None:
    store = cluster_store
    before = store.server_identity()
    assert store.server_identity() == before  # stable while nothing changes
    some_master = _masters(store)[0]
    replica = next(
        node
        for node in some_master.execute_command("CLUSTER NODES").values()
        if node["master_id"] == some_master.execute_command("CLUSTER MYID").decode()
    )
    replica_port = int(
        next(
            addr
            for addr, node in some_master.execute_command("CLUSTER NODES").items()
            if node["node_id"] == replica["node_id"]
        ).rsplit(":", 1)[1]
    )
    redis.Redis(port=replica_port).execute_command("CLUSTER FAILOVER")  # no data lost
    deadline = time.monotonic() + 30
    while True:
        try:
            after = store.server_identity()
        except StateStoreError:
            after = before
        if after != before and replica["node_id"] in after:
            break
        assert time.monotonic() < deadline, f"identity still {after!r} after the failover"
        time.sleep(0.2)
