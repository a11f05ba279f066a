"""Fixtures shared by the integration tests: a RedisStateStore in a namespace of its own."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portfolio_tx import RedisStateStore

sys.path.insert(0, str(Path(__file__).parent))

from pipeline import Pipeline, make_pipeline  # noqa: E402


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStateStore]:
    """A store whose keys live under a fresh namespace, deleted afterwards."""
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    store = RedisStateStore.from_url(redis_url, namespace=namespace)
    client = store.client
    yield store
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def pipeline(bootstrap_servers: str, redis_url: str, topic_prefix: str) -> Iterator[Pipeline]:
    """An isolated pipeline: six fresh topics (3 partitions), a group, a Redis namespace."""
    made, cleanup = make_pipeline(bootstrap_servers, redis_url, topic_prefix)
    yield made
    cleanup()
