"""portfolio_batch against the real Redis: each session's transaction validated, fenced and
version-locked on its own, all written in one round trip; nothing on an exception."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_tx import (
    ConcurrentModificationError,
    RedisStateStore,
    portfolio_batch,
    portfolio_transaction,
)


def _seed(store: RedisStateStore, session: str, amount: str) -> None:
    with portfolio_transaction(store, session) as tx:
        tx.stage_transfer(amount)
        assert tx.commit({})


def test_one_sessions_discard_or_lost_race_does_not_touch_the_others(
    store: RedisStateStore,
) -> None:
    for session in ("a", "b", "c"):
        _seed(store, session, "1000")
    with portfolio_batch(store, ["a", "b", "c", "d"]) as batch:
        a = batch.transaction("a")
        a.stage_transfer("10")
        assert a.commit({})  # staged and validated; written when the block ends
        b = batch.transaction("b")
        b.stage_cash_delta("-5", fees="0")  # equity falls by 5 with nothing to explain it
        assert not b.commit({})  # DISCARD: Δ = -5, ε = max(1.00, 0.0001 · 1000) = 1.00
        c = batch.transaction("c")
        c.stage_transfer("20")
        assert c.commit({})
        d = batch.transaction("d")  # a new session
        d.stage_transfer("7")
        assert d.commit({})
        _seed(store, "c", "1")  # another writer gets to c first: version 1 -> 2
        assert store.load("a").state.cash == Decimal("1000")  # nothing written yet
    results = batch.results
    assert results["a"].committed and a.committed and not a.rolled_back
    assert not results["b"].committed and results["b"].error is None
    assert isinstance(results["c"].error, ConcurrentModificationError)
    assert not c.committed and c.rolled_back
    assert results["d"].committed
    # by hand: a 1000 + 10; b untouched; c 1000 + 1 from the other writer only; d 7
    assert store.load("a").state.cash == Decimal("1010")
    assert store.load("b").state.cash == Decimal("1000")
    assert store.load("c").state.cash == Decimal("1001")
    assert store.load("d").state.cash == Decimal("7")
    assert [store.load(s).state.version for s in "abcd"] == [2, 1, 2, 1]


def test_an_exception_inside_the_block_writes_nothing(store: RedisStateStore) -> None:
    _seed(store, "x", "100")
    before = store.raw_state("x")
    with pytest.raises(RuntimeError), portfolio_batch(store, ["x", "y"]) as batch:
        tx = batch.transaction("x")
        tx.stage_transfer("5")
        tx.commit({})
        other = batch.transaction("y")
        other.stage_transfer("5")
        other.commit({})
        raise RuntimeError("the caller gives up")
    assert store.raw_state("x") == before
    assert store.raw_state("y") == {}
    assert batch.results == {}


def test_cycle_ids_fence_each_session_on_its_own(store: RedisStateStore) -> None:
    with portfolio_transaction(store, "f", cycle_id=1) as tx:
        tx.stage_transfer("50")
        tx.commit({})
    with portfolio_batch(store, ["f", "g"]) as batch:
        again = batch.transaction("f", cycle_id=1)  # decided before: fenced
        again.stage_transfer("50")
        again.commit({})
        fresh = batch.transaction("g", cycle_id=1)
        fresh.stage_transfer("3")
        fresh.commit({})
    assert batch.results["f"].fenced and not batch.results["f"].committed
    assert batch.results["g"].committed
    assert store.load("f").state.cash == Decimal("50")
    assert store.load("g").state.cash == Decimal("3")
