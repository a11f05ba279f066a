"""The desk board folds outcomes into per-session views (pure, no Kafka)."""

from __future__ import annotations

from decimal import Decimal

from portfolio_tx.dashboard.board import Board
from portfolio_tx.ledger import OutcomeKind
from portfolio_tx.wire.outcomes import CycleOutcome, OutcomePosition


def outcome(
    cycle: int,
    kind: OutcomeKind,
    *,
    total: str,
    previous: str,
    cash: str,
    state_cash: str | None = None,
    reason: str | None = None,
) -> CycleOutcome:
    return CycleOutcome(
        session_id="desk-1",
        cycle_id=cycle,
        outcome=kind,
        reason=reason,
        cash=Decimal(cash),
        positions_value=Decimal("0"),
        total=Decimal(total),
        previous_equity=Decimal(previous),
        expected_equity=Decimal(previous),
        delta=Decimal("-100") if reason else Decimal("0"),
        epsilon=Decimal("10.13646"),
        realized_pnl=Decimal("800"),
        fees=Decimal("35.4"),
        positions=(
            OutcomePosition("BTC/USDT", Decimal("0.6"), Decimal("50000"), Decimal("51000")),
        ),
        ts=1_000 * cycle,
        state_cash=None if state_cash is None else Decimal(state_cash),
    )


COMMIT = outcome(2, OutcomeKind.COMMIT, total="101364.6", previous="100475", cash="70764.6")
DISCARD = outcome(
    3,
    OutcomeKind.DISCARD,
    total="100554.8",
    previous="101364.6",
    cash="119754.8",
    state_cash="70764.6",
    reason="VALIDATION_FAILED",
)


def test_a_discard_shows_the_unchanged_committed_equity_and_cash_not_the_staged_ones() -> None:
    board = Board()
    board.apply(COMMIT)
    event = board.apply(DISCARD)
    assert event is not None
    assert (event["equity"], event["cash"], event["staged_total"]) == (
        "101364.6",
        "70764.6",
        "100554.8",
    )
    assert (event["reason"], event["delta"], event["epsilon"]) == (
        "VALIDATION_FAILED",
        "-100",
        "10.13646",
    )


def test_an_outcome_seen_again_is_not_drawn_twice() -> None:
    board = Board()
    assert board.apply(COMMIT) is not None
    assert board.apply(COMMIT) is None
    view = board.snapshot()["sessions"][0]
    assert view["equity"] == [[2000, "101364.6", False]] and view["commits"] == 1


def test_snapshot_keeps_the_equity_history_discards_flagged_and_newest_outcome_first() -> None:
    board = Board()
    board.apply(COMMIT)
    board.apply(DISCARD)
    snapshot = board.snapshot()
    view = snapshot["sessions"][0]
    assert view["equity"] == [[2000, "101364.6", False], [3000, "101364.6", True]]
    assert [d["cycle_id"] for d in view["recent_discards"]] == [3]
    assert [e["cycle_id"] for e in snapshot["recent"]] == [3, 2]
    assert view["last"]["outcome"] == "DISCARD"


def test_history_is_bounded_per_session() -> None:
    board = Board(history=2)
    for cycle in range(1, 5):
        board.apply(outcome(cycle, OutcomeKind.COMMIT, total="1", previous="1", cash="1"))
    assert [point[0] for point in board.snapshot()["sessions"][0]["equity"]] == [3000, 4000]


def test_the_session_card_carries_the_cumulative_residual_and_transfers() -> None:
    from dataclasses import replace

    board = Board()
    event = board.apply(replace(COMMIT, residual=Decimal("-0.5"), transfers=Decimal("100000")))
    assert event is not None
    assert (event["residual"], event["transfers"]) == ("-0.5", "100000")
    older = board.apply(replace(DISCARD, residual=None, transfers=None))
    assert older is not None and older["residual"] is None  # an older writer's outcome
