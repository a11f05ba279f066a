"""Liveness and readiness of a worker, through a heartbeat key in Redis.

The worker writes ``{ns}:heartbeat:<instance>`` every second with a short expiry: a JSON
object saying when, how many partitions it holds, and whether it is ready (assigned and
caught up with the marks). ``portfolio-tx check`` (``commands/check.py``) reads it: exit 0
when the key is fresh and ready, 1 otherwise, with one line saying which.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from portfolio_tx.store.cluster import Client
from portfolio_tx.store.replies import redis_errors

HEARTBEAT_TTL_S = 10


def heartbeat_key(namespace: str, instance_id: str) -> str:
    return f"{namespace}:heartbeat:{instance_id}"


@dataclass(frozen=True, slots=True)
class Health:
    alive: bool
    ready: bool
    detail: str


def beat(client: Client, key: str, *, ready: bool, partitions: int, decided: int) -> None:
    """Record that the worker's loop is turning. Raises StateStoreError (the caller counts it)."""
    document = {
        "ts": int(time.time() * 1000),
        "ready": ready,
        "partitions": partitions,
        "decided": decided,
    }
    with redis_errors("cannot write the heartbeat to Redis"):
        client.set(key, json.dumps(document), ex=HEARTBEAT_TTL_S)


def check(client: Client, key: str, *, max_age_s: float = 5.0) -> Health:
    with redis_errors("cannot read the heartbeat from Redis"):
        raw = client.get(key)
    if raw is None:
        return Health(False, False, f"no heartbeat at {key}: the worker is not running")
    document = json.loads(raw)
    age = time.time() - document["ts"] / 1000
    if age > max_age_s:
        return Health(False, False, f"last heartbeat {age:.1f}s ago: the worker is stuck")
    if not document["ready"]:
        return Health(True, False, "alive, not ready yet (no partitions or marks catching up)")
    return Health(
        True,
        True,
        f"alive and ready: {document['partitions']} partitions, {document['decided']} decided",
    )
