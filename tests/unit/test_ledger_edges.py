"""Edge cases of the accounting core, one named behaviour per test."""

from decimal import Decimal

import pytest
from ledger_helpers import position, run_cycle

from portfolio_tx import ledger
from portfolio_tx.errors import ValidationError
from portfolio_tx.ledger import CostBasis, D, DiscardReason, PortfolioState, Side

FUNDED = run_cycle(PortfolioState(), pnl=[("TRANSFER", "1000000")], cycle_id=1).state


def test_open_partial_close_and_full_close_to_exactly_zero() -> None:
    opened = run_cycle(FUNDED, [("X", "BUY", "3", "100", "0")], marks={"X": "100"}).state
    assert position(opened, "X") == (3, 100)
    partial = run_cycle(
        opened, [("X", "SELL", "1", "110", "0")], [("REALIZED", "10")], {"X": "110"}
    )
    assert partial.committed and position(partial.state, "X") == (2, 100)
    closed = run_cycle(partial.state, [("X", "SELL", "2", "90", "0")], [("REALIZED", "-20")], {})
    assert closed.committed and closed.delta == 0
    assert position(closed.state, "X") is None and "X" not in closed.state.lots
    assert closed.state.realized_pnl == -10


def test_flip_long_to_short_realizes_only_the_closed_part() -> None:
    long = run_cycle(FUNDED, [("X", "BUY", "2", "100", "0")], marks={"X": "100"}).state
    flip = run_cycle(long, [("X", "SELL", "5", "130", "0")], [("REALIZED", "60")], {"X": "130"})
    assert flip.committed and flip.delta == 0
    assert position(flip.state, "X") == (-3, 130)


def test_flip_short_to_long_in_one_fill() -> None:
    short = run_cycle(FUNDED, [("X", "SELL", "2", "100", "0")], marks={"X": "100"}).state
    flip = run_cycle(short, [("X", "BUY", "3", "80", "0")], [("REALIZED", "40")], {"X": "80"})
    assert flip.committed and flip.delta == 0
    assert position(flip.state, "X") == (1, 80)


def test_short_from_flat_adds_the_proceeds_to_cash() -> None:
    short = run_cycle(FUNDED, [("X", "SELL", "4", "50", "1")], marks={"X": "50"})
    assert short.committed and short.delta == 0
    assert short.state.cash == Decimal("1000199")
    assert position(short.state, "X") == (-4, 50)


def test_flat_then_reopen_keeps_cumulative_realized_pnl() -> None:
    s = run_cycle(FUNDED, [("X", "BUY", "1", "100", "0")], marks={"X": "100"}).state
    s = run_cycle(s, [("X", "SELL", "1", "150", "0")], [("REALIZED", "50")]).state
    assert position(s, "X") is None and s.realized_pnl == 50
    reopened = run_cycle(s, [("X", "BUY", "2", "120", "0")], marks={"X": "120"}).state
    assert position(reopened, "X") == (2, 120) and reopened.realized_pnl == 50


def test_zero_and_negative_rebate_fees_move_cash_but_never_realized_pnl() -> None:
    zero = run_cycle(FUNDED, [("X", "BUY", "1", "100", "0")], marks={"X": "100"})
    rebate = run_cycle(FUNDED, [("X", "BUY", "1", "100", "-0.5")], marks={"X": "100"})
    assert zero.committed and rebate.committed and rebate.delta == 0
    assert rebate.state.cash == zero.state.cash + Decimal("0.5")
    assert rebate.state.fees == Decimal("-0.5") and rebate.state.realized_pnl == 0


def test_a_long_run_of_tiny_fills_does_not_drift() -> None:
    staged = ledger.open_cycle(FUNDED)
    for i in range(2000):
        side = Side.BUY if i % 3 else Side.SELL
        price = D("100.000000000000000001") + D(i).scaleb(-15)
        staged = ledger.stage_fill(staged, "X", side, D("0.000000000000000001"), price, D("0"))
    staged = ledger.stage_pnl(staged, ledger.PnlKind.REALIZED, staged.ledger_realized)
    decision = ledger.decide(staged, {"X": D("100.5")})
    assert decision.committed and decision.delta == 0


