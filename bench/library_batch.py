"""Library batch operations: 1,000 small transactions on 1,000 sessions, one by one (a read
and a write per transaction) and as one ``portfolio_batch`` (one read and one write for
all), in the same run, on the stack's Redis.

Both ways run on sessions that already have a committed state (an untimed first pass
creates them and loads the scripts), in alternating rounds (one by one, then one batch,
``--rounds`` times): the machine is shared and noisy, so the row gives the median of the
rounds and their range. Every transaction commits; the last state is checked.

    python bench/library_batch.py [--sessions 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

import redis

from portfolio_tx import RedisStateStore, portfolio_batch, portfolio_transaction


def _one_by_one(store: RedisStateStore, names: list[str]) -> float:
    started = time.perf_counter()
    for name in names:
        with portfolio_transaction(store, name) as tx:
            tx.stage_transfer(Decimal("100"))
            tx.commit({})
    return time.perf_counter() - started


def _batch(store: RedisStateStore, names: list[str]) -> float:
    started = time.perf_counter()
    with portfolio_batch(store, names) as batch:
        for name in names:
            tx = batch.transaction(name)
            tx.stage_transfer(Decimal("100"))
            tx.commit({})
    elapsed = time.perf_counter() - started
    assert all(r.committed for r in batch.results.values()), "a batched commit failed"
    return elapsed


def library_batch_run(redis_url: str, sessions: int = 1_000, rounds: int = 5) -> dict[str, Any]:
    """Seconds for ``sessions`` transactions one by one and as one batch (medians over
    ``rounds``), the ratio of the medians, and per round both figures."""
    logging.getLogger("portfolio_tx.transaction").setLevel(logging.WARNING)
    client = redis.Redis.from_url(redis_url)
    namespace = f"bench-lib-{uuid.uuid4().hex[:8]}"
    store = RedisStateStore(client, namespace=namespace)
    names = [f"s{i:05d}" for i in range(sessions)]
    one: list[float] = []
    many: list[float] = []
    try:
        _batch(store, names)  # untimed: every session has a state, the scripts are loaded
        for _ in range(rounds):
            one.append(_one_by_one(store, names))
            many.append(_batch(store, names))
        expected = Decimal(100) * (1 + 2 * rounds)
        assert store.load(names[-1]).state.cash == expected, "a transaction went missing"
    finally:
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.delete(key)
        client.close()
    one_s, batch_s = statistics.median(one), statistics.median(many)
    return {
        "sessions": sessions,
        "rounds": rounds,
        "one_by_one_s": one_s,
        "batch_s": batch_s,
        "ratio": one_s / batch_s,
        "one_by_one_us_per_tx": [round(s * 1e6 / sessions, 1) for s in one],
        "batch_us_per_tx": [round(s * 1e6 / sessions, 1) for s in many],
        "ratios": [round(a / b, 2) for a, b in zip(one, many, strict=True)],
    }


def main() -> None:
    import os

    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    found = library_batch_run(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), args.sessions, args.rounds
    )
    per_tx = 1e6 / found["sessions"]
    print(
        f"{found['sessions']:,} transactions, median of {found['rounds']} rounds: one by one "
        f"{found['one_by_one_s'] * per_tx:.0f} us/tx, one batch {found['batch_s'] * per_tx:.0f} "
        f"us/tx, {found['ratio']:.1f}x (rounds: one by one {found['one_by_one_us_per_tx']}, "
        f"batch {found['batch_us_per_tx']}, ratios {found['ratios']})"
    )


if __name__ == "__main__":
    main()
