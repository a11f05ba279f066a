"""A backlog read markers first: every cycle is still decided on its events, none refused.

The markers' topic is read many cycles ahead of the fills' in a backlog (a fetch brings
~2,000 markers of a partition, ~18 times as many cycles as a fetch of its fills), so a
session holds many marked cycles waiting for their events. The open-cycle limit counts the
unmarked ones only, and the partition's markers are paused while a session holds more
marked cycles than the limit. Real broker, real Redis; figures worked by hand from
CONTRACT §2: each cycle buys 0.01 BTC at the mark, so equity stays at the transfer."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from pipeline import T0, Pipeline

from portfolio_tx.ledger import OutcomeKind

S, BTC = "desk-ahead", "BTC/USDT"
CYCLES = 30


def test_markers_read_far_ahead_of_their_fills_refuse_no_cycle(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    # a limit of 4 open cycles, and a cycle timeout the fills' arrival does not reach
    pipeline.settings = replace(pipeline.settings, max_open_cycles=4, cycle_timeout_s=60.0)
    pipeline.mark(BTC, "50000", ts=T0 - 10)
    for cycle in range(1, CYCLES + 1):
        pipeline.marker(S, cycle, 1, 1 if cycle == 1 else 0, ts=T0 + cycle)
    pipeline.flush()

    def fills() -> None:  # once the worker has read the markers and paused them (or 30 s)
        pipeline.pnl(S, 1, "TRANSFER", "100000")
        for cycle in range(1, CYCLES + 1):
            pipeline.fill(S, cycle, BTC, "BUY", "0.01", "50000", "0")

    pipeline.run_worker_publishing(caplog, "pausing the markers", fills)
    assert "pausing the markers of partition" in caplog.text
    assert "resuming the markers of partition" in caplog.text

    outcomes = pipeline.outcomes(CYCLES)
    assert [(o.cycle_id, o.outcome, o.reason) for o in outcomes] == [
        (cycle, OutcomeKind.COMMIT, None) for cycle in range(1, CYCLES + 1)
    ]
    last = outcomes[-1]
    assert last.state_cash == Decimal("85000")  # 100,000 − 30 × 0.01 × 50,000
    assert [(p.symbol, p.quantity) for p in last.positions] == [(BTC, Decimal("0.30"))]
    assert last.total == Decimal("100000")
