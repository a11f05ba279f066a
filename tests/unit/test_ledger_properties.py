"""Properties of the accounting core over random fill/transfer/funding sequences."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_tx import ledger
from portfolio_tx.ledger import CostBasis, D, DiscardReason, PnlKind, PortfolioState, Side

SYMBOLS = ("BTC", "ETH", "SOL")


def _decimal(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.builds(lambda n, k: D(n).scaleb(-k), st.integers(low, high), st.integers(0, places))


quantities = _decimal(1, 10**7, 8)
prices = _decimal(1, 10**7, 6)
fees = _decimal(-100, 10**4, 4)


@dataclass(frozen=True)
class CycleSpec:
    fills: tuple[tuple[str, Side, Decimal, Decimal, Decimal], ...]
    transfers: tuple[Decimal, ...]
    funding: tuple[Decimal, ...]
    marks: dict[str, Decimal]
    report_parts: int


cycles = st.builds(
    CycleSpec,
    fills=st.lists(
        st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(list(Side)), quantities, prices, fees),
        max_size=6,
    ).map(tuple),
    transfers=st.lists(_decimal(-(10**6), 10**8, 2), max_size=2).map(tuple),
    funding=st.lists(_decimal(-(10**4), 10**4, 4), max_size=2).map(tuple),
    marks=st.fixed_dictionaries({symbol: prices for symbol in SYMBOLS}),
    report_parts=st.integers(1, 3),
)


def _stage(state: PortfolioState, spec: CycleSpec, basis: CostBasis) -> ledger.StagedCycle:
    staged = ledger.open_cycle(state, basis)
    for amount in spec.transfers:
        staged = ledger.stage_pnl(staged, PnlKind.TRANSFER, amount)
    for symbol, side, quantity, price, fee in spec.fills:
        staged = ledger.stage_fill(staged, symbol, side, quantity, price, fee)
    for amount in spec.funding:
        staged = ledger.stage_pnl(staged, PnlKind.FUNDING, amount)
    return staged


@ledger.money.exact
def _reports(total: Decimal, parts: int) -> list[Decimal]:
    """Split ``total`` into ``parts`` reports that sum to it exactly (in the ledger context:
    Python's default 28 digits would round the remainder)."""
    share = (total / parts).quantize(Decimal("0.01")) if parts > 1 else total
    return [share] * (parts - 1) + [total - share * (parts - 1)]


def _with_reports(staged: ledger.StagedCycle, reports: list[Decimal]) -> ledger.StagedCycle:
    for amount in reports:
        staged = ledger.stage_pnl(staged, PnlKind.REALIZED, amount)
    return staged


@settings(max_examples=150, deadline=None)
@given(st.lists(cycles, min_size=1, max_size=8), st.sampled_from(list(CostBasis)))
def test_reports_taken_from_the_lots_always_commit_with_zero_delta(
    specs: list[CycleSpec], basis: CostBasis
) -> None:
    state = PortfolioState()
    for number, spec in enumerate(specs, start=1):
        staged = _stage(state, spec, basis)
        staged = _with_reports(staged, _reports(staged.ledger_realized, spec.report_parts))
        decision = ledger.decide(staged, spec.marks, cycle_id=number)
        assert decision.committed, decision
        assert decision.delta == 0
        state = decision.state
    assert state.version == len(specs)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(cycles, min_size=1, max_size=5),
    st.integers(0, 2),
    _decimal(1, 10**6, 6),
    st.booleans(),
)
def test_changing_one_reported_amount_by_more_than_epsilon_discards(
    specs: list[CycleSpec], which: int, excess: Decimal, upward: bool
) -> None:
    state = PortfolioState()
    for spec in specs[:-1]:
        staged = _stage(state, spec, CostBasis.FIFO)
        staged = _with_reports(staged, _reports(staged.ledger_realized, spec.report_parts))
        state = ledger.decide(staged, spec.marks).state
    last = specs[-1]
    staged = _stage(state, last, CostBasis.FIFO)
    reports = _reports(staged.ledger_realized, last.report_parts)
    epsilon = ledger.epsilon_for(state.equity)
    change = epsilon + excess
    with localcontext(ledger.LEDGER_CONTEXT):
        reports[which % len(reports)] += change if upward else -change
    decision = ledger.decide(_with_reports(staged, reports), last.marks)
    assert decision.reason is DiscardReason.VALIDATION_FAILED
    assert abs(decision.delta) == change
    assert decision.state == state


@settings(max_examples=150, deadline=None)
@given(st.lists(cycles, min_size=1, max_size=8))
def test_fifo_and_average_agree_on_cash_and_equity_but_split_pnl_their_own_way(
    specs: list[CycleSpec],
) -> None:
    states = {basis: PortfolioState() for basis in CostBasis}
    for spec in specs:
        for basis in CostBasis:
            staged = _stage(states[basis], spec, basis)
            staged = _with_reports(staged, [staged.ledger_realized])
            states[basis] = ledger.decide(staged, spec.marks).state
    fifo, average = states[CostBasis.FIFO], states[CostBasis.AVERAGE]
    assert fifo.cash == average.cash
    assert fifo.equity == average.equity
    with localcontext(ledger.LEDGER_CONTEXT):
        assert fifo.realized_pnl + fifo.unrealized() == (
            average.realized_pnl + average.unrealized()
        )


def test_fifo_and_average_realize_different_amounts_on_the_same_trades() -> None:
    results = {}
    for basis in CostBasis:
        staged = ledger.open_cycle(PortfolioState(), basis)
        for side, q, p in [(Side.BUY, "1", "100"), (Side.BUY, "1", "200"), (Side.SELL, "1", "250")]:
            staged = ledger.stage_fill(staged, "X", side, D(q), D(p), D(0))
        results[basis] = staged.ledger_realized
    assert results == {CostBasis.FIFO: D(150), CostBasis.AVERAGE: D(100)}
