"""``portfolio-tx tail``: follow the commit topic as a read_committed reader."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

from portfolio_tx.commands.views import outcome_line
from portfolio_tx.config import Settings
from portfolio_tx.kafka.commitlog import CommitLog


def follow(
    settings: Settings,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_exit: float | None = None,
    out: TextIO | None = None,
) -> int:
    """Print one line per outcome until ``limit`` outcomes or ``idle_exit`` idle seconds."""
    stream = out if out is not None else sys.stdout
    if limit is not None and limit <= 0:
        return 0
    log = CommitLog.open(settings, "tail")
    shown = 0
    last = time.monotonic()
    try:
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        for read in log.follow([(p, start) for p in log.partitions()]):
            if read is None:
                if idle_exit is not None and time.monotonic() - last > idle_exit:
                    break
                continue
            last = time.monotonic()
            if isinstance(read, Exception):
                print(f"?        {read}", file=stream, flush=True)
                continue
            print(outcome_line(read), file=stream, flush=True)
            shown += 1
            if limit is not None and shown >= limit:
                break
    finally:
        log.close()
    return shown
