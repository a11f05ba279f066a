"""StateStore.apply_many against the real Redis: each decision of a batch is fenced and
version-locked on its own, in one round trip, and the readiness check follows the writes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_tx import RedisStateStore, portfolio_transaction
from portfolio_tx.errors import ConcurrentModificationError, StateLostError
from portfolio_tx.store.port import Applied, SessionSnapshot, WriteQueue
from portfolio_tx.transaction import PortfolioTransaction

pytestmark = pytest.mark.redis_cluster  # also against a Redis Cluster


def _transfer(
    store: RedisStateStore,
    capture: WriteQueue,
    session: str,
    cycle: int,
    amount: str,
    on: SessionSnapshot | None = None,
) -> None:
    tx = PortfolioTransaction(
        store,
        session,
        cycle_id=cycle,
        writer=capture,
        record_outcome=lambda _: f"outcome {session} {cycle}".encode(),
        event_ids=(f"t-{session}-{cycle}",),
        snapshot=on,
    )
    tx.stage_transfer(amount)
    assert tx.commit({})


def test_a_batch_applies_each_decision_on_its_own(store: RedisStateStore) -> None:
    with portfolio_transaction(store, "fenced", cycle_id=1) as tx:  # decided before the batch
        tx.stage_transfer("10")
        tx.commit({})
    with portfolio_transaction(store, "raced") as tx:
        tx.stage_transfer("100")
        tx.commit({})
    gone = "gone"
    with portfolio_transaction(store, gone) as tx:
        tx.stage_transfer("1")
        tx.commit({})
    capture = WriteQueue()  # keeps the writes, as the worker's checkpoint does
    _transfer(store, capture, "fresh", 1, "1000")
    _transfer(store, capture, "fenced", 1, "20")  # the same cycle again: fenced
    _transfer(store, capture, "raced", 1, "5")  # staged on version 1 ...
    _transfer(store, capture, gone, 1, "2")
    after_first = SessionSnapshot(capture.requests[0].decision.state, 1)
    _transfer(store, capture, "fresh", 2, "500", after_first)  # on the batch's own cycle 1
    with portfolio_transaction(store, "raced") as tx:  # ... another writer gets there first
        tx.stage_transfer("7")
        tx.commit({})
    store.client.delete(*store.keys_for(gone))  # what a FLUSHALL does meanwhile
    store.mark_partition_ready(3)

    results, ready = store.apply_many(capture.requests, ready=[3, 4])

    fresh1, fenced, raced, lost, fresh2 = results
    assert isinstance(fresh1, Applied) and not fresh1.fenced
    assert fresh1.outcome == b"outcome fresh 1"
    assert isinstance(fenced, Applied) and fenced.fenced and fenced.outcome is None
    assert isinstance(raced, ConcurrentModificationError)
    assert isinstance(lost, StateLostError)
    assert isinstance(fresh2, Applied) and not fresh2.fenced
    assert ready == {3}
    # the writes that applied are there; the others left the store as it was
    fresh = store.load("fresh")
    assert (fresh.state.cash, fresh.state.transfers, fresh.state.version) == (
        Decimal("1500"),
        Decimal("1500"),
        2,
    )
    assert fresh.last_decided == 2
    decided = store.decided_cycle("fresh", 1)
    assert decided is not None and decided.outcome == b"outcome fresh 1"
    assert decided.event_ids == {"t-fresh-1"}
    assert store.load("fenced").state.cash == Decimal("10")
    assert store.load("raced").state.cash == Decimal("107")
    assert store.client.exists(*store.keys_for(gone)) == 0


def test_an_empty_batch_only_reads_readiness(store: RedisStateStore) -> None:
    store.mark_partition_ready(0)
    assert store.apply_many([], ready=[0, 1]) == ([], {0})
    assert store.apply_many([]) == ([], set())


def test_a_batch_past_one_script_call_after_a_script_flush(store: RedisStateStore) -> None:
    """More sessions than one Lua call carries (chunks of CHUNK), sent by EVALSHA to a server
    that has just forgotten every script (a restart, SCRIPT FLUSH): all apply, none twice."""
    from portfolio_tx.store.lua import CHUNK

    sessions = [f"many-{i}" for i in range(2 * CHUNK + 7)]
    capture = WriteQueue()
    for s in sessions:
        _transfer(store, capture, s, 1, "3")
    store.client.script_flush()

    results, _ = store.apply_many(capture.requests)

    assert all(isinstance(r, Applied) and not r.fenced for r in results)
    assert len(results) == len(sessions)
    loaded = store.load_many(sessions)
    assert [(s.state.cash, s.state.version, s.last_decided) for s in loaded] == [
        (Decimal("3"), 1, 1)
    ] * len(sessions)
    store.client.script_flush()
    again, _ = store.apply_many(capture.requests)  # the same decisions again: all fenced
    assert all(isinstance(r, Applied) and r.fenced for r in again)
    assert store.load(sessions[-1]).state.cash == Decimal("3")


def test_a_batched_write_keeps_binary_records_and_ids_byte_for_byte(
    store: RedisStateStore,
) -> None:
    """A record with newlines, spaces, NULs and non-UTF-8 bytes, non-ASCII ids and labels, a
    large cycle id, and an empty record all come back exactly as written, each session on its
    own."""
    record = b"\n1 2 3\n\x00\xff\xc3\x01 header-like 0 1 2\n"
    capture = WriteQueue()
    for session, cycle, outcome, ids in (
        ("bin", 2**62, record, ("é-1", "id with spaces", "末")),
        ("empty", 7, b"", ()),
    ):
        tx = PortfolioTransaction(
            store,
            session,
            cycle_id=cycle,
            writer=capture,
            record_outcome=lambda _, outcome=outcome: outcome,
            event_ids=ids,
        )
        tx.stage_transfer("1.000000000000000001")
        tx.stage_position_delta("BTC/USDT", "0.5", entry_price="100", strategy="stratégie \"q\"")
        tx.stage_cash_delta("-50")
        assert tx.commit({"BTC/USDT": "100"})
    results, _ = store.apply_many(capture.take())
    assert all(isinstance(r, Applied) and not r.fenced for r in results)
    found = store.decided_cycle("bin", 2**62)
    assert found is not None
    assert (found.outcome, found.event_ids) == (record, frozenset({"é-1", "id with spaces", "末"}))
    empty = store.decided_cycle("empty", 7)
    assert empty is not None and (empty.outcome, empty.event_ids) == (None, frozenset())
    state = store.load("bin").state
    assert state.cash == Decimal("-48.999999999999999999")
    assert state.strategies["BTC/USDT"] == 'stratégie "q"'
    assert store.load("bin").last_decided == 2**62
