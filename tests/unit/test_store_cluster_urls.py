"""store.cluster without a cluster: which calls a batch becomes, and the URLs refused
before any connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.crc import key_slot

from portfolio_tx.errors import ConfigError, StateStoreError
from portfolio_tx.security import RedisSecurity
from portfolio_tx.store.cluster import batches, client_from_url


def test_on_one_redis_a_batch_is_chunks_in_order() -> None:
    keys = [f"ns:{{s{i}}}:state" for i in range(5)]
    assert batches(keys, cluster=False, size=2) == [[0, 1], [2, 3], [4]]


def test_on_a_cluster_each_call_holds_one_slot_in_request_order() -> None:
    keys = [f"ns:{{s{i % 7}}}:state" for i in range(30)]  # two cycles of a session: one slot
    calls = batches(keys, cluster=True, size=3)
    assert sorted(i for call in calls for i in call) == list(range(30))
    for call in calls:
        assert len({key_slot(keys[i].encode()) for i in call}) == 1
        assert call == sorted(call) and len(call) <= 3


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+cluster://127.0.0.1:17000/3", "only database 0"),
        ("redis+cluster://", "no host:port"),
        ("redis+cluster://127.0.0.1:port", "bad Redis URL"),
    ],
)
def test_a_malformed_cluster_url_is_refused_before_connecting(url: str, why: str) -> None:
    with pytest.raises(StateStoreError, match=why):
        client_from_url(url)


@pytest.mark.parametrize("scheme", ["redis+cluster", "rediss+cluster"])
def test_a_cluster_url_password_never_reaches_the_error(scheme: str) -> None:
    url = f"{scheme}://ptx-worker:hunter2-secret@127.0.0.1:1,127.0.0.1:2"  # nothing listens
    with pytest.raises(StateStoreError, match="cannot reach the Redis Cluster") as refused:
        client_from_url(url, socket_connect_timeout=0.5)
    assert "hunter2-secret" not in str(refused.value)
    assert f"{scheme}://ptx-worker:***@127.0.0.1:1,127.0.0.1:2" in str(refused.value)


def test_redis_tls_files_are_accepted_for_a_tls_cluster_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here\n")
    kwargs = RedisSecurity(ssl_ca_certs=str(ca)).client_kwargs("rediss+cluster://h:1")
    assert kwargs == {"ssl_ca_certs": str(ca)}
    with pytest.raises(ConfigError, match="rediss://"):
        RedisSecurity(ssl_ca_certs=str(ca)).client_kwargs("redis+cluster://h:1")
