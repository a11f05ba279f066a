"""Library batch operations: 1,000 small transactions on 1,000 sessions, one by one (a read
and a write per transaction) and as one ``portfolio_batch`` (one read and one write for
all), in the same run, on the stack's Redis.

    python bench/library_batch.py [--sessions 1000]
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from decimal import Decimal

import redis

from portfolio_tx import RedisStateStore, portfolio_batch, portfolio_transaction


def library_batch_run(redis_url: str, sessions: int = 1_000) -> dict[str, float]:
    """Seconds for ``sessions`` transactions one by one and as one batch, and the ratio."""
    logging.getLogger("portfolio_tx.transaction").setLevel(logging.WARNING)
    client = redis.Redis.from_url(redis_url)
    namespace = f"bench-lib-{uuid.uuid4().hex[:8]}"
    store = RedisStateStore(client, namespace=namespace)
    names = [f"s{i:05d}" for i in range(sessions)]
    try:
        started = time.perf_counter()
        for name in names:
            with portfolio_transaction(store, name) as tx:
                tx.stage_transfer(Decimal("100"))
                tx.commit({})
        one_by_one = time.perf_counter() - started
        started = time.perf_counter()
        with portfolio_batch(store, names) as batch:
            for name in names:
                tx = batch.transaction(name)
                tx.stage_transfer(Decimal("100"))
                tx.commit({})
        batched = time.perf_counter() - started
        assert all(r.committed for r in batch.results.values()), "a batched commit failed"
        assert store.load(names[-1]).state.cash == Decimal("200")
    finally:
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.delete(key)
        client.close()
    return {"sessions": sessions, "one_by_one_s": one_by_one, "batch_s": batched,
            "ratio": one_by_one / batched}


def main() -> None:
    import os

    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000)
    args = parser.parse_args()
    found = library_batch_run(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                              args.sessions)
    print(f"{found['sessions']:,} transactions: one by one {found['one_by_one_s']:.3f} s, "
          f"one batch {found['batch_s']:.3f} s, {found['ratio']:.1f}x")


if __name__ == "__main__":
    main()
