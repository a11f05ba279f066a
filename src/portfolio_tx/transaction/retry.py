"""Recovery from a lost race: re-run the caller's staging on ConcurrentModificationError.

A commit that loses the optimistic-lock race writes nothing, so the whole transaction can
be run again on the new committed state: ``commit_with_retries`` opens a fresh transaction
per attempt (re-reading the session), calls the caller's ``stage(tx)``, commits at the
marks, and on ConcurrentModificationError sleeps (exponential backoff, capped, optionally
jittered) and tries again, at most ``attempts`` times. Any other error propagates at once.

``stage`` must be safe to run more than once (it only stages; it sees the state it runs on
in ``tx.current_cash_equity`` / ``tx.current_positions``). Leave ``previous_equity`` unset
so that each attempt validates against the equity it read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from portfolio_tx.errors import ConcurrentModificationError, RetriesExhaustedError
from portfolio_tx.ledger import Decision
from portfolio_tx.ledger.money import Number
from portfolio_tx.store.port import StateStore
from portfolio_tx.transaction.core import PortfolioTransaction

Marks = Mapping[str, Number] | Callable[[PortfolioTransaction], Mapping[str, Number]]


@dataclass(frozen=True, slots=True)
class RetriedCommit:
    """How the transaction ended: ``committed`` (False = discarded), the ``decision``, and
    how many ``attempts`` it took (1 = no race lost)."""

    committed: bool
    attempts: int
    decision: Decision


def backoff_delay(attempt: int, backoff: float, max_backoff: float, jitter: bool) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): backoff · 2^(attempt−1),
    at most ``max_backoff``; with jitter, uniformly in its upper half."""
    delay = min(max_backoff, backoff * 2 ** (attempt - 1))
    return float(delay / 2 + random.uniform(0, delay / 2)) if jitter else float(delay)


def commit_with_retries(
    store: StateStore,
    session_id: str,
    stage: Callable[[PortfolioTransaction], object],
    marks: Marks,
    *,
    attempts: int = 5,
    backoff: float = 0.01,
    max_backoff: float = 0.5,
    jitter: bool = True,
    sleep: Callable[[float], object] = time.sleep,
    **options: Any,
) -> RetriedCommit:
    """Stage with ``stage(tx)`` and commit at ``marks`` (a mapping, or a function of the
    staged transaction), retrying a lost race up to ``attempts`` times in all.

    ``options`` go to PortfolioTransaction (``validation_epsilon``, ``metrics``, ...).
    Raises RetriesExhaustedError (a ConcurrentModificationError, with ``attempts``) when
    every attempt lost; nothing was written by any of them.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            with PortfolioTransaction(store, session_id, **options) as tx:
                stage(tx)
                prices = marks(tx) if callable(marks) else marks
                committed = tx.commit(prices)
                assert tx.decision is not None
                return RetriedCommit(committed, attempt, tx.decision)
        except ConcurrentModificationError as exc:
            if attempt == attempts:
                raise RetriesExhaustedError(
                    f"session {session_id}: every one of {attempts} attempts lost the race ({exc})",
                    attempts=attempts,
                ) from exc
            sleep(backoff_delay(attempt, backoff, max_backoff, jitter))
    raise AssertionError("unreachable")  # pragma: no cover
