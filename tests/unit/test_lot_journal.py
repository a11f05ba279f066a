"""One trade booked once: a symbol's lot edits define its lots, its legs say how much moved,
whichever order the caller stages them in."""

from __future__ import annotations

from decimal import Decimal

from portfolio_tx.ledger import CostBasis, Lot, PortfolioState, Side
from portfolio_tx.ledger import journal as j

BTC = "BTC"
BASE = PortfolioState(cash=Decimal("1000"), equity=Decimal("1000"), transfers=Decimal("1000"))


def test_a_position_delta_and_the_lot_describing_it_book_one_lot_in_either_order() -> None:
    leg = j.PositionLeg(BTC, Decimal("0.1"), Decimal("500"), strategy="s")
    lot = j.LotAdd(BTC, Decimal("0.1"), Decimal("500"), "lot-1", Decimal("1"), "2026-01-01")
    cash = j.CashDelta(Decimal("-50"), Decimal("1"))
    orders = ([cash, leg, lot], [lot, leg, cash], [leg, cash, lot])
    staged = [j.replay(BASE, CostBasis.FIFO, ops) for ops in orders]
    assert staged[0] == staged[1] == staged[2]
    assert staged[0].lots == {
        BTC: (Lot(Decimal("0.1"), Decimal("50.0"), "lot-1", Decimal("1"), "2026-01-01"),)
    }
    assert staged[0].strategies == {BTC: "s"}
    assert j.leg_mismatches(staged[0], orders[0]) == []


def test_a_fill_on_a_lot_defined_symbol_moves_only_cash() -> None:
    ops = [
        j.Fill(BTC, Side.BUY, Decimal("2"), Decimal("100"), Decimal("1")),
        j.LotAdd(BTC, Decimal("2"), Decimal("100"), "a"),
    ]
    staged = j.replay(BASE, CostBasis.FIFO, ops)
    assert staged.cash == Decimal("799") and staged.fees == Decimal("1")
    assert [lot.quantity for lot in staged.lots[BTC]] == [Decimal("2")]


def test_legs_that_disagree_with_the_lot_edits_are_reported() -> None:
    ops = [
        j.PositionLeg(BTC, Decimal("1"), Decimal("10")),
        j.LotAdd(BTC, Decimal("2"), Decimal("10")),
    ]
    staged = j.replay(BASE, CostBasis.FIFO, ops)
    assert j.leg_mismatches(staged, ops) == ["BTC: its position legs move 1, its lot edits 2"]


def test_symbols_without_lot_edits_are_moved_by_their_legs() -> None:
    ops = [j.PositionLeg(BTC, Decimal("1"), Decimal("10")), j.PositionLeg(BTC, Decimal("-0.4"))]
    staged = j.replay(BASE, CostBasis.FIFO, ops)
    assert staged.lots == {BTC: (Lot(Decimal("0.6"), Decimal("6.0")),)}