@pytest.mark.parametrize("basis", list(CostBasis))
def test_average_cost_and_fifo_both_conserve_value_exactly(basis: CostBasis) -> None:
    staged = ledger.open_cycle(FUNDED, basis)
    for side, q, p in [("BUY", "1", "3"), ("BUY", "2", "7"), ("SELL", "1", "5"), ("BUY", "3", "1")]:
        staged = ledger.stage_fill(staged, "X", Side(side), D(q), D(p), D("0"))
    staged = ledger.stage_pnl(staged, ledger.PnlKind.REALIZED, staged.ledger_realized)
    decision = ledger.decide(staged, {"X": D("4")})
    assert decision.committed and decision.delta == 0


def _residual(delta: str) -> ledger.Decision:
    """A cycle on 20,000 of equity (ε = 2) whose reported realized P&L is off by ``delta``."""
    base = run_cycle(PortfolioState(), pnl=[("TRANSFER", "20000")]).state
    return run_cycle(base, [("X", "BUY", "1", "100", "0")], [("REALIZED", delta)], {"X": "100"})


def test_residual_exactly_at_epsilon_commits() -> None:
    decision = _residual("-2")
    assert decision.epsilon == 2 and decision.delta == 2 and decision.committed


def test_residual_just_above_epsilon_discards() -> None:
    decision = _residual("-2.000000000000000001")
    assert not decision.committed and decision.reason is DiscardReason.VALIDATION_FAILED


def test_missing_mark_discards_and_is_never_priced_at_zero() -> None:
    decision = run_cycle(FUNDED, [("X", "BUY", "1", "100", "0")], marks={"Y": "5"})
    assert decision.reason is DiscardReason.MISSING_MARK and decision.state == FUNDED
    cheap = run_cycle(FUNDED, [("X", "BUY", "1", "100", "0")], [("REALIZED", "-100")], {})
    assert cheap.reason is DiscardReason.MISSING_MARK


def test_epsilon_is_one_below_ten_thousand_and_a_basis_point_above() -> None:
    assert ledger.epsilon_for(D("9999")) == D("1.00")
    assert ledger.epsilon_for(D("10000")) == D("1.00")
    assert ledger.epsilon_for(D("2500000")) == D("250")
    assert ledger.epsilon_for(D("2500000"), D("0")) == 0


@pytest.mark.parametrize(("quantity", "price"), [("0", "1"), ("-1", "1"), ("1", "0"), ("1", "-5")])
def test_fill_with_non_positive_quantity_or_price_is_rejected(quantity: str, price: str) -> None:
    with pytest.raises(ValidationError):
        ledger.stage_fill(ledger.open_cycle(FUNDED), "X", Side.BUY, D(quantity), D(price), D(0))


def test_exact_computes_wide_whatever_the_callers_context_and_restores_it() -> None:
    """``exact`` enters the ledger's context once; nested exact calls reuse it; the caller's
    own context (here a narrow one) is neither used inside nor changed after."""
    import decimal

    from portfolio_tx.ledger.money import LEDGER_PRECISION, exact

    seen: list[tuple[int, decimal.Context]] = []

    @exact
    def inner(a: Decimal, b: Decimal) -> Decimal:
        seen.append((decimal.getcontext().prec, decimal.getcontext()))
        return a * b

    @exact
    def outer(a: Decimal, b: Decimal) -> Decimal:
        seen.append((decimal.getcontext().prec, decimal.getcontext()))
        return inner(a, b) + inner(b, a)

    x, y = Decimal("1.000000000000000001"), Decimal("3.000000000000000007")
    with decimal.localcontext(decimal.Context(prec=6)) as narrow:
        assert outer(x, y) == Decimal("6.000000000000000020000000000000000014")
        assert decimal.getcontext() is narrow and narrow.prec == 6
        assert x * y == Decimal("3.00000")  # the caller's context still rounds as before
    assert [p for p, _ in seen] == [LEDGER_PRECISION] * 3
    assert seen[0][1] is seen[1][1] is seen[2][1]  # entered once, not per nested call
    assert seen[0][1] is not narrow
    assert inner(x, y) == Decimal("3.000000000000000010000000000000000007")  # outside any
