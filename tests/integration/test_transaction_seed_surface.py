"""The original module's surface, against the real Redis: its names, attributes, lots by id,
a trade recorded the seed's way (position delta and lot) booked once, and position rows.

Every expected figure is worked by hand from CONTRACT §2 in the comments."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from portfolio_tx import (
    PortfolioTransaction,
    RedisStateStore,
    StagedCash,
    StagedLotBook,
    StagedPosition,
    StagedRealizedPnl,
    ValidationError,
    portfolio_transaction,
)

BTC, ETH = "BTC/USDT", "ETH/USDT"
OPENED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _fund(store: RedisStateStore, session: str, amount: str) -> None:
    with portfolio_transaction(store, session) as tx:
        tx.stage_transfer(amount)
        assert tx.commit({})


def _seed_position(store: RedisStateStore, session: str) -> None:
    """100000 in, then 1 BTC @ 50000 recorded the seed's way: cash 50000, equity 100000."""
    _fund(store, session, "100000")
    with portfolio_transaction(store, session) as tx:
        tx.stage_cash_delta(-50000.0)
        tx.stage_position_delta(BTC, 1.0, entry_price=50000.0, strategy="carry")
        tx.stage_lot_add(BTC, {"lot_id": "btc_lot_0", "quantity": 1.0, "cost_price": 50000.0})
        assert tx.commit({BTC: 50000.0})


def test_portfolio_transaction_is_a_context_manager_with_the_seed_attributes(
    store: RedisStateStore,
) -> None:
    s = "attrs"
    _seed_position(store, s)
    with PortfolioTransaction(
        state_store=store,
        portfolio_manager=object(),
        previous_equity=100000.0,
        session_id=s,
        validation_epsilon=None,
    ) as tx:
        assert tx.session_id == s
        assert tx.previous_equity == Decimal("100000")
        assert tx.validation_epsilon == Decimal("10")  # max(1.00, 0.0001 · 100000)
        assert (tx.committed, tx.rolled_back) == (False, False)
        assert tx.current_cash_equity == store.get_latest_cash_equity(s)
        assert tx.current_positions == store.get_positions(s)
        assert tx.current_lotbooks == {
            BTC: [
                {
                    "lot_id": "btc_lot_0",
                    "quantity": Decimal("1"),
                    "cost_price": Decimal("50000"),
                    "fee": None,
                    "timestamp": None,
                }
            ]
        }
        tx.stage_cash_delta(-1)
    assert (tx.committed, tx.rolled_back) == (False, True)  # left without commit


def test_staged_views_show_what_is_staged_and_are_read_only(store: RedisStateStore) -> None:
    s = "views"
    _seed_position(store, s)
    before = store.raw_state(s)
    with portfolio_transaction(
        state_store=store, portfolio_manager=None, previous_equity=100000.0, session_id=s
    ) as tx:
        tx.stage_cash_delta(-5000.0, fees=25.0)
        tx.stage_cash_delta(3000.0, fees=15.0)
        tx.stage_position_delta(BTC, 0.1, entry_price=50000.0, current_price=51000.0)
        tx.stage_position_delta(ETH, 10.0, entry_price=3000.0, current_price=3100.0)
        lot = {"lot_id": "btc_lot_1", "quantity": 0.1, "cost_price": 50000.0, "fee": 25.0}
        tx.stage_lot_add(BTC, {**lot, "timestamp": OPENED})
        tx.stage_realized_pnl_delta(500.0)

        assert tx.staged_cash == StagedCash(Decimal("-2000"), Decimal("40"))
        assert tx.staged_realized_pnl == StagedRealizedPnl(Decimal("500"))
        # the BTC trade is a position delta AND its lot: +0.1 once, not +0.2
        assert tx.staged_positions == {
            BTC: StagedPosition(BTC, Decimal("0.1"), Decimal("50000"), Decimal("51000"), "carry"),
            ETH: StagedPosition(ETH, Decimal("10"), Decimal("3000"), Decimal("3100"), None),
        }
        book = tx.staged_lotbooks[BTC]
        assert isinstance(book, StagedLotBook) and len(book.lots_to_add) == 1
        assert book.lots_to_add[0]["timestamp"] == OPENED.isoformat()
        with pytest.raises(dataclasses.FrozenInstanceError):
            tx.staged_cash.delta = Decimal(0)  # type: ignore[misc]
        with pytest.raises(TypeError):
            book.lots_to_add[0]["quantity"] = 1  # type: ignore[index]

        # The cash legs do not pay for what was bought: T = 47960 + 1.1·51000 + 10·3100
        # = 135060; X = 100000 + 500 − 40 + (U′ 2100 − U 0) = 102560; Δ = 32500 > ε 10.
        assert tx.commit({BTC: 51000.0, ETH: 3100.0}) is False
        assert tx.decision is not None and tx.decision.delta == Decimal("32500")
        assert (tx.committed, tx.rolled_back) == (False, True)
    assert store.raw_state(s) == before


