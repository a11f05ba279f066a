"""MarkTable: a cycle is valued, per held symbol, with the latest mark whose timestamp is at
or before the marker's (CONTRACT §2); none is MISSING_MARK, one older than the maximum age
is STALE_MARK."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from portfolio_tx.ledger import DiscardReason
from portfolio_tx.worker.mark_table import MarkTable

BTC, ETH = "BTC/USDT", "ETH/USDT"
MINUTE = 60_000


def table(*marks: tuple[str, str, int]) -> MarkTable:
    found = MarkTable()
    for symbol, price, ts in marks:
        found.add(symbol, Decimal(price), ts)
    return found


def test_the_latest_mark_at_or_before_the_time_is_the_one_used() -> None:
    marks = table((BTC, "50000", 100), (BTC, "50500", 200), (BTC, "51000", 300))
    assert marks.latest(BTC, 250) == (Decimal("50500"), 200)
    assert marks.latest(BTC, 200) == (Decimal("50500"), 200)  # "at" counts
    assert marks.latest(BTC, 10_000) == (Decimal("51000"), 300)


def test_before_the_first_mark_and_for_an_unknown_symbol_there_is_none() -> None:
    marks = table((BTC, "50000", 100))
    assert marks.latest(BTC, 99) is None
    assert marks.latest(ETH, 10_000) is None


def test_a_mark_read_out_of_order_still_answers_by_its_timestamp() -> None:
    marks = table((BTC, "51000", 300), (BTC, "50000", 100), (BTC, "50500", 200))
    assert marks.latest(BTC, 250) == (Decimal("50500"), 200)
    assert marks.latest(BTC, 150) == (Decimal("50000"), 100)
    assert marks.count == 3


def test_resolve_gives_every_held_symbols_mark_as_of_the_marker() -> None:
    marks = table((BTC, "47500", 1_000), (ETH, "3100", 2_000), (ETH, "3200", 9_000))
    lookup = marks.resolve([BTC, ETH], at=5_000, max_age_ms=MINUTE)
    assert lookup.reason is None
    assert lookup.marks == {BTC: Decimal("47500"), ETH: Decimal("3100")}


def test_a_held_symbol_without_a_mark_is_missing_mark() -> None:
    # worked example, cycle 5: a BTC mark only, ETH/USDT held
    lookup = table((BTC, "47500", 1_000)).resolve([BTC, ETH], at=5_000, max_age_ms=MINUTE)
    assert lookup.reason is DiscardReason.MISSING_MARK
    assert ETH in lookup.detail and lookup.marks == {}


def test_a_mark_after_the_marker_does_not_value_the_cycle() -> None:
    lookup = table((BTC, "47500", 5_001)).resolve([BTC], at=5_000, max_age_ms=MINUTE)
    assert lookup.reason is DiscardReason.MISSING_MARK


def test_a_mark_older_than_the_maximum_age_is_stale_and_one_exactly_that_old_is_not() -> None:
    marks = table((BTC, "47500", 1_000))
    assert marks.resolve([BTC], at=1_000 + MINUTE, max_age_ms=MINUTE).reason is None
    stale = marks.resolve([BTC], at=1_001 + MINUTE, max_age_ms=MINUTE)
    assert stale.reason is DiscardReason.STALE_MARK and stale.marks == {}


def test_nothing_held_needs_no_mark() -> None:
    lookup = MarkTable().resolve([], at=5_000, max_age_ms=MINUTE)
    assert lookup.reason is None and lookup.marks == {}


def test_pruned_history_keeps_the_newest_old_mark_so_a_cycle_is_told_stale_not_missing() -> None:
    marks = MarkTable(retention_ms=1_000)
    for n in range(100):
        marks.add(BTC, Decimal(50_000 + n), n * 10)  # 0 .. 990
    marks.add(BTC, Decimal("60000"), 5_000)  # well past the retention: the old ones go
    assert marks.latest(BTC, 4_500) == (Decimal("50099"), 990)
    lookup = marks.resolve([BTC], at=4_500, max_age_ms=1_000)
    assert lookup.reason is DiscardReason.STALE_MARK


@given(
    st.lists(st.integers(0, 10_000), unique=True, max_size=40),
    st.randoms(use_true_random=False),
    st.integers(-10, 10_010),
)
def test_latest_is_the_mark_with_the_greatest_timestamp_not_after_the_time(
    times: list[int], rng: random.Random, at: int
) -> None:
    arrival = list(times)
    rng.shuffle(arrival)
    marks = MarkTable(retention_ms=10**9)
    for ts in arrival:
        marks.add(BTC, Decimal(ts) + Decimal("0.5"), ts)
    eligible = [ts for ts in times if ts <= at]
    expected = (Decimal(max(eligible)) + Decimal("0.5"), max(eligible)) if eligible else None
    assert marks.latest(BTC, at) == expected
