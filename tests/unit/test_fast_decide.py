"""``ledger.fast.decide_fast`` (the transaction's commit path) equals ``ledger.decide`` (the
reference rule), decision for decision and digit for digit: every Decimal of the Decision and
of its state has the same sign, digits and exponent, over random sequences of cycles (fills,
P&L of each kind, cash and position legs, lot edits, both cost bases, missing marks, given
previous equity and epsilon, reports near and far from the ledger's figure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from ledger_helpers import digits

from portfolio_tx import ledger
from portfolio_tx.errors import ValidationError
from portfolio_tx.ledger import CostBasis, PnlKind, PortfolioState, Side
from portfolio_tx.ledger import journal as ops
from portfolio_tx.ledger.fast import decide_fast
from portfolio_tx.ledger.money import exact

SYMBOLS = ("BTC", "ETH", "SOL")


def _decimal(low: int, high: int, places: int, up: int = 0) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda n, k: Decimal(n).scaleb(k), st.integers(low, high), st.integers(-places, up)
    )


quantities = _decimal(1, 10**9, 18)
prices = _decimal(1, 10**9, 18, up=2)
amounts = _decimal(-(10**9), 10**9, 18, up=3)
symbols = st.sampled_from(SYMBOLS)

op_strategy = st.one_of(
    st.builds(ops.Fill, symbols, st.sampled_from(list(Side)), quantities, prices, amounts),
    st.builds(ops.Pnl, st.sampled_from(list(PnlKind)), amounts),
    st.builds(ops.CashDelta, amounts, amounts),
    st.builds(
        ops.PositionLeg,
        symbols,
        amounts,
        st.none() | prices,
        st.none(),
        st.none() | st.sampled_from(["alpha", "beta"]),
    ),
    st.builds(ops.LotAdd, symbols, amounts.filter(lambda d: not d.is_zero()), prices),
    st.builds(ops.LotRemove, symbols, st.integers(-2, 2)),
    st.builds(ops.LotUpdate, symbols, st.integers(-2, 2), st.none() | quantities, st.none()),
)

cycle_strategy = st.fixed_dictionaries(
    {
        "ops": st.lists(op_strategy, max_size=6),
        "marks": st.dictionaries(symbols, prices, max_size=3),
        "all_marked": st.booleans(),
        "previous_equity": st.none() | amounts,
        "epsilon": st.none() | _decimal(0, 10**6, 4),
        "report_gap": st.none() | amounts,  # None: report exactly what the ledger realized
        "cycle_id": st.none() | st.integers(0, 10**12),
    }
)


@exact
def _with_report(staged: ledger.StagedCycle, gap: Decimal | None) -> ledger.StagedCycle:
    claim = staged.ledger_realized + staged.funding if gap is None else gap
    return ledger.stage_pnl(staged, PnlKind.REALIZED, claim)


def _staged(state: PortfolioState, basis: CostBasis, spec: dict[str, Any]) -> Any:
    kept: list[ops.Op] = []
    for op in spec["ops"]:
        try:
            ops.replay(state, basis, [*kept, op])
        except ValidationError:
            continue
        kept.append(op)
    return _with_report(ops.replay(state, basis, kept), spec["report_gap"])


@settings(max_examples=400, deadline=None)
@given(st.lists(cycle_strategy, min_size=1, max_size=6), st.sampled_from(list(CostBasis)))
def test_decide_fast_equals_the_reference_rule_digit_for_digit(
    cycles: list[dict[str, Any]], basis: CostBasis
) -> None:
    state = PortfolioState()
    for spec in cycles:
        staged = _staged(state, basis, spec)
        marks = dict(spec["marks"])
        if spec["all_marked"]:
            for symbol in staged.held_symbols():
                marks.setdefault(symbol, Decimal("101.5"))
        options = {
            "cycle_id": spec["cycle_id"],
            "previous_equity": spec["previous_equity"],
            "epsilon": spec["epsilon"],
        }
        reference = ledger.decide(staged, marks, **options)
        fast = decide_fast(staged, marks, **options)
        event(f"{reference.outcome} {reference.reason} lots={bool(reference.state.lots)}")
        assert fast == reference
        assert digits(fast) == digits(reference)
        state = reference.state


def test_the_worked_example_commits_the_same_way() -> None:
    staged = ledger.open_cycle(PortfolioState())
    staged = ledger.stage_pnl(staged, PnlKind.TRANSFER, Decimal("100000"))
    staged = ledger.stage_fill(
        staged, "BTC/USDT", Side.BUY, Decimal(1), Decimal(50000), Decimal(25)
    )
    marks = {"BTC/USDT": Decimal("50500")}
    fast = decide_fast(staged, marks, cycle_id=1)
    assert fast == ledger.decide(staged, marks, cycle_id=1)
    assert (fast.committed, fast.state.cash, fast.state.equity) == (
        True,
        Decimal("49975"),
        Decimal("100475"),
    )
