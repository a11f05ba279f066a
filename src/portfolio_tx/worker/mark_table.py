"""MarkTable: per symbol, the marks seen so far, answering "latest mark at or before T".

Pure and in memory; the MarkFeed (``portfolio_tx.kafka.mark_feed``) fills it from the marks
topic. A cycle is valued, per held symbol, with the latest mark whose timestamp is at or
before the marker's; none → MISSING_MARK; one older than the maximum age → STALE_MARK.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from portfolio_tx.ledger import DiscardReason


@dataclass(frozen=True, slots=True)
class MarkLookup:
    """Marks for every asked symbol, or the reason the cycle cannot be valued."""

    marks: Mapping[str, Decimal]
    reason: DiscardReason | None = None
    detail: str = ""


class _Series:
    __slots__ = ("prices", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.prices: list[Decimal] = []


class MarkTable:
    """Marks per symbol, ordered by timestamp; history older than ``retention_ms`` is pruned.

    Pruning keeps the newest mark before the cut-off, so a cycle can still be told its mark
    is stale rather than missing.
    """

    def __init__(self, retention_ms: int = 3_600_000) -> None:
        self._series: dict[str, _Series] = {}
        self._retention_ms = retention_ms
        self.count = 0

    def add(self, symbol: str, price: Decimal, ts: int) -> None:
        series = self._series.get(symbol)
        if series is None:
            series = self._series[symbol] = _Series()
        if not series.times or ts >= series.times[-1]:
            series.times.append(ts)
            series.prices.append(price)
        else:
            at = bisect.bisect_right(series.times, ts)
            series.times.insert(at, ts)
            series.prices.insert(at, price)
        self.count += 1
        if len(series.times) > 64 and series.times[0] < series.times[-1] - self._retention_ms:
            self._prune(series)

    def _prune(self, series: _Series) -> None:
        cut = bisect.bisect_left(series.times, series.times[-1] - self._retention_ms) - 1
        if cut > 0:
            del series.times[:cut]
            del series.prices[:cut]

    def latest(self, symbol: str, at_or_before: int) -> tuple[Decimal, int] | None:
        """(price, ts) of the latest mark with ts ≤ ``at_or_before``, or None."""
        series = self._series.get(symbol)
        if series is None:
            return None
        index = bisect.bisect_right(series.times, at_or_before) - 1
        if index < 0:
            return None
        return series.prices[index], series.times[index]

    def resolve(self, symbols: Iterable[str], at: int, max_age_ms: int) -> MarkLookup:
        """Marks for ``symbols`` as of ``at`` (epoch ms), or MISSING_MARK / STALE_MARK."""
        marks: dict[str, Decimal] = {}
        for symbol in symbols:
            found = self.latest(symbol, at)
            if found is None:
                return MarkLookup({}, DiscardReason.MISSING_MARK, f"no mark for {symbol}")
            price, ts = found
            if at - ts > max_age_ms:
                return MarkLookup(
                    {}, DiscardReason.STALE_MARK, f"mark for {symbol} is {at - ts} ms old"
                )
            marks[symbol] = price
        return MarkLookup(marks)
