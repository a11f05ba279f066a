"""SessionBook: a session's open cycles, decided in cycle-id order, each once (CONTRACT §2).

A cycle is complete when its distinct events reach the marker's counts (a duplicate event
id counts once); more than announced is COUNT_MISMATCH; an invalid event sinks it with
INVALID_EVENT; not complete by the cycle timeout is INCOMPLETE. Events and markers of a
decided cycle are not applied. (Limits per cycle and per session: test_cycle_buffer.py.)
"""

from __future__ import annotations

from decimal import Decimal

from portfolio_tx.ledger import DiscardReason, PnlKind, PortfolioState, Side
from portfolio_tx.store.port import SessionSnapshot
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.cycles import Admission, KnownCycle, OpenCycle

SESSION = "desk-1"
FILLS, PNL, CYCLES = ("fills", 3), ("pnl", 3), ("cycles", 3)


def never(_: OpenCycle) -> bool:
    return False


def always(_: OpenCycle) -> bool:
    return True


def book(last_decided: int | None = None, published: int | None = None) -> SessionBook:
    return SessionBook(SESSION, 3, SessionSnapshot(PortfolioState(), last_decided, published))


def fill(cycle: int, event_id: str) -> Fill:
    return Fill(
        event_id, SESSION, cycle, "BTC/USDT", Side.BUY, Decimal(1), Decimal(50000), Decimal(25), 0
    )


def report(cycle: int, event_id: str) -> PnlEvent:
    return PnlEvent(event_id, SESSION, cycle, PnlKind.TRANSFER, Decimal(100000), 0)


def marker(cycle: int, fills: int, reports: int) -> CycleMarker:
    return CycleMarker(SESSION, cycle, fills, reports, 0)


def staged(b: SessionBook, cycle: int, fills: int, reports: int, offset: int = 0) -> None:
    for n in range(fills):
        assert b.add_event(fill(cycle, f"f{cycle}-{n}"), FILLS, offset + n) is Admission.STAGED
    for n in range(reports):
        assert b.add_event(report(cycle, f"p{cycle}-{n}"), PNL, offset + n) is Admission.STAGED


def test_a_cycle_is_ready_once_its_events_reach_the_markers_counts() -> None:
    b = book()
    staged(b, 1, fills=1, reports=0)
    b.add_marker(marker(1, 1, 1), CYCLES, 0, 0.0, 0)
    assert b.next_ready(never) is None  # one report still to come
    staged(b, 1, fills=0, reports=1)
    ready = b.next_ready(never)
    assert ready is not None and ready[0].cycle_id == 1 and ready[1] is None


def test_the_events_may_follow_their_marker() -> None:
    b = book()
    b.add_marker(marker(1, 2, 0), CYCLES, 0, 0.0, 0)
    staged(b, 1, fills=2, reports=0)
    ready = b.next_ready(never)
    assert ready is not None and ready[1] is None


def test_a_duplicate_event_id_counts_once() -> None:
    b = book()
    staged(b, 1, fills=1, reports=0)
    assert b.add_event(fill(1, "f1-0"), FILLS, 7) is Admission.DUPLICATE
    cycle = b.cycles[1]
    assert cycle.fill_count == 1 and len(cycle.events) == 1
    b.add_marker(marker(1, 1, 0), CYCLES, 0, 0.0, 0)
    ready = b.next_ready(never)
    assert ready is not None and ready[1] is None


def test_the_same_event_id_in_another_cycle_is_another_event() -> None:
    b = book()
    assert b.add_event(fill(1, "e"), FILLS, 0) is Admission.STAGED
    assert b.add_event(fill(2, "e"), FILLS, 1) is Admission.STAGED


def test_more_distinct_events_than_announced_is_count_mismatch() -> None:
    b = book()
    staged(b, 1, fills=2, reports=0)
    b.add_marker(marker(1, 1, 0), CYCLES, 0, 0.0, 0)
    ready = b.next_ready(never)
    assert ready is not None and ready[1] is DiscardReason.COUNT_MISMATCH


def test_an_invalid_event_counts_and_sinks_its_cycle() -> None:
    b = book()
    b.add_event(fill(1, "bad"), FILLS, 0, problem="quantity must be positive")
    b.add_marker(marker(1, 1, 0), CYCLES, 0, 0.0, 0)
    ready = b.next_ready(never)
    assert ready is not None and ready[1] is DiscardReason.INVALID_EVENT


