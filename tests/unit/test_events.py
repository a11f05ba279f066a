"""Outcome events from ledger decisions, states rebuilt from them, and input event checks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ledger_helpers import run_cycle

from portfolio_tx import ledger
from portfolio_tx.ledger import CostBasis, DiscardReason, OutcomeKind, PnlKind, PortfolioState, Side
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import (
    CycleMarker,
    Fill,
    InputEvent,
    MarkPrice,
    PnlEvent,
    event_problem,
)
from portfolio_tx.wire.outcomes import (
    OutcomeLot,
    OutcomeMark,
    OutcomePosition,
    outcome_from_decision,
    state_from_outcome,
)

TS = 1_732_500_000_000
FUNDED = run_cycle(PortfolioState(), pnl=[("TRANSFER", "100000")], cycle_id=1).state


def test_a_commit_outcome_carries_the_decision_and_the_new_state() -> None:
    decision = run_cycle(
        FUNDED,
        [("BTC/USDT", "BUY", "1", "50000", "25"), ("ETH/USDT", "SELL", "2", "3000", "1")],
        marks={"BTC/USDT": "50500", "ETH/USDT": "2900"},
        cycle_id=2,
    )
    outcome = outcome_from_decision("s-1", decision, TS, worker_id="w-7")
    assert outcome.committed and outcome.outcome is OutcomeKind.COMMIT and outcome.reason is None
    assert (outcome.session_id, outcome.cycle_id, outcome.ts, outcome.worker_id) == (
        "s-1",
        2,
        TS,
        "w-7",
    )
    assert outcome.cash == decision.cash == Decimal("55974")
    assert outcome.total == decision.total and outcome.delta == decision.delta
    assert (outcome.realized_pnl, outcome.fees, outcome.version) == (0, 26, 2)
    assert outcome.positions == (
        OutcomePosition("BTC/USDT", Decimal(1), Decimal(50000), Decimal(50500)),
        OutcomePosition("ETH/USDT", Decimal(-2), Decimal(3000), Decimal(2900)),
    )
    assert outcome.lots == (
        OutcomeLot("BTC/USDT", Decimal(1), Decimal(50000)),
        OutcomeLot("ETH/USDT", Decimal(-2), Decimal(-6000)),
    )
    assert outcome.marks == (
        OutcomeMark("BTC/USDT", Decimal(50500)),
        OutcomeMark("ETH/USDT", Decimal(2900)),
    )


def test_a_commit_outcome_rebuilds_the_committed_state() -> None:
    decision = run_cycle(
        FUNDED,
        [
            ("X", "BUY", "1", "100", "1"),
            ("X", "BUY", "1", "110", "1"),
            ("X", "SELL", "1.5", "120", "0"),
        ],
        pnl=[("REALIZED", "25")],
        marks={"X": "120"},
        cycle_id=2,
    )
    assert decision.committed
    assert state_from_outcome(outcome_from_decision("s", decision, TS)) == decision.state


def test_the_state_survives_the_wire_digit_for_digit_even_with_average_cost_lots() -> None:
    state = FUNDED
    for cycle_id, fills in enumerate(
        [
            [("X", "BUY", "1", "100", "0"), ("X", "BUY", "2", "101", "0")],
            [("X", "SELL", "1", "102", "0.1")],
            [("X", "SELL", "0.7", "99.5", "0.01")],
        ],
        start=2,
    ):
        staged = ledger.open_cycle(state, CostBasis.AVERAGE)
        for symbol, side, quantity, price, fee in fills:
            staged = ledger.stage_fill(
                staged, symbol, Side(side), Decimal(quantity), Decimal(price), Decimal(fee)
            )
        # upstream reports realized P&L on the wire, at 18 places
        staged = ledger.stage_pnl(staged, PnlKind.REALIZED, ledger.to_wire(staged.ledger_realized))
        decision = ledger.decide(staged, {"X": Decimal("101.5")}, cycle_id=cycle_id)
        assert decision.committed
        codec = Codec()
        value = codec.encode(outcome_from_decision("s", decision, TS), "commits")
        rebuilt = state_from_outcome(codec.decode(value, topic="c", partition=0, offset=0))
        assert rebuilt == decision.state
        assert rebuilt.equity == decision.state.equity and rebuilt.lots == decision.state.lots
        state = rebuilt


def test_a_discard_outcome_carries_the_staged_figures_and_the_unchanged_state() -> None:
    decision = run_cycle(
        FUNDED,
        [("X", "BUY", "1", "100", "0")],
        pnl=[("REALIZED", "50")],
        marks={"X": "100"},
        cycle_id=2,
    )
    assert decision.reason is DiscardReason.VALIDATION_FAILED
    outcome = outcome_from_decision("s", decision, TS)
    assert outcome.outcome is OutcomeKind.DISCARD and not outcome.committed
    assert outcome.reason == "VALIDATION_FAILED" and outcome.delta == Decimal(-50)
    assert outcome.cash == Decimal(99900) and outcome.state_cash == FUNDED.cash
    assert outcome.lots == () and outcome.positions == () and outcome.version == FUNDED.version


def test_a_discard_outcome_does_not_rebuild_a_state() -> None:
    decision = ledger.discard(FUNDED, DiscardReason.INCOMPLETE, cycle_id=4)
    with pytest.raises(ValueError, match="discarded"):
        state_from_outcome(outcome_from_decision("s", decision, TS))


def test_a_decision_without_a_cycle_id_cannot_become_an_outcome() -> None:
    decision = ledger.discard(FUNDED, DiscardReason.INCOMPLETE)
    with pytest.raises(ValueError, match="cycle id"):
        outcome_from_decision("s", decision, TS)


# --------------------------------------------------------------------------- event_problem

D = Decimal
GOOD_FILL = Fill("e-1", "s-1", 1, "BTC/USDT", Side.BUY, D("0.1"), D("50000"), D("1"), TS)
GOOD_PNL = PnlEvent("e-2", "s-1", 1, PnlKind.REALIZED, D("-5"), TS)
GOOD_MARKER = CycleMarker("s-1", 1, 1, 1, TS)
GOOD_MARK = MarkPrice("BTC/USDT", D("50000"), TS)
LONG = "x" * 257


def _fill(**changes: object) -> Fill:
    return Fill(**{**_fields(GOOD_FILL), **changes})  # type: ignore[arg-type]


def _fields(event: object) -> dict[str, object]:
    return {name: getattr(event, name) for name in event.__slots__}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (GOOD_FILL, None),
        (_fill(fee=D("-0.5")), None),
        (_fill(fee=D(0)), None),
        (GOOD_PNL, None),
        (PnlEvent("e", "s", 0, PnlKind.TRANSFER, D("-100"), TS, "BTC/USDT"), None),
        (GOOD_MARKER, None),
        (CycleMarker("s", 0, 0, 0, TS), None),
        (GOOD_MARK, None),
        (_fill(quantity=D(0)), "quantity must be positive"),
        (_fill(quantity=D("-1")), "quantity must be positive"),
        (_fill(price=D(0)), "price must be positive"),
        (_fill(session_id=""), "session_id is empty"),
        (_fill(event_id=""), "event_id is empty"),
        (_fill(symbol=""), "symbol is empty"),
        (_fill(symbol=LONG), "symbol is longer than 256"),
        (_fill(event_id=LONG), "event_id is longer than 256"),
        (_fill(cycle_id=-1), "cycle_id is negative"),
        (_fill(side="HOLD"), "unknown side"),
        (_fill(fee=D("NaN")), "fee must be finite"),
        (PnlEvent("e", "", 1, PnlKind.FUNDING, D(1), TS), "session_id is empty"),
        (PnlEvent("e", "s", -3, PnlKind.FUNDING, D(1), TS), "cycle_id is negative"),
        (PnlEvent("e", "s", 1, PnlKind.FUNDING, D(1), TS, ""), "symbol is empty"),
        (PnlEvent("e", "s", 1, "BONUS", D(1), TS), "unknown kind"),  # type: ignore[arg-type]
        (PnlEvent(LONG, "s", 1, PnlKind.FUNDING, D(1), TS), "event_id is longer than 256"),
        (CycleMarker("s", 1, -1, 0, TS), "fill_count is negative"),
        (CycleMarker("s", 1, 0, -2, TS), "pnl_count is negative"),
        (CycleMarker("s", -1, 0, 0, TS), "cycle_id is negative"),
        (CycleMarker(LONG, 1, 0, 0, TS), "session_id is longer than 256"),
        (MarkPrice("X", D(0), TS), "mark price must be positive"),
        (MarkPrice("X", D("-1"), TS), "mark price must be positive"),
        (MarkPrice("", D(1), TS), "symbol is empty"),
    ],
)
def test_event_problem_names_what_is_invalid(
    event: InputEvent | MarkPrice, problem: str | None
) -> None:
    found = event_problem(event)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_256_character_id_is_still_fine() -> None:
    assert event_problem(_fill(event_id="x" * 256, symbol="y" * 256)) is None


def test_a_large_cycles_outcome_carries_a_count_and_digest_instead_of_its_ids() -> None:
    import uuid

    from portfolio_tx.wire.outcomes import INLINE_EVENT_IDS_BYTES, event_ids_digest

    decision = run_cycle(FUNDED, [], cycle_id=2)
    ids = tuple(str(uuid.uuid4()) for _ in range(50_000))
    where = {("portfolio.fills", 3): 123_456, ("portfolio.pnl", 3): 77}
    outcome = outcome_from_decision("s-1", decision, TS, event_ids=ids, read_through=where)
    assert outcome.event_ids == () and outcome.event_count == 50_000
    assert outcome.event_digest == event_ids_digest(reversed(ids))  # order does not matter
    record = Codec().encode(outcome, "portfolio.commits")
    assert len(record) < 2_000  # was 1.9 MB with every id inline
    back = Codec().decode(record, topic="c", partition=0, offset=0, expected=type(outcome))
    assert {(o.topic, o.partition): o.offset for o in back.read_through} == where

    few = ids[: INLINE_EVENT_IDS_BYTES // 40]
    small = outcome_from_decision("s-1", decision, TS, event_ids=few)
    assert small.event_ids == few and small.event_count == len(few)
