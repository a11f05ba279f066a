"""Restoring sessions from the commit topic when the store lost them (CONTRACT §4, no loss).

The commit topic is the durable record of every decision: each COMMIT outcome carries the
session's full state after the cycle (exact lot costs and cash included), and every outcome,
COMMIT or DISCARD, says which cycle was decided. Reading a partition from its beginning
therefore rebuilds, per session, the last committed state, the last decided cycle, and the
recent outcome records with their event ids (for fencing and for telling redeliveries from
late events).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from portfolio_tx.events import state_from_outcome
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.ledger import PortfolioState
from portfolio_tx.store.port import StateStore

log = logging.getLogger("portfolio_tx.worker")

RECENT = 64


@dataclass(slots=True)
class _Rebuilt:
    state: PortfolioState = field(default_factory=PortfolioState)
    last_decided: int = -1
    recent: deque[tuple[int, bytes, tuple[str, ...]]] = field(
        default_factory=lambda: deque(maxlen=RECENT)
    )


def restore_partition(commit_log: CommitLog, store: StateStore, partition: int) -> int:
    """Rebuild every session of ``partition`` in the store; returns how many."""
    sessions: dict[str, _Rebuilt] = {}
    for record, outcome in commit_log.read_partition(partition):
        rebuilt = sessions.setdefault(outcome.session_id, _Rebuilt())
        if outcome.cycle_id <= rebuilt.last_decided:
            continue  # cannot happen with exactly-once outcomes; never go backwards
        rebuilt.last_decided = outcome.cycle_id
        if outcome.committed:
            rebuilt.state = state_from_outcome(outcome)
        rebuilt.recent.append((outcome.cycle_id, record, outcome.event_ids))
    for session_id, rebuilt in sessions.items():
        store.restore(session_id, rebuilt.state, rebuilt.last_decided, list(rebuilt.recent))
    store.mark_partition_ready(partition)
    if sessions:
        log.warning(
            "restored %d sessions of partition %d from the commit topic", len(sessions), partition
        )
    return len(sessions)