def test_a_trade_recorded_the_seed_way_is_booked_once_then_closed_by_lot_id(
    store: RedisStateStore,
) -> None:
    s = "once"
    _fund(store, s, "100000")
    with portfolio_transaction(store, s, previous_equity=100000.0) as tx:
        tx.stage_cash_delta(-5000.0, fees=2.5)
        tx.stage_position_delta(BTC, 0.1, entry_price=50000.0, strategy="momentum")
        tx.stage_lot_add(
            BTC,
            {
                "lot_id": "btc-1",
                "quantity": 0.1,
                "cost_price": 50000.0,
                "fee": 2.5,
                "timestamp": OPENED,
            },
        )
        tx.stage_realized_pnl_delta(0.0)
        # cash 94997.5; T = 94997.5 + 0.1·50500 = 100047.5; X = 100000 − 2.5 + 50 → Δ = 0.
        # (Booked twice, T would be 105097.5 and Δ 5000: a discard.)
        assert tx.commit({BTC: 50500.0}) is True
        assert (tx.committed, tx.rolled_back) == (True, False)
    assert store.get_latest_cash_equity(s) == {
        "cash_balance": Decimal("94997.5"),
        "total_equity": Decimal("100047.5"),
        "total_fees": Decimal("2.5"),
        "total_realized_pnl": Decimal("0"),
        "total_unrealized_pnl": Decimal("50"),
        "total_transfers": Decimal("100000"),
        "total_residual": Decimal("0"),
    }
    assert store.get_positions(s) == [
        {
            "symbol": BTC,
            "quantity": Decimal("0.1"),
            "entry_price": Decimal("50000"),
            "current_price": Decimal("50500"),
            "strategy": "momentum",
            "unrealized_pnl": Decimal("50"),
        }
    ]

    # Sell 0.04 @ 51000 fee 1, the seed's way: a close without entry_price, the lot resized.
    with portfolio_transaction(store, s) as tx:
        assert tx.current_lotbooks[BTC][0]["fee"] == Decimal("2.5")
        assert tx.current_lotbooks[BTC][0]["timestamp"] == OPENED.isoformat()
        tx.stage_cash_delta(2040.0, fees=1.0)
        tx.stage_position_delta(BTC, -0.04)
        tx.stage_lot_update(BTC, "btc-1", {"quantity": 0.06})
        tx.stage_realized_pnl_delta(40.0)  # 0.04 · (51000 − 50000)
        # cash 97036.5; T = 97036.5 + 3060 = 100096.5; X = 100047.5 + 40 − 1 + (60 − 50).
        assert tx.commit({BTC: 51000.0})
    figures = store.get_latest_cash_equity(s)
    assert figures is not None
    assert (figures["cash_balance"], figures["total_equity"], figures["total_realized_pnl"]) == (
        Decimal("97036.5"),
        Decimal("100096.5"),
        Decimal("40"),
    )
    assert store.get_positions(s)[0]["quantity"] == Decimal("0.06")
    assert store.get_positions(s)[0]["strategy"] == "momentum"

    # The rest @ 52000, the lot removed by id: realized 0.06 · 2000 = 120.
    with portfolio_transaction(store, s) as tx:
        tx.stage_cash_delta(3120.0)
        tx.stage_position_delta(BTC, -0.06)
        tx.stage_lot_remove(BTC, "btc-1")
        tx.stage_realized_pnl_delta(120.0)
        # T = 100156.5; X = 100096.5 + 120 + (0 − 60) = 100156.5.
        assert tx.commit({})
    figures = store.get_latest_cash_equity(s)
    assert figures is not None
    assert (figures["total_equity"], figures["total_realized_pnl"]) == (
        Decimal("100156.5"),
        Decimal("160"),
    )
    assert store.get_positions(s) == []


def test_a_close_without_entry_price_moves_the_lots_by_cost_basis(store: RedisStateStore) -> None:
    s = "close"
    _fund(store, s, "10000")
    with portfolio_transaction(store, s) as tx:
        tx.stage_cash_delta(-1000, fees=0)
        tx.stage_position_delta(BTC, "0.02", entry_price="50000")
        assert tx.commit({BTC: "50000"})
    with portfolio_transaction(store, s) as tx:
        tx.stage_cash_delta(520)  # sell 0.01 @ 52000
        tx.stage_position_delta(BTC, "-0.01")
        tx.stage_realized_pnl_delta(20)
        # T = 9520 + 0.01·52000 = 10040; X = 10000 + 20 + (0.01·2000 − 0) = 10040.
        assert tx.commit({BTC: "52000"})
    position = store.get_positions(s)[0]
    assert (position["quantity"], position["entry_price"]) == (Decimal("0.01"), Decimal("50000"))
    with portfolio_transaction(store, s) as tx, pytest.raises(ValidationError, match="close"):
        tx.stage_position_delta(BTC, "-0.5")  # more than is held, and no price to open at


def test_legs_and_lot_edits_that_disagree_are_refused_and_nothing_is_written(
    store: RedisStateStore,
) -> None:
    s = "mismatch"
    _fund(store, s, "10000")
    before = store.raw_state(s)
    with portfolio_transaction(store, s) as tx:
        tx.stage_position_delta(BTC, "0.2", entry_price="50000")
        tx.stage_lot_add(BTC, {"lot_id": "a", "quantity": "0.1", "cost_price": "50000"})
        with pytest.raises(ValidationError, match=r"legs move 0\.2, its lot edits 0\.1"):
            tx.commit({BTC: "50000"})
    assert tx.rolled_back and not tx.committed
    assert store.raw_state(s) == before


def test_lot_dicts_with_unknown_keys_or_duplicate_ids_are_refused(store: RedisStateStore) -> None:
    s = "lot-input"
    _seed_position(store, s)
    with portfolio_transaction(store, s) as tx:
        with pytest.raises(ValidationError, match="unknown keys"):
            tx.stage_lot_add(BTC, {"lot_id": "x", "quantity": 1, "cost_price": 1, "side": "BUY"})
        with pytest.raises(ValidationError, match="already has a lot"):
            tx.stage_lot_add(BTC, {"lot_id": "btc_lot_0", "quantity": 1, "cost_price": 1})
        with pytest.raises(ValidationError, match="no lot 'nope'"):
            tx.stage_lot_remove(BTC, "nope")
        assert tx.staged_lotbooks == {}
