"""The committed state books the ledger's realized P&L, never upstream's claim (issue 9).

The expected figures come from the contract, not from the ledger: the table is worked by
hand, and the property checks the core against ``_Model``, a small booking of CONTRACT §2
written here with exact fractions (FIFO or average cost, realized = lot closes + funding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_helpers import run_cycle

from portfolio_tx import ledger
from portfolio_tx.ledger import CostBasis, D, PnlKind, PortfolioState, Side
from portfolio_tx.store.document import dump_state, load_state

SYMBOLS = ("BTC", "ETH")


def test_a_report_accepted_within_epsilon_books_the_lots_realized_and_keeps_the_residual() -> None:
    first = run_cycle(
        PortfolioState(),
        fills=[("BTC/USDT", "BUY", "1", "50000", "0")],
        pnl=[("TRANSFER", "100000")],
        marks={"BTC/USDT": "50000"},
        cycle_id=1,
    )
    assert first.committed and first.delta == 0
    second = run_cycle(
        first.state,
        fills=[("BTC/USDT", "SELL", "1", "50100", "0")],
        pnl=[("REALIZED", "100.5")],
        marks={"BTC/USDT": "50100"},
        cycle_id=2,
    )
    assert second.committed
    assert (second.delta, second.epsilon) == (D("-0.5"), D("10"))
    state = second.state
    assert state.realized_pnl == D("100")  # what the lots realized, not the 100.5 claimed
    assert state.residual == D("-0.5")
    assert state.equity == D("100100")
    assert state.transfers == D("100000")
    assert state.transfers + state.realized_pnl - state.fees + state.unrealized() == state.equity


def test_the_residual_and_transfers_survive_the_stored_document() -> None:
    state = PortfolioState(
        cash=D("1.5"),
        realized_pnl=D("2"),
        transfers=D("-3.25"),
        residual=D("0.000000000000000000001"),
    )
    assert load_state(dump_state(state)) == state


def test_a_document_of_an_older_writer_reads_transfers_and_residual_as_zero() -> None:
    old = (
        '{"cash":"10","equity":"10","fees":"0","last_cycle":1,"lots":{},"marks":{},'
        '"realized_pnl":"0","version":1}'
    )
    state = load_state(old)
    assert (state.transfers, state.residual) == (D(0), D(0))


# -- the property ----------------------------------------------------------------------------


@dataclass
class _Model:
    """CONTRACT §2 booked by hand: lots as (signed qty, unit price) [FIFO] or one merged
    (signed qty, total cost) [average]; realized = lot closes + funding."""

    basis: CostBasis
    cash: Fraction = Fraction(0)
    realized: Fraction = Fraction(0)
    fees: Fraction = Fraction(0)
    transfers: Fraction = Fraction(0)
    lots: dict[str, list[list[Fraction]]] = field(default_factory=dict)  # [qty, total cost]

    def fill(self, symbol: str, side: Side, q: Fraction, p: Fraction, fee: Fraction) -> None:
        signed = q if side is Side.BUY else -q
        self.cash += -signed * p - fee
        self.fees += fee
        lots = self.lots.setdefault(symbol, [])
        remaining = signed
        while lots and remaining and (lots[0][0] > 0) != (remaining > 0):
            qty, cost = lots[0]
            if abs(remaining) >= abs(qty):
                self.realized += p * qty - cost  # (p − c)·q long, (c − p)·|q| short
                remaining += qty
                lots.pop(0)
            else:
                closed = -remaining  # same sign as qty
                closed_cost = cost * closed / qty
                self.realized += p * closed - closed_cost
                lots[0] = [qty - closed, cost - closed_cost]
                remaining = Fraction(0)
        if remaining:
            if self.basis is CostBasis.AVERAGE and lots:
                lots[0] = [lots[0][0] + remaining, lots[0][1] + remaining * p]
            else:
                lots.append([remaining, remaining * p])

    def unrealized(self, marks: dict[str, Fraction]) -> Fraction:
        return sum(
            (qty * marks[s] - cost for s, lots in self.lots.items() for qty, cost in lots),
            Fraction(0),
        )


def _decimal(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.builds(lambda n, k: D(n).scaleb(-k), st.integers(low, high), st.integers(0, places))


@dataclass(frozen=True)
class _Cycle:
    fills: tuple[tuple[str, Side, Decimal, Decimal, Decimal], ...]
    transfers: tuple[Decimal, ...]
    funding: tuple[Decimal, ...]
    marks: dict[str, Decimal]
    off: Fraction  # the report's error as a share of ε, in [-1, 1]


_shares = st.one_of(
    st.sampled_from([Fraction(1), Fraction(-1), Fraction(0)]),
    st.integers(-1000, 1000).map(lambda k: Fraction(k, 1000)),
)
_cycles = st.builds(
    _Cycle,
    fills=st.lists(
        st.tuples(
            st.sampled_from(SYMBOLS),
            st.sampled_from(list(Side)),
            _decimal(1, 10**6, 6),
            _decimal(1, 10**6, 4),
            _decimal(-50, 500, 2),  # rebates included
        ),
        max_size=5,
    ).map(tuple),
    transfers=st.lists(_decimal(-(10**5), 10**7, 2), max_size=2).map(tuple),
    funding=st.lists(_decimal(-(10**3), 10**3, 3), max_size=2).map(tuple),
    marks=st.fixed_dictionaries({symbol: _decimal(1, 10**6, 4) for symbol in SYMBOLS}),
    off=_shares,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_cycles, min_size=1, max_size=8), st.sampled_from(list(CostBasis)))
def test_reports_off_within_epsilon_commit_and_the_books_stay_exact(
    specs: list[_Cycle], basis: CostBasis
) -> None:
    state = PortfolioState()
    model = _Model(basis)
    lots_realized = Decimal(0)  # Σ of what the core's lots realized, cycle by cycle
    funding_total = Decimal(0)
    residual = Decimal(0)
    for number, spec in enumerate(specs, start=1):
        staged = ledger.open_cycle(state, basis)
        for amount in spec.transfers:
            staged = ledger.stage_pnl(staged, PnlKind.TRANSFER, amount)
            model.cash += Fraction(amount)
            model.transfers += Fraction(amount)
        for symbol, side, q, p, fee in spec.fills:
            staged = ledger.stage_fill(staged, symbol, side, q, p, fee)
            model.fill(symbol, side, Fraction(q), Fraction(p), Fraction(fee))
        for amount in spec.funding:
            staged = ledger.stage_pnl(staged, PnlKind.FUNDING, amount)
            model.cash += Fraction(amount)
            model.realized += Fraction(amount)
        epsilon = ledger.epsilon_for(state.equity)
        with localcontext(ledger.LEDGER_CONTEXT):
            error = (epsilon * Decimal(spec.off.numerator)) / Decimal(spec.off.denominator)
            report = staged.ledger_realized + error
        staged = ledger.stage_pnl(staged, PnlKind.REALIZED, report)
        decision = ledger.decide(staged, spec.marks, cycle_id=number)
        assert decision.committed, decision
        with localcontext(ledger.LEDGER_CONTEXT):
            assert decision.delta == -error  # Δ = ledger realized − reported
            lots_realized += staged.ledger_realized
            funding_total += sum(spec.funding, Decimal(0))
            residual += decision.delta
        state = decision.state
        marks = {s: Fraction(m) for s, m in spec.marks.items()}
        # the invariant, exactly, in the core's own figures and in the model's
        assert state.books_imbalance() == 0
        assert Fraction(state.equity) == (
            model.transfers + model.realized - model.fees + model.unrealized(marks)
        )
        assert Fraction(state.cash) == model.cash
        with localcontext(ledger.LEDGER_CONTEXT):
            assert state.realized_pnl == lots_realized + funding_total
        assert state.residual == residual
        assert Fraction(state.transfers) == model.transfers
        if basis is CostBasis.FIFO:  # average cost rounds a close's cost once, at 36 places
            assert Fraction(state.realized_pnl) == model.realized
        else:
            assert abs(Fraction(state.realized_pnl) - model.realized) < Fraction(1, 10**30)
