"""CONTRACT §2's worked example, every number, through the pure core."""

from decimal import Decimal

from ledger_helpers import position, run_cycle

from portfolio_tx.ledger import DiscardReason, PortfolioState

FILLS_5 = [("BTC/USDT", "BUY", "0.4", "47000", "4.7"), ("ETH/USDT", "BUY", "10", "3000", "3")]
PNL_5 = [("REALIZED", "800"), ("FUNDING", "-12.5")]


def test_worked_example_every_figure_matches_the_contract_table() -> None:
    c1 = run_cycle(
        PortfolioState(),
        [("BTC/USDT", "BUY", "1", "50000", "25")],
        [("TRANSFER", "100000")],
        {"BTC/USDT": "50500"},
        cycle_id=1,
    )
    assert c1.committed and c1.delta == 0 and c1.epsilon == Decimal("1.00")
    s1 = c1.state
    assert (s1.cash, s1.equity, s1.realized_pnl, s1.fees) == (49975, 100475, 0, 25)
    assert position(s1, "BTC/USDT") == (1, 50000)

    c2 = run_cycle(
        s1,
        [("BTC/USDT", "SELL", "0.4", "52000", "10.4")],
        [("REALIZED", "800")],
        {"BTC/USDT": "51000"},
        cycle_id=2,
    )
    assert c2.committed and c2.delta == 0 and c2.epsilon == Decimal("10.0475")
    s2 = c2.state
    assert (s2.cash, s2.equity, s2.realized_pnl, s2.fees) == (
        Decimal("70764.6"),
        Decimal("101364.6"),
        800,
        Decimal("35.4"),
    )
    assert position(s2, "BTC/USDT") == (Decimal("0.6"), 50000)

    c3 = run_cycle(
        s2,
        [("BTC/USDT", "SELL", "1.0", "49000", "9.8")],
        [("REALIZED", "-500")],
        {"BTC/USDT": "48000"},
        cycle_id=3,
    )
    assert not c3.committed and c3.reason is DiscardReason.VALIDATION_FAILED
    assert c3.delta == Decimal("-100") and c3.epsilon == Decimal("10.13646")
    assert c3.state == s2

    c4 = run_cycle(
        s2,
        [("BTC/USDT", "SELL", "1.0", "49000", "9.8")],
        [("REALIZED", "-600")],
        {"BTC/USDT": "48000"},
        cycle_id=4,
    )
    assert c4.committed and c4.delta == 0
    s4 = c4.state
    assert (s4.cash, s4.equity, s4.realized_pnl, s4.fees) == (
        Decimal("119754.8"),
        Decimal("100554.8"),
        200,
        Decimal("45.2"),
    )
    assert position(s4, "BTC/USDT") == (Decimal("-0.4"), 49000)

    c5 = run_cycle(s4, FILLS_5, PNL_5, {"BTC/USDT": "47500"}, cycle_id=5)
    assert not c5.committed and c5.reason is DiscardReason.MISSING_MARK
    assert c5.state == s4

    c6 = run_cycle(s4, FILLS_5, PNL_5, {"BTC/USDT": "47500", "ETH/USDT": "3100"}, cycle_id=6)
    assert c6.committed and c6.delta == 0
    s6 = c6.state
    assert (s6.cash, s6.equity, s6.realized_pnl, s6.fees) == (
        Decimal("70934.6"),
        Decimal("101934.6"),
        Decimal("987.5"),
        Decimal("52.9"),
    )
    assert position(s6, "BTC/USDT") is None
    assert position(s6, "ETH/USDT") == (10, 3000)
    assert s6.last_cycle == 6 and s6.version == 4
