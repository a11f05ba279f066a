"""The usage examples as written, with floats at the edge, against the real Redis; each
outcome is checked against the exact rule (CONTRACT §2) worked by hand in the comments,
never against figures our own code computes.

    T = cash′ + Σ qty′·m′      X = prev + transfers + funding + reported − fees + (U′ − U)
    Δ = T − X                  ε = max(1.00, 0.0001 · prev)       COMMIT iff |Δ| ≤ ε
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from portfolio_tx import DiscardReason, RedisStateStore, portfolio_transaction


@pytest.fixture
def url_store(redis_url: str) -> Iterator[RedisStateStore]:
    """``RedisStateStore.from_url`` as the example builds it, in a namespace of its own."""
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    store = RedisStateStore.from_url(redis_url, namespace=namespace)
    yield store
    for key in store.client.scan_iter(match=f"{namespace}:*"):
        store.client.delete(key)
    store.client.close()


def _fund(store: RedisStateStore, session: str, amount: float) -> float:
    with portfolio_transaction(store, session) as tx:
        tx.stage_transfer(amount)
        assert tx.commit({})
    figures = store.get_latest_cash_equity(session)
    assert figures is not None
    return float(figures["total_equity"])


def test_the_contract_example_commits_at_the_exact_figures(url_store: RedisStateStore) -> None:
    store = url_store
    prev = _fund(store, "s-1", 10000.0)
    with portfolio_transaction(
        state_store=store, previous_equity=prev, session_id="s-1", portfolio_manager=None
    ) as tx:
        tx.stage_cash_delta(-1000.0, fees=5.0)
        tx.stage_position_delta("BTC/USDT", 0.02, entry_price=50000.0)
        tx.stage_realized_pnl_delta(0.0)
        ok = tx.commit({"BTC/USDT": 51000.0})
    # cash′ = 10000 − 1000 − 5 = 8995; T = 8995 + 0.02·51000 = 10015
    # U′ = 0.02·(51000 − 50000) = 20, U = 0; X = 10000 + 0 − 5 + 20 = 10015; Δ = 0
    # ε = max(1.00, 0.0001·10000 = 1) = 1.00 → COMMIT
    assert ok is True
    assert tx.decision is not None
    assert (tx.decision.total, tx.decision.expected_equity) == (Decimal("10015"), Decimal("10015"))
    assert (tx.decision.delta, tx.decision.epsilon) == (Decimal("0"), Decimal("1.00"))
    assert store.get_latest_cash_equity("s-1") == {
        "cash_balance": Decimal("8995"),
        "total_equity": Decimal("10015"),
        "total_fees": Decimal("5"),
        "total_realized_pnl": Decimal("0"),
        "total_unrealized_pnl": Decimal("20"),
        "total_transfers": Decimal("10000"),
        "total_residual": Decimal("0"),
    }
    [position] = store.get_positions("s-1")
    assert (position["quantity"], position["entry_price"], position["current_price"]) == (
        Decimal("0.02"),
        Decimal("50000"),
        Decimal("51000"),
    )


def test_the_seed_basic_example_discards_a_realized_claim_nothing_realized(
    url_store: RedisStateStore,
) -> None:
    store, session_id = url_store, "seed-basic"
    previous_equity = _fund(store, session_id, 100000.0)
    before = store.raw_state(session_id)
    with portfolio_transaction(
        state_store=store,
        portfolio_manager=None,
        previous_equity=previous_equity,
        session_id=session_id,
    ) as tx:
        tx.stage_cash_delta(-1000.0, fees=5.0)
        tx.stage_position_delta("BTC/USDT", 0.02, entry_price=50000.0)
        tx.stage_realized_pnl_delta(50.0)
        mark_prices = {"BTC/USDT": 51000.0}
        success = tx.commit(mark_prices)
    # T = 100000 − 1005 + 1020 = 100015; X = 100000 + 50 − 5 + 20 = 100065
    # Δ = −50, ε = max(1.00, 10) = 10 → DISCARD: the 50 "realized" was never realized
    assert success is False
    assert tx.decision is not None
    assert tx.decision.reason is DiscardReason.VALIDATION_FAILED
    assert (tx.decision.delta, tx.decision.epsilon) == (Decimal("-50"), Decimal("10"))
    assert (tx.committed, tx.rolled_back) == (False, True)
    assert store.raw_state(session_id) == before


def test_the_seed_interim_swings_example_is_valued_only_at_the_end(
    url_store: RedisStateStore,
) -> None:
    store, session_id = url_store, "seed-swings"
    previous_equity = _fund(store, session_id, 100000.0)
    with portfolio_transaction(
        state_store=store,
        portfolio_manager=None,
        previous_equity=previous_equity,
        session_id=session_id,
    ) as tx:
        tx.stage_cash_delta(-50000.0, fees=250.0)
        tx.stage_position_delta("BTC/USDT", 1.0, entry_price=50000.0)
        tx.stage_realized_pnl_delta(25000.0)
        final_mark_prices = {"BTC/USDT": 60000.0}
        success = tx.commit(final_mark_prices)
    # T = 100000 − 50250 + 60000 = 109750; U′ = 60000 − 50000 = 10000
    # X = 100000 + 25000 − 250 + 10000 = 134750; Δ = −25000 → DISCARD: the gain is unrealized
    assert success is False
    assert tx.decision is not None
    assert (tx.decision.total, tx.decision.delta) == (Decimal("109750"), Decimal("-25000"))

    # The same trade without the claim: X = 100000 − 250 + 10000 = 109750, Δ = 0 → COMMIT
    with portfolio_transaction(
        state_store=store, previous_equity=previous_equity, session_id=session_id
    ) as tx:
        tx.stage_cash_delta(-50000.0, fees=250.0)
        tx.stage_position_delta("BTC/USDT", 1.0, entry_price=50000.0)
        assert tx.commit({"BTC/USDT": 60000.0}) is True
    figures = store.get_latest_cash_equity(session_id)
    assert figures is not None
    assert (figures["cash_balance"], figures["total_equity"]) == (
        Decimal("49750"),
        Decimal("109750"),
    )
    assert figures["total_unrealized_pnl"] == Decimal("10000")