def test_an_incomplete_cycle_waits_until_it_times_out() -> None:
    b = book()
    staged(b, 1, fills=1, reports=0)
    b.add_marker(marker(1, 2, 0), CYCLES, 0, 0.0, 0)
    assert b.next_ready(never) is None
    ready = b.next_ready(always)
    assert ready is not None and ready[1] is DiscardReason.INCOMPLETE


def test_cycles_are_decided_in_cycle_id_order() -> None:
    b = book()
    staged(b, 2, fills=1, reports=0)
    b.add_marker(marker(2, 1, 0), CYCLES, 1, 0.0, 0)  # cycle 2 complete
    staged(b, 1, fills=1, reports=0, offset=5)
    b.add_marker(marker(1, 2, 0), CYCLES, 0, 0.0, 0)  # cycle 1 still waiting
    assert b.next_ready(never) is None  # 2 does not overtake 1
    ready = b.next_ready(always)
    assert ready is not None and ready[0].cycle_id == 1


def test_a_decided_cycle_is_left_behind_with_everything_before_it() -> None:
    b = book()
    staged(b, 1, fills=1, reports=0)
    staged(b, 2, fills=1, reports=0, offset=10)
    b.add_marker(marker(2, 1, 0), CYCLES, 0, 0.0, 0)
    ready = b.next_ready(never)
    assert ready is not None
    after = SessionSnapshot(PortfolioState(version=1, last_cycle=2), 2, None)
    b.settle(ready[0], after, KnownCycle({FILLS: 10}))
    assert b.cycles == {} and b.last_decided == 2 and b.snapshot is after
    assert b.add_event(fill(1, "late"), FILLS, 20) is Admission.DECIDED
    assert b.add_event(fill(2, "late"), FILLS, 21) is Admission.DECIDED
    assert b.add_marker(marker(2, 1, 0), CYCLES, 1, 0.0, 0) is Admission.DECIDED
    assert b.recent[2].includes(FILLS, 10, "any")


def test_a_second_marker_for_a_cycle_is_a_duplicate_and_the_first_counts() -> None:
    b = book()
    b.add_marker(marker(1, 1, 0), CYCLES, 0, 0.0, 0)
    assert b.add_marker(marker(1, 5, 5), CYCLES, 1, 0.0, 0) is Admission.DUPLICATE
    assert b.cycles[1].marker == marker(1, 1, 0)


def test_a_marker_of_a_decided_cycle_not_known_published_puts_it_in_doubt_once() -> None:
    b = book(last_decided=4, published=2)
    assert b.add_marker(marker(2, 0, 0), CYCLES, 0, 0.0, 0) is Admission.DECIDED
    assert b.in_doubt == []  # published: nothing to check
    b.add_marker(marker(4, 0, 0), CYCLES, 1, 0.0, 0)
    b.add_marker(marker(4, 0, 0), CYCLES, 2, 0.0, 0)
    assert b.in_doubt == [4] and b.has_marked_cycle()


def test_unmarked_cycles_below_the_lowest_marked_one_are_orphans() -> None:
    b = book()
    staged(b, 1, fills=1, reports=0)
    staged(b, 3, fills=1, reports=0, offset=5)
    assert b.orphans() == []  # no marker yet: cycle 1's may still come
    b.add_marker(marker(2, 0, 0), CYCLES, 0, 0.0, 0)
    assert [c.cycle_id for c in b.orphans()] == [1]
    assert sorted(b.cycles) == [2, 3]


def test_the_first_offset_of_every_open_cycle_stays_pinned() -> None:
    b = book()
    b.add_event(fill(1, "a"), FILLS, 8)
    b.add_event(fill(1, "b"), FILLS, 5)
    b.add_event(fill(2, "c"), FILLS, 9)
    b.add_event(report(2, "d"), PNL, 4)
    b.add_marker(marker(2, 1, 1), CYCLES, 6, 0.0, 0)
    assert sorted(b.pinned()) == [(CYCLES, 6), (FILLS, 5), (FILLS, 9), (PNL, 4)]


def test_only_the_16_most_recent_decided_cycles_are_remembered() -> None:
    b = book()
    for cycle_id in range(20):
        b.remember(cycle_id, KnownCycle({}))
    assert sorted(b.recent) == list(range(4, 20))
