"""The worker writes a batch's decisions in one round trip; a batched write that loses to
another writer is never published: the batch is read again and decided on the new state."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from pipeline import T0, Pipeline

from portfolio_tx import portfolio_transaction
from portfolio_tx.ledger import OutcomeKind
from portfolio_tx.worker.stats import WorkerStats


def test_a_batched_write_that_loses_a_race_is_decided_again_on_the_winners_state(
    pipeline: Pipeline,
) -> None:
    pipeline.pnl("s", 1, "TRANSFER", "1000")
    pipeline.marker("s", 1, 0, 1, ts=T0)
    pipeline.flush()
    stats: list[WorkerStats] = []
    worker = threading.Thread(
        target=lambda: stats.append(pipeline.run_worker(until_idle=8.0)), daemon=True
    )
    worker.start()
    assert [o.cycle_id for o in pipeline.outcomes(expected=1)] == [1]
    deadline = time.monotonic() + 30
    while pipeline.store.load("s").published_through != 1:  # the worker's book is cached
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # another writer commits on the session the worker holds in its cache (version 1 -> 2)
    with portfolio_transaction(pipeline.store, "s") as tx:
        tx.stage_transfer("7")
        assert tx.commit({})
    pipeline.pnl("s", 2, "TRANSFER", "10")
    pipeline.marker("s", 2, 0, 1, ts=T0 + 1_000)
    pipeline.flush()
    worker.join(timeout=120)
    assert not worker.is_alive() and stats

    outcomes = pipeline.outcomes(expected=2)
    assert [(o.cycle_id, o.outcome) for o in outcomes] == [
        (1, OutcomeKind.COMMIT),
        (2, OutcomeKind.COMMIT),
    ]
    second = outcomes[1]
    # by hand: 1000 committed, 7 by the other writer, then 10: valued on 1007, not on 1000
    assert (second.previous_equity, second.cash, second.version) == (
        Decimal("1007"),
        Decimal("1017"),
        3,
    )
    assert stats[0].aborted_transactions >= 1  # the batch that lost was not committed
    state = pipeline.store.load("s").state
    assert (state.cash, state.transfers, state.version) == (Decimal("1017"), Decimal("1017"), 3)
