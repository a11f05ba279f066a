"""Which Redis a URL names, and the few things that differ on a Redis Cluster.

``REDIS_URL`` says which, by its scheme (no probing, no extra round trip):

    redis://[:password@]host:port/db              one Redis (redis.Redis)
    rediss://...                                  the same over TLS
    redis+cluster://[:password@]host:port[,host:port...]
                                                  a Redis Cluster (redis.cluster.RedisCluster),
                                                  seeded by any of the nodes listed; db 0 only
    rediss+cluster://...                          the same over TLS

Credentials and TLS files may also come as keyword arguments (``security.RedisSecurity``'s
``client_kwargs``: username, password, CA, client certificate and key), for either kind.

On a cluster redis-py's ``RedisCluster`` follows MOVED/ASK redirects, keeps the slot map and
refreshes it after a failover. What the store does differently there:

- a Lua script call's KEYS must share one hash slot, so the sessions of a batch go in
  calls per slot (``batches``): a session's keys share its hash tag, sessions seldom share
  a slot, so a batch of n sessions is about n calls instead of n / CHUNK (still one round
  trip per node);
- readiness keys of different partitions live in different slots: read with one GET each;
- the server identity is every master's node id and run id (``server_identity``), so the
  failover of any one shard is a new identity.

A ``redis://`` URL pointing at a cluster node is refused by ``check_mode`` with the fix.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any, TypeAlias

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from portfolio_tx.errors import StateStoreError
from portfolio_tx.security import redacted_url
from portfolio_tx.store.lua import CHUNK
from portfolio_tx.store.replies import redis_errors, redis_refusals

Client: TypeAlias = "redis.Redis | RedisCluster"

CLUSTER_SCHEME = "redis+cluster"
CLUSTER_SCHEMES = (CLUSTER_SCHEME, "rediss+cluster")


def client_from_url(url: str, **connection: Any) -> Client:
    """The client ``url`` names (see the module docstring), with redis-py's ``connection``
    keywords; StateStoreError if malformed or, for a cluster, when none of its seed nodes
    answers (RedisCluster reads the slot map). No message quotes a password."""
    shown = redacted_url(url)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in CLUSTER_SCHEMES:
        try:
            return redis.Redis.from_url(url, **connection)
        except (ValueError, TypeError) as exc:
            raise StateStoreError(f"bad Redis URL {shown!r}: {exc}") from exc
    if parsed.path.strip("/") not in ("", "0"):
        raise StateStoreError(f"bad Redis URL {shown!r}: a Redis Cluster has only database 0")
    auth, _, hosts = parsed.netloc.rpartition("@")
    username, _, password = auth.partition(":")
    try:
        nodes = [_node(hostport) for hostport in hosts.split(",") if hostport]
    except ValueError as exc:
        raise StateStoreError(f"bad Redis URL {shown!r}: {exc}") from exc
    if not nodes:
        raise StateStoreError(f"bad Redis URL {shown!r}: no host:port")
    given = {"username": urllib.parse.unquote(username), "password": urllib.parse.unquote(password)}
    options = {**{k: v for k, v in given.items() if v}, **connection}
    with (
        redis_errors(f"cannot reach the Redis Cluster at {shown}", fix="is it running?"),
        redis_refusals(shown),
    ):
        return RedisCluster(startup_nodes=nodes, ssl=parsed.scheme == "rediss+cluster", **options)


def _node(hostport: str) -> ClusterNode:
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, "6379"
    return ClusterNode(host.strip("[]"), int(port))  # type: ignore[no-untyped-call]


def is_cluster(client: Client) -> bool:
    return isinstance(client, RedisCluster)


def check_mode(client: Client, url: str) -> None:
    """StateStoreError when a plain ``redis://`` URL reaches a cluster node (every session
    would answer MOVED for two thirds of the slots)."""
    if is_cluster(client):
        return
    with redis_errors(f"cannot read INFO from Redis at {redacted_url(url)}"):
        try:
            enabled = client.info("cluster").get("cluster_enabled")
        except redis.exceptions.NoPermissionError:
            return  # a user without INFO: a cluster node would answer MOVED, said as such
    if str(enabled) == "1":
        parsed = urllib.parse.urlsplit(url)
        raise StateStoreError(
            f"REDIS_URL {redacted_url(url)} is a Redis Cluster node: use "
            f"{CLUSTER_SCHEME}://{parsed.hostname}:{parsed.port or 6379}"
        )


def batches(keys: Sequence[str], cluster: bool, size: int = CHUNK) -> list[list[int]]:
    """The indices of ``keys`` (one key per item) in script calls of at most ``size``.

    In order on one Redis; on a cluster grouped by hash slot first (order kept within a
    slot, so two cycles of one session stay in order)."""
    if not cluster:
        return [
            list(range(start, min(start + size, len(keys)))) for start in range(0, len(keys), size)
        ]
    by_slot: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_slot.setdefault(key_slot(key.encode()), []).append(index)
    return [
        group[start : start + size]
        for group in by_slot.values()
        for start in range(0, len(group), size)
    ]


def server_identity(client: Client) -> str:
    """One Redis: its ``run_id``. A cluster: the node id and run id of every master serving
    slots, sorted, so a promoted replica or a restarted master changes it. Raises RedisError
    (the caller translates it)."""
    if not isinstance(client, RedisCluster):
        return str(client.info("server").get("run_id", ""))
    nodes: dict[str, Any] = client.cluster_nodes()
    masters = sorted(
        str(node["node_id"])
        for node in nodes.values()
        if "master" in str(node["flags"]) and "fail" not in str(node["flags"]) and node["slots"]
    )
    runs = sorted(
        str(client.info("server", target_nodes=node).get("run_id", ""))
        for node in client.get_primaries()  # type: ignore[no-untyped-call]
    )
    return " ".join(masters + runs)
