"""The store's remembered states against the real Redis: a document read back byte for byte
as this store wrote it is not parsed again, and any other document (another writer, a Redis
restored from an older snapshot, the key deleted) is read as it is."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_tx import RedisStateStore, portfolio_transaction

pytestmark = pytest.mark.redis_cluster  # also against a Redis Cluster


def _commit(store: RedisStateStore, session: str, amount: str) -> None:
    with portfolio_transaction(store, session) as tx:
        tx.stage_transfer(amount)
        assert tx.commit({})


def test_a_state_this_store_wrote_is_read_back_without_parsing(store: RedisStateStore) -> None:
    _commit(store, "own", "10")
    with portfolio_transaction(store, "own") as tx:
        tx.stage_transfer("5")
        tx.commit({})
        written = tx.applied.decision.state if tx.applied else None
    assert written is not None
    assert store.load("own").state is written  # the remembered object: nothing parsed
    cold = RedisStateStore(store.client, namespace=store.namespace)  # remembers nothing
    assert cold.load("own").state == written  # and a parse gives the same state


def test_another_writers_state_is_read_as_stored(store: RedisStateStore) -> None:
    other = RedisStateStore(store.client, namespace=store.namespace)
    _commit(store, "shared", "10")
    _commit(other, "shared", "32")  # staged on version 1, written by the other store
    read = store.load("shared").state
    assert (read.cash, read.version) == (Decimal("42"), 2)


def test_a_redis_restored_from_an_older_snapshot_is_read_as_restored(
    store: RedisStateStore,
) -> None:
    _commit(store, "rewound", "10")
    state_key = store.keys_for("rewound")[0]
    older = store.client.hgetall(state_key)  # the snapshot Redis will restart from
    _commit(store, "rewound", "90")
    assert store.load("rewound").state.cash == Decimal("100")
    store.client.hset(state_key, mapping=older)  # the restart: version 1 and its document
    read = store.load("rewound").state
    assert (read.cash, read.version) == (Decimal("10"), 1)
    store.client.delete(state_key)  # a FLUSHALL
    assert store.load("rewound").state.version == 0


def test_the_remembered_states_are_bounded(store: RedisStateStore) -> None:
    small = RedisStateStore(store.client, namespace=store.namespace, parsed_states=2)
    for session in ("a", "b", "c"):
        _commit(small, session, "1")
    written = {s: small.load(s).state for s in ("b", "c")}  # the two kept
    assert small.load("b").state is written["b"]
    first = small.load("a").state  # evicted by "c": parsed again (and now kept, "b" out)
    assert (first.cash, first.version) == (Decimal("1"), 1)
    assert small.load("a").state is first
    none = RedisStateStore(store.client, namespace=store.namespace, parsed_states=0)
    assert none.load("a").state is not none.load("a").state  # parsed on every read
