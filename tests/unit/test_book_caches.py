"""What the loop asks of every open book each iteration, kept by the book instead of scanned
(``SessionBook.low_offsets``; ``SessionBook.sizes``: bytes, unmarked bytes, marked cycles;
``SessionBook.lowest_marked``: the next cycle to decide; ``unmarked_cycles``),
equals the scan over its cycles after any sequence of staged events (offsets in any order,
duplicates, limits), markers, decisions, orphans, expiries and refused cycles drained a
batch at a time. A low offset that came out too high would let the consumer commit past an
open cycle's event."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_tx.ledger import DiscardReason, PnlKind, PortfolioState, Side
from portfolio_tx.store.port import SessionSnapshot
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.cycles import CycleLimits, KnownCycle

WHERES = (("fills", 0), ("pnl", 0), ("cycles", 0))


def _scanned_offsets(book: SessionBook) -> dict[Any, int]:
    low: dict[Any, int] = {}
    for cycle in book.cycles.values():
        for where, offset in cycle.first_offsets.items():
            low[where] = min(offset, low.get(where, offset))
    return low


def _scanned_sizes(book: SessionBook) -> tuple[int, int, int]:
    sizes = [(c.nbytes, c.marker is None) for c in book.cycles.values()]
    return (
        sum(n for n, _ in sizes),
        sum(n for n, unmarked in sizes if unmarked),
        sum(1 for _, unmarked in sizes if not unmarked),
    )


def _scanned_lowest_marked(book: SessionBook) -> int | None:
    marked = [cid for cid, cycle in book.cycles.items() if cycle.marker is not None]
    return min(marked) if marked else None


def _event(cycle: int, n: int, fill: bool) -> Fill | PnlEvent:
    if fill:
        return Fill(f"e{n}", "s", cycle, "BTC", Side.BUY, Decimal(1), Decimal(2), Decimal(0), 0)
    return PnlEvent(f"e{n}", "s", cycle, PnlKind.TRANSFER, Decimal(5), 0)


step = st.one_of(
    st.tuples(st.just("event"), st.integers(1, 5), st.integers(0, 40), st.booleans()),
    st.tuples(st.just("marker"), st.integers(1, 5), st.integers(0, 40), st.integers(0, 3)),
    st.tuples(st.just("decide"), st.none(), st.none(), st.none()),
    st.tuples(st.just("expire"), st.none(), st.none(), st.none()),
    st.tuples(st.just("refuse"), st.integers(1, 5), st.none(), st.none()),
    st.tuples(st.just("drain"), st.integers(1, 5), st.none(), st.integers(1, 3)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60), st.booleans())
def test_the_kept_offsets_and_sizes_equal_the_scan(steps: list[Any], ask_often: bool) -> None:
    book = SessionBook("s", 0, SessionSnapshot(PortfolioState(), None), CycleLimits(6, 3))
    for n, (kind, cycle_id, offset, extra) in enumerate(steps):
        if kind == "event":
            where = WHERES[0] if extra else WHERES[1]
            book.add_event(_event(cycle_id, n % 7, extra), where, offset, 0, (b"s", b"x" * n))
        elif kind == "marker":
            book.add_marker(CycleMarker("s", cycle_id, extra, 0, 0), WHERES[2], offset, 0.0, 0)
        elif kind == "decide":
            for orphan in book.orphans():
                orphan.pending()
            ready = book.next_ready(lambda _: True)
            if ready is not None:
                book.settle(ready[0], book.snapshot, KnownCycle({}))
        elif kind == "expire":
            book.expired(lambda _: True)
        elif kind == "refuse" and cycle_id in book.cycles:  # as Intake._refused does
            book.cycles[cycle_id].refuse(DiscardReason.TOO_LARGE)
            book.changed()
        elif kind == "drain" and cycle_id in book.cycles:  # as Intake.drain does
            book.cycles[cycle_id].drain(extra)
            book.changed()
        if ask_often or n == len(steps) - 1:
            assert book.low_offsets() == _scanned_offsets(book)
            assert book.sizes() == _scanned_sizes(book)
            lowest = book.lowest_marked()
            assert (lowest and lowest.cycle_id) == _scanned_lowest_marked(book)
            assert lowest is None or book.cycles[lowest.cycle_id] is lowest
            assert book.unmarked_cycles == sum(c.marker is None for c in book.cycles.values())
            assert book.has_marked_cycle() == (lowest is not None or bool(book.in_doubt))
