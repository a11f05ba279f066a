"""Open cycles: what a buffered event costs, the limits per cycle and per session, and how
a re-read event of a decided cycle is told from a late one."""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from decimal import Decimal

from portfolio_tx.ledger import DiscardReason, PortfolioState, Side
from portfolio_tx.store.port import SessionSnapshot
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.cycles import Admission, CycleLimits, KnownCycle

FILLS = ("fills", 0)
CYCLES = ("cycles", 0)


def _fill(cycle: int, n: int, event_id: str | None = None) -> Fill:
    return Fill(
        event_id=event_id or str(uuid.UUID(int=n)),
        session_id="desk-1",
        cycle_id=cycle,
        symbol="BTC/USDT",
        side=Side.BUY if n % 2 else Side.SELL,
        quantity=Decimal("0.015"),
        price=Decimal("50123.45"),
        fee=Decimal("0.0375"),
        ts=1_767_000_000_000 + n,
    )


def _book(limits: CycleLimits | None = None) -> SessionBook:
    return SessionBook(
        "desk-1", 0, SessionSnapshot(PortfolioState(), None), limits or CycleLimits()
    )


def test_a_buffered_fill_costs_at_most_300_bytes() -> None:
    codec = Codec()
    count = 20_000
    values = [codec.encode(_fill(1, n), "fills") for n in range(count)]
    key = b"desk-1"
    book = _book()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for offset, value in enumerate(values):
            event = codec.decode(value, topic="fills", partition=0, offset=offset, expected=Fill)
            assert book.add_event(event, FILLS, offset, 0, (key, value)) is Admission.STAGED
            del event
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_fill = (after - before) / count
    print(f"buffered fill: {per_fill:.0f} bytes (value {len(values[0])} bytes, UUID event id)")
    assert per_fill <= 300
    assert book.cycles[1].fill_count == count


def test_buffered_fills_decode_back_in_the_order_they_were_read() -> None:
    codec = Codec()
    book = _book()
    fills = [_fill(1, n) for n in range(5)]
    for offset, fill in enumerate(fills):
        book.add_event(fill, FILLS, offset, 0, (b"desk-1", codec.encode(fill, "fills")))
    book.add_event(fills[2], FILLS, 9, 0, (b"desk-1", codec.encode(fills[2], "fills")))
    cycle = book.cycles[1]
    decoded = [
        codec.decode(value, topic="fills", partition=0, offset=offset, expected=Fill)
        for _, offset, value in cycle.events.values(fills=True)
    ]
    assert decoded == fills
    assert [r.offset for r in cycle.events.records()] == [0, 1, 2, 3, 4]
    assert cycle.read_through == {FILLS: 9}  # the duplicate was read too


def test_a_cycle_past_its_event_limit_is_refused_and_its_marker_decides_it_too_large() -> None:
    book = _book(CycleLimits(max_events=3, max_open=4))
    for n in range(3):
        assert book.add_event(_fill(1, n), FILLS, n, 0, (b"desk-1", b"v")) is Admission.STAGED
    assert book.add_event(_fill(1, 3), FILLS, 3, 0, (b"desk-1", b"v")) is Admission.REFUSED
    cycle = book.cycles[1]
    cycle.refuse(DiscardReason.TOO_LARGE)
    assert len(cycle.events) == 0 and cycle.first_offsets == {FILLS: 0}
    assert [r.offset for r in cycle.drain(2)] == [0, 1] and cycle.first_offsets == {FILLS: 2}
    assert [r.offset for r in cycle.drain(2)] == [2] and cycle.first_offsets == {}
    assert book.add_event(_fill(1, 4), FILLS, 4, 0, (b"desk-1", b"v")) is Admission.REFUSED
    assert book.abandoned == {1: DiscardReason.TOO_LARGE} and book.newly_abandoned == [1]
    book.add_marker(CycleMarker("desk-1", 1, 2, 0, 0), CYCLES, 0, 0.0, 0)
    ready = book.next_ready(lambda _: False)
    assert ready is not None and ready[1] is DiscardReason.TOO_LARGE  # drained: decided now


def test_a_session_past_its_open_cycle_limit_has_its_next_cycle_refused() -> None:
    book = _book(CycleLimits(max_events=10, max_open=2))
    assert book.add_event(_fill(1, 0), FILLS, 0, 0, (b"k", b"v")) is Admission.STAGED
    assert book.add_event(_fill(2, 1), FILLS, 1, 0, (b"k", b"v")) is Admission.STAGED
    assert book.add_event(_fill(3, 2), FILLS, 2, 0, (b"k", b"v")) is Admission.REFUSED
    assert book.abandoned == {3: DiscardReason.TOO_LARGE}


def test_markers_read_ahead_of_their_events_never_make_a_cycle_too_large() -> None:
    book = _book(CycleLimits(max_events=10, max_open=2))
    for cycle in range(1, 11):  # a backlog: the markers' topic read ten cycles ahead
        assert book.add_marker(CycleMarker("desk-1", cycle, 1, 0, 0), CYCLES, cycle, 0.0, 0) is (
            Admission.STAGED
        )
    for n, cycle in enumerate(range(1, 11)):
        assert book.add_event(_fill(cycle, n), FILLS, n, 0, (b"k", b"v")) is Admission.STAGED
    assert book.abandoned == {} and book.sizes()[2] == 10  # ten marked cycles, none refused
    assert book.add_event(_fill(11, 90), FILLS, 90, 0, (b"k", b"v")) is Admission.STAGED
    assert book.add_event(_fill(12, 91), FILLS, 91, 0, (b"k", b"v")) is Admission.STAGED
    assert book.add_event(_fill(13, 92), FILLS, 92, 0, (b"k", b"v")) is Admission.REFUSED
    assert book.abandoned == {13: DiscardReason.TOO_LARGE}  # the third unmarked one


def test_an_unmarked_cycle_expires_and_a_late_marker_decides_it_incomplete() -> None:
    book = _book()
    book.add_event(_fill(1, 0), FILLS, 0, 1000, (b"k", b"v"))
    assert book.expired(lambda cycle: cycle.first_ms + 500 <= 1200) == []
    (cycle,) = book.expired(lambda cycle: cycle.first_ms + 500 <= 1500)
    # refused, kept (and pinned) until what it holds is drained; then the next expiry drops it
    assert cycle.refused is DiscardReason.INCOMPLETE and dict(book.pinned()) == {FILLS: 0}
    assert book.abandoned == {1: DiscardReason.INCOMPLETE}
    assert [r.offset for r in cycle.drain(None)] == [0] and dict(book.pinned()) == {}
    assert book.expired(lambda cycle: True) == [] and book.cycles == {}
    book.add_marker(CycleMarker("desk-1", 1, 1, 0, 0), CYCLES, 0, 0.0, 0)
    ready = book.next_ready(lambda _: False)
    assert ready is not None and ready[1] is DiscardReason.INCOMPLETE


def test_a_re_read_event_of_a_decided_cycle_is_known_by_its_offset_or_its_id() -> None:
    known = KnownCycle({FILLS: 41}, frozenset({"e-1"}))
    assert known.includes(FILLS, 41, "other")
    assert known.includes(FILLS, 99, "e-1")
    assert not known.includes(FILLS, 42, "other")
    assert not known.includes(("pnl", 0), 1, "other")
