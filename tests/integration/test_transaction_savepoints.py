"""Nested transactions against the real Redis: a savepoint undoes only what was staged
inside it; nothing is validated or written before the outermost commit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_tx import RedisStateStore, TransactionStateError, portfolio_transaction

BTC = "BTC/USDT"


class Boom(Exception):
    pass


def _fund(store: RedisStateStore, session: str, amount: str) -> None:
    with portfolio_transaction(store, session) as tx:
        tx.stage_transfer(amount)
        assert tx.commit({})


def test_an_exception_in_a_savepoint_undoes_only_what_it_staged(store: RedisStateStore) -> None:
    s = "sp-raise"
    _fund(store, s, "1000")
    before = store.raw_state(s)
    with portfolio_transaction(store, s) as tx:
        tx.stage_transfer("100")
        with tx.savepoint():
            tx.stage_transfer("10")
            with pytest.raises(Boom), tx.savepoint():
                tx.stage_fill(BTC, "BUY", "1", "500", "1")
                raise Boom
            with tx.nested() as sp:
                tx.stage_transfer("1")
                assert sp.depth == 2
        assert store.raw_state(s) == before  # savepoints write nothing
        assert tx.held_symbols() == ()
        assert tx.commit({})
    figures = store.get_latest_cash_equity(s)
    assert figures is not None and figures["total_equity"] == Decimal("1111")
    assert figures["total_fees"] == 0


def test_an_explicit_rollback_at_depth_three_keeps_the_outer_levels(
    store: RedisStateStore,
) -> None:
    s = "sp-rollback"
    _fund(store, s, "1000")
    with portfolio_transaction(store, s) as tx:
        with tx.savepoint():
            tx.stage_fill(BTC, "BUY", "1", "500", "0")
            with tx.savepoint():
                tx.stage_transfer("20")
                with tx.savepoint() as third:
                    tx.stage_fill(BTC, "BUY", "1", "600", "0")
                    tx.stage_lot_add(BTC, {"lot_id": "x", "quantity": "1", "cost_price": "1"})
                    third.rollback()
                    tx.stage_transfer("3")  # after the rollback: belongs to level 2
        assert tx.staged_lotbooks == {}
        assert tx.commit({BTC: "550"})
    figures = store.get_latest_cash_equity(s)
    # cash 1000 + 20 + 3 − 500 = 523; equity 523 + 550 = 1073
    assert figures is not None
    assert (figures["cash_balance"], figures["total_equity"]) == (Decimal("523"), Decimal("1073"))
    assert [p["quantity"] for p in store.get_positions(s)] == [Decimal("1")]


def test_only_the_outermost_commit_decides(store: RedisStateStore) -> None:
    s = "sp-commit"
    _fund(store, s, "1000")
    before = store.raw_state(s)
    with (
        pytest.raises(TransactionStateError, match="savepoint"),
        portfolio_transaction(store, s) as tx,
        tx.savepoint(),
    ):
        tx.stage_transfer("5")
        tx.commit({})
    assert tx.rolled_back and not tx.committed
    assert store.raw_state(s) == before
