"""At its buffer limit the worker never pauses the records its marked cycles wait for.

A partition's three inputs are fetched at their own pace: in a backlog the P&L reports and
markers can be read far ahead of the fills, or the fills ahead of the markers. Here the
worker has read ten markers and forty cycles' fills, but no P&L report: cycles 1-10 are
marked and wait for their P&L, cycles 11-40 hold their fills and wait for their markers,
and the buffer is over its limit. Pausing the partition's fills and P&L (the old rule)
stops the very reports cycles 1-10 wait for; the buffer then never drains and nothing of
the partition is decided again. The P&L must keep flowing, and every cycle commit.

Real broker, real Redis; figures worked by hand from CONTRACT §2: each cycle transfers
1,000 in and buys 0.01 BTC at its mark of 50,000 (500 of cash), so each cycle's equity is
the previous one + 1,000 and, after 40 cycles, cash is 40 × 500 = 20,000 for 0.40 BTC."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from pipeline import T0, Pipeline

from portfolio_tx.ledger import OutcomeKind

S, BTC = "desk-waits", "BTC/USDT"
CYCLES, MARKED_FIRST = 40, 10


def test_the_buffer_limit_never_pauses_what_marked_cycles_wait_for(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    # a buffer limit that thirty cycles of one fill pass (~6 KB), a cycle timeout not reached
    pipeline.settings = replace(pipeline.settings, max_buffered_mb=0.002, cycle_timeout_s=60.0)
    pipeline.mark(BTC, "50000", ts=T0 - 10)
    for cycle in range(1, MARKED_FIRST + 1):
        pipeline.marker(S, cycle, 1, 1, ts=T0 + cycle)
    for cycle in range(1, CYCLES + 1):
        pipeline.fill(S, cycle, BTC, "BUY", "0.01", "50000", "0")
    pipeline.flush()

    def later() -> None:  # once the worker is over its limit (or after 30 s)
        for cycle in range(1, CYCLES + 1):
            pipeline.pnl(S, cycle, "TRANSFER", "1000")
        for cycle in range(MARKED_FIRST + 1, CYCLES + 1):
            pipeline.marker(S, cycle, 1, 1, ts=T0 + cycle)

    pipeline.run_worker_publishing(caplog, "pausing", later)
    outcomes = pipeline.outcomes(CYCLES, timeout=20.0)
    assert [(o.cycle_id, o.outcome, o.reason) for o in outcomes] == [
        (cycle, OutcomeKind.COMMIT, None) for cycle in range(1, CYCLES + 1)
    ]
    assert [o.total for o in outcomes] == [Decimal(1000 * c) for c in range(1, CYCLES + 1)]
    last = outcomes[-1]
    assert last.state_cash == Decimal("20000")
    assert [(p.symbol, p.quantity) for p in last.positions] == [(BTC, Decimal("0.40"))]

    # the fills (which nothing waits for) were paused, the P&L reports never
    paused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pausing ")]
    assert any(m.startswith(f"pausing {pipeline.settings.topics.fills} of") for m in paused)
    assert not any(pipeline.settings.topics.pnl in m for m in paused), paused
