"""Optimistic locking, fencing and crash safety of RedisStateStore against the real Redis."""

from __future__ import annotations

import subprocess
import sys
import threading
from decimal import Decimal

import pytest

from portfolio_tx import ConcurrentModificationError, RedisStateStore, portfolio_transaction
from portfolio_tx.ledger import DiscardReason

pytestmark = pytest.mark.redis_cluster  # also against a Redis Cluster


def test_two_concurrent_commits_on_one_session_exactly_one_wins(store: RedisStateStore) -> None:
    with portfolio_transaction(store, "race") as tx:
        tx.stage_transfer("1000")
        tx.commit({})
    before = store.raw_state("race")
    barrier = threading.Barrier(2)
    results: list[object] = []

    def contender(amount: str) -> None:
        try:
            with portfolio_transaction(store, "race") as tx:
                tx.stage_transfer(amount)
                barrier.wait(timeout=10)
                results.append(tx.commit({}))
        except ConcurrentModificationError as exc:
            results.append(exc)

    threads = [threading.Thread(target=contender, args=(a,)) for a in ("10", "20")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(type(r).__name__ for r in results) == ["ConcurrentModificationError", "bool"]
    after = store.get_latest_cash_equity("race")
    assert after is not None and after["cash_balance"] in (Decimal("1010"), Decimal("1020"))
    assert store.load("race").state.version == 2
    assert store.raw_state("race") != before


def test_a_lost_race_writes_nothing(store: RedisStateStore) -> None:
    first = portfolio_transaction(store, "lost")
    second = portfolio_transaction(store, "lost")
    with first as a, second as b:
        a.stage_transfer("5")
        b.stage_transfer("7")
        assert a.commit({})
        snapshot = store.raw_state("lost")
        with pytest.raises(ConcurrentModificationError):
            b.commit({})
    assert store.raw_state("lost") == snapshot


def test_deciding_a_decided_cycle_again_is_a_no_op_returning_the_stored_outcome(
    store: RedisStateStore,
) -> None:
    with portfolio_transaction(store, "fence", cycle_id=5, record_outcome=lambda d: b"first") as tx:
        tx.stage_transfer("100")
        assert tx.commit({})
    snapshot = store.raw_state("fence")
    with portfolio_transaction(store, "fence", cycle_id=5, record_outcome=lambda d: b"x") as tx:
        tx.stage_transfer("999")
        tx.commit({})
        assert tx.applied and tx.applied.fenced and tx.applied.outcome == b"first"
    with portfolio_transaction(store, "fence", cycle_id=4) as tx:
        applied = tx.discard(DiscardReason.INCOMPLETE)
        assert applied.fenced and applied.outcome is None
    assert store.raw_state("fence") == snapshot
    assert store.load("fence").last_decided == 5


def test_a_discard_with_a_cycle_id_fences_the_cycle_but_leaves_the_state(
    store: RedisStateStore,
) -> None:
    with portfolio_transaction(store, "d", cycle_id=1) as tx:
        tx.stage_transfer("100")
        tx.commit({})
    state_key = store.keys_for("d")[0]
    before = store.client.dump(state_key)
    with portfolio_transaction(store, "d", cycle_id=2) as tx:
        tx.discard(DiscardReason.COUNT_MISMATCH)
    assert store.client.dump(state_key) == before
    assert store.load("d").last_decided == 2


def test_outcome_records_are_kept_for_a_bounded_window(redis_url: str) -> None:
    store = RedisStateStore.from_url(redis_url, namespace="t-window")
    store._outcome_window = 3  # noqa: SLF001 - a small window keeps the test short
    try:
        for cycle in range(1, 7):
            with portfolio_transaction(
                store, "w", cycle_id=cycle, record_outcome=lambda d: str(d.cycle_id).encode()
            ) as tx:
                tx.commit({})
        decisions = store.client.hgetall(store.keys_for("w")[1])
        kept = sorted(k for k in decisions if k != b"last")
        assert kept == [b"c:4", b"c:5", b"c:6", b"e:4", b"e:5", b"e:6", b"w:4", b"w:5", b"w:6"]
    finally:
        store.client.delete(*store.keys_for("w"))


CRASH = """
import os, sys
from portfolio_tx import RedisStateStore, portfolio_transaction
store = RedisStateStore.from_url(sys.argv[1], namespace=sys.argv[2])
with portfolio_transaction(store, "crash") as tx:
    tx.stage_transfer("-999")
    tx.stage_fill("BTC", "BUY", "1", "10", "0")
    os._exit(9)  # the process dies between staging and commit
"""


def test_a_crash_between_staging_and_commit_leaves_the_previous_state(
    store: RedisStateStore, redis_url: str
) -> None:
    with portfolio_transaction(store, "crash") as tx:
        tx.stage_transfer("1000")
        tx.commit({})
    before = store.raw_state("crash")
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, redis_url, store.namespace], timeout=60, check=False
    )
    assert proc.returncode == 9
    assert store.raw_state("crash") == before


def test_published_marks_only_move_forward(store: RedisStateStore) -> None:
    for cycle in (1, 2):
        with portfolio_transaction(store, "pub", cycle_id=cycle, event_ids=[f"e{cycle}"]) as tx:
            tx.commit({})
    assert store.load("pub").published_through is None
    store.mark_published({"pub": 2})
    store.mark_published({"pub": 1})
    assert store.load("pub").published_through == 2
    decided = store.decided_cycle("pub", 2)
    assert decided is not None and decided.published and decided.event_ids == {"e2"}
    assert decided.decided_at_ms > 0


def test_a_vanished_state_is_reported_lost_not_raced(store: RedisStateStore) -> None:
    from portfolio_tx.errors import StateLostError

    with portfolio_transaction(store, "gone") as tx:
        tx.stage_transfer("100")
        tx.commit({})
    staged = portfolio_transaction(store, "gone")
    with staged as tx:
        tx.stage_transfer("1")
        store.client.delete(*store.keys_for("gone"))  # what a FLUSHALL does meanwhile
        with pytest.raises(StateLostError):
            tx.commit({})
    assert store.client.exists(*store.keys_for("gone")) == 0
