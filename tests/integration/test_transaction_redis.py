"""The seed's library API against the real Redis: the six scenarios and the worked example."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from portfolio_tx import RedisStateStore, portfolio_transaction
from portfolio_tx.ledger import DiscardReason

pytestmark = pytest.mark.redis_cluster  # also against a Redis Cluster

BTC, ETH = "BTC/USDT", "ETH/USDT"


def _fund(store: RedisStateStore, session: str, amount: str) -> None:
    with portfolio_transaction(store, session) as tx:
        tx.stage_transfer(Decimal(amount))
        assert tx.commit({})


def test_worked_example_through_the_library_against_redis(store: RedisStateStore) -> None:
    s = "worked"
    with portfolio_transaction(store, s, cycle_id=1) as tx:
        tx.stage_transfer(Decimal("100000"))
        tx.stage_fill(BTC, "BUY", Decimal("1"), Decimal("50000"), Decimal("25"))
        assert tx.commit({BTC: Decimal("50500")})
        assert tx.decision and tx.decision.delta == 0 and tx.decision.epsilon == Decimal("1.00")
    assert store.get_latest_cash_equity(s) == {
        "cash_balance": Decimal("49975"),
        "total_equity": Decimal("100475"),
        "total_fees": Decimal("25"),
        "total_realized_pnl": Decimal("0"),
        "total_unrealized_pnl": Decimal("500"),
        "total_transfers": Decimal("100000"),
        "total_residual": Decimal("0"),
    }
    with portfolio_transaction(store, s, cycle_id=2) as tx:
        tx.stage_fill(BTC, "SELL", "0.4", "52000", "10.4")
        tx.stage_realized_pnl_delta("800")
        assert tx.commit({BTC: "51000"})
        assert tx.decision and tx.decision.epsilon == Decimal("10.0475")
    assert store.get_latest_cash_equity(s) == {
        "cash_balance": Decimal("70764.6"),
        "total_equity": Decimal("101364.6"),
        "total_fees": Decimal("35.4"),
        "total_realized_pnl": Decimal("800"),
        "total_unrealized_pnl": Decimal("600"),
        "total_transfers": Decimal("100000"),
        "total_residual": Decimal("0"),
    }
    before = store.raw_state(s)
    with portfolio_transaction(store, s, cycle_id=3) as tx:
        tx.stage_fill(BTC, "SELL", "1.0", "49000", "9.8")
        tx.stage_realized_pnl_delta("-500")
        assert not tx.commit({BTC: "48000"})
        d3 = tx.decision
        assert d3 and d3.reason is DiscardReason.VALIDATION_FAILED
        assert d3.delta == Decimal("-100") and d3.epsilon == Decimal("10.13646")
    assert store.raw_state(s) == before
    with portfolio_transaction(store, s, cycle_id=4) as tx:
        tx.stage_fill(BTC, "SELL", "1.0", "49000", "9.8")
        tx.stage_realized_pnl_delta("-600")
        assert tx.commit({BTC: "48000"})
    assert store.get_latest_cash_equity(s) == {
        "cash_balance": Decimal("119754.8"),
        "total_equity": Decimal("100554.8"),
        "total_fees": Decimal("45.2"),
        "total_realized_pnl": Decimal("200"),
        "total_unrealized_pnl": Decimal("400"),
        "total_transfers": Decimal("100000"),
        "total_residual": Decimal("0"),
    }
    assert store.get_positions(s) == [
        {
            "symbol": BTC,
            "quantity": Decimal("-0.4"),
            "entry_price": Decimal("49000"),
            "current_price": Decimal("48000"),
            "strategy": None,
            "unrealized_pnl": Decimal("400"),
        }
    ]
    for cycle, marks in ((5, {BTC: "47500"}), (6, {BTC: "47500", ETH: "3100"})):
        with portfolio_transaction(store, s, cycle_id=cycle) as tx:
            tx.stage_fill(BTC, "BUY", "0.4", "47000", "4.7")
            tx.stage_fill(ETH, "BUY", "10", "3000", "3")
            tx.stage_realized_pnl_delta("800")
            tx.stage_funding("-12.5")
            committed = tx.commit(marks)
        assert committed is (cycle == 6)
        if cycle == 5:
            assert tx.decision and tx.decision.reason is DiscardReason.MISSING_MARK
    assert store.get_latest_cash_equity(s) == {
        "cash_balance": Decimal("70934.6"),
        "total_equity": Decimal("101934.6"),
        "total_fees": Decimal("52.9"),
        "total_realized_pnl": Decimal("987.5"),
        "total_unrealized_pnl": Decimal("1000"),
        "total_transfers": Decimal("100000"),
        "total_residual": Decimal("0"),
    }
    assert store.get_positions(s) == [
        {
            "symbol": ETH,
            "quantity": Decimal("10"),
            "entry_price": Decimal("3000"),
            "current_price": Decimal("3100"),
            "strategy": None,
            "unrealized_pnl": Decimal("1000"),
        }
    ]
    snapshot = store.load(s)
    assert snapshot.state.last_cycle == 6 and snapshot.last_decided == 6


def test_epsilon_scales_with_portfolio_size(store: RedisStateStore) -> None:
    _fund(store, "small", "5000")
    _fund(store, "large", "2000000")
    for session, expected in (("small", Decimal("1.00")), ("large", Decimal("200"))):
        with portfolio_transaction(store, session) as tx:
            tx.stage_cash_delta(0)
            assert tx.commit({})
            assert tx.decision and tx.decision.epsilon == expected


def test_successful_commit_writes_state_and_positions(store: RedisStateStore) -> None:
    _fund(store, "s-1", "10000")
    prev = store.get_latest_cash_equity("s-1")
    assert prev is not None
    with portfolio_transaction(
        state_store=store,
        previous_equity=prev["total_equity"],
        session_id="s-1",
        portfolio_manager=object(),
    ) as tx:
        tx.stage_cash_delta(Decimal("-1000"), fees=Decimal("5"))
        tx.stage_position_delta(BTC, Decimal("0.02"), entry_price=Decimal("50000"))
        tx.stage_realized_pnl_delta(Decimal("0"))
        assert tx.commit({BTC: Decimal("51000")}) is True
    assert store.get_latest_cash_equity("s-1") == {
        "cash_balance": Decimal("8995"),
        "total_equity": Decimal("10015"),
        "total_fees": Decimal("5"),
        "total_realized_pnl": Decimal("0"),
        "total_unrealized_pnl": Decimal("20"),
        "total_transfers": Decimal("10000"),
        "total_residual": Decimal("0"),
    }
    assert store.get_positions("s-1")[0]["current_price"] == Decimal("51000")


def test_validation_failure_leaves_the_store_byte_for_byte_unchanged(
    store: RedisStateStore,
) -> None:
    _fund(store, "s-2", "10000")
    before = {key: store.client.dump(key) for key in store.keys_for("s-2")}
    with portfolio_transaction(store, "s-2") as tx:
        tx.stage_cash_delta(Decimal("-1000"), fees=Decimal("5"))
        tx.stage_position_delta(BTC, Decimal("0.02"), entry_price=Decimal("50000"))
        tx.stage_realized_pnl_delta(Decimal("500"))  # a claim the marks do not support
        assert tx.commit({BTC: Decimal("51000")}) is False
    assert {key: store.client.dump(key) for key in store.keys_for("s-2")} == before


def test_large_interim_swings_commit_when_the_final_state_reconciles(
    store: RedisStateStore,
) -> None:
    _fund(store, "s-3", "10000")
    with portfolio_transaction(store, "s-3", validation_epsilon="0") as tx:
        tx.stage_fill(BTC, "BUY", "100", "50000", "0")  # cash −5,000,000: far beyond ε
        tx.stage_fill(BTC, "SELL", "100", "50010", "0")
        tx.stage_realized_pnl_delta("1000")
        assert tx.commit({})
    equity = store.get_latest_cash_equity("s-3")
    assert equity is not None and equity["total_equity"] == Decimal("11000")


def test_an_exception_inside_the_block_rolls_back(store: RedisStateStore) -> None:
    _fund(store, "s-4", "10000")
    before = store.raw_state("s-4")
    with pytest.raises(RuntimeError, match="boom"), portfolio_transaction(store, "s-4") as tx:
        tx.stage_cash_delta(Decimal("-1000"))
        raise RuntimeError("boom")
    assert store.raw_state("s-4") == before
    with portfolio_transaction(store, "s-4") as tx:
        tx.stage_cash_delta(Decimal("-1000"))  # left without commit
    assert store.raw_state("s-4") == before


def test_multi_symbol_cycle_values_every_position(store: RedisStateStore) -> None:
    _fund(store, "s-5", "100000")
    with portfolio_transaction(store, "s-5") as tx:
        tx.stage_fill(BTC, "BUY", 0.5, 40000, 2)  # floats accepted at the edge
        tx.stage_fill(ETH, "BUY", "3", "2000", "1")
        tx.stage_fill("SOL/USDT", "SELL", "10", "150", "0.5")
        assert tx.commit({BTC: "41000", ETH: "1900", "SOL/USDT": "140"})
    positions = {p["symbol"]: p for p in store.get_positions("s-5")}
    assert positions[BTC]["quantity"] == Decimal("0.5")
    assert positions["SOL/USDT"]["quantity"] == Decimal("-10")
    equity = store.get_latest_cash_equity("s-5")
    assert equity is not None
    assert equity["total_equity"] == Decimal("100000") - Decimal("3.5") + 500 - 300 + 100


def test_decision_log_lines_keep_the_seed_shape(
    store: RedisStateStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portfolio_tx.transaction")
    _fund(store, "s-6", "100")
    with portfolio_transaction(store, "s-6", cycle_id=7) as tx:
        tx.stage_realized_pnl_delta("3")
        tx.commit({})
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith(
        "PORTFOLIO_COMMIT: cash=$100.00, positions=$0.00, total=$100.00 (Δ=$0.00, ε=$1.00)"
    )
    assert lines[1] == (
        "PORTFOLIO_DISCARD: reason=VALIDATION_FAILED Δ=$-3.00, ε=$1.00 session=s-6 cycle=7"
    )


def test_a_report_accepted_within_epsilon_books_what_the_lots_realized(
    store: RedisStateStore,
) -> None:
    """Issue 9's table: upstream claims 100.5, the lots realized 100; Δ −0.5 is within ε."""
    s = "drift"
    with portfolio_transaction(store, s, cycle_id=1) as tx:
        tx.stage_transfer("100000")
        tx.stage_fill(BTC, "BUY", "1", "50000", "0")
        assert tx.commit({BTC: "50000"})
    with portfolio_transaction(store, s, cycle_id=2) as tx:
        tx.stage_fill(BTC, "SELL", "1", "50100", "0")
        tx.stage_realized_pnl_delta("100.5")
        assert tx.commit({BTC: "50100"})
        assert tx.decision and (tx.decision.delta, tx.decision.epsilon) == (
            Decimal("-0.5"),
            Decimal("10"),
        )
    figures = store.get_latest_cash_equity(s)
    assert figures == {
        "cash_balance": Decimal("100100"),
        "total_equity": Decimal("100100"),
        "total_fees": Decimal("0"),
        "total_realized_pnl": Decimal("100"),
        "total_unrealized_pnl": Decimal("0"),
        "total_transfers": Decimal("100000"),
        "total_residual": Decimal("-0.5"),
    }
    assert figures["total_equity"] == (
        figures["total_transfers"]
        + figures["total_realized_pnl"]
        - figures["total_fees"]
        + figures["total_unrealized_pnl"]
    )
    assert store.get_positions(s) == []
