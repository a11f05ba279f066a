"""Fixtures shared by the integration tests: a RedisStateStore in a namespace of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from portfolio_tx import RedisStateStore


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStateStore]:
    """A store whose keys live under a fresh namespace, deleted afterwards."""
    client = redis.Redis.from_url(redis_url)
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    yield RedisStateStore(client, namespace=namespace)
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)
    client.close()
