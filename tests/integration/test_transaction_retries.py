"""Recovery from a lost race against the real Redis: commit_with_retries re-runs the
caller's staging on the new state, with bounded retries and backoff."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_tx import (
    PortfolioTransaction,
    RedisStateStore,
    RetriesExhaustedError,
    commit_with_retries,
    portfolio_transaction,
)


def _commit_transfer(store: RedisStateStore, session: str, amount: str) -> None:
    with portfolio_transaction(store, session) as tx:
        tx.stage_transfer(amount)
        assert tx.commit({})


def test_a_lost_race_is_retried_on_the_new_state(store: RedisStateStore) -> None:
    s = "retry-once"
    _commit_transfer(store, s, "1000")
    seen: list[Decimal] = []
    delays: list[float] = []

    def stage(tx: PortfolioTransaction) -> None:
        figures = tx.current_cash_equity
        assert figures is not None
        seen.append(figures["total_equity"])
        if len(seen) == 1:
            _commit_transfer(store, s, "50")  # another writer commits first
        tx.stage_transfer("10")

    result = commit_with_retries(
        store, s, stage, {}, backoff=0.01, jitter=False, sleep=delays.append
    )
    assert (result.committed, result.attempts) == (True, 2)
    assert seen == [Decimal("1000"), Decimal("1050")]
    assert delays == [0.01]
    figures = store.get_latest_cash_equity(s)
    assert figures is not None and figures["total_equity"] == Decimal("1060")
    assert result.decision.state.version == 3


def test_retries_are_bounded_and_back_off(store: RedisStateStore) -> None:
    s = "retry-exhausted"
    _commit_transfer(store, s, "1000")
    delays: list[float] = []

    def stage(tx: PortfolioTransaction) -> None:
        _commit_transfer(store, s, "1")  # always loses
        tx.stage_transfer("10")

    with pytest.raises(RetriesExhaustedError) as caught:
        commit_with_retries(
            store,
            s,
            stage,
            {},
            attempts=4,
            backoff=0.01,
            max_backoff=0.03,
            jitter=False,
            sleep=delays.append,
        )
    assert caught.value.attempts == 4
    assert delays == [0.01, 0.02, 0.03]
    figures = store.get_latest_cash_equity(s)
    assert figures is not None and figures["total_equity"] == Decimal("1004")  # none of ours


def test_a_discard_is_an_answer_not_a_retry(store: RedisStateStore) -> None:
    s = "retry-discard"
    _commit_transfer(store, s, "1000")
    result = commit_with_retries(
        store, s, lambda tx: tx.stage_realized_pnl_delta("500"), {}, sleep=lambda _: None
    )
    assert (result.committed, result.attempts) == (False, 1)
    assert result.decision.delta == Decimal("-500")


def test_marks_can_be_read_after_staging(store: RedisStateStore) -> None:
    s = "retry-marks"
    _commit_transfer(store, s, "1000")
    result = commit_with_retries(
        store,
        s,
        lambda tx: tx.stage_fill("BTC", "BUY", "0.01", "50000", "0"),
        lambda tx: {symbol: "50000" for symbol in tx.held_symbols()},
    )
    assert result.committed and result.attempts == 1
