"""Restoring sessions from the commit topic (CONTRACT §4, no loss).

The commit topic is the durable record of every decision: each COMMIT outcome carries the
session's full state after the cycle (exact lot costs, cash, realized P&L, transfers and
residual included), and every outcome, COMMIT or DISCARD, says which cycle was decided.
Reading a partition from its beginning therefore gives, per session, the head (last decided
cycle and state version) and everything a restore needs: the last committed state and the
recent outcome records with their event ids (for fencing and for telling redeliveries from
late events).

Two cases are repaired: a store that lost a partition (its readiness key is gone: every
session is restored) and a store that went back in time (sessions older than their head:
those are restored).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field

from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.ledger import PortfolioState
from portfolio_tx.store.port import SessionSnapshot, StateStore
from portfolio_tx.wire.outcomes import state_from_outcome
from portfolio_tx.worker.heads import Head, head_from_headers, is_behind

log = logging.getLogger("portfolio_tx.worker")

RECENT = 64
_LOAD_CHUNK = 500


@dataclass(slots=True)
class _Rebuilt:
    state: PortfolioState = field(default_factory=PortfolioState)
    last_decided: int = -1
    recent: deque[tuple[int, bytes, tuple[str, ...]]] = field(
        default_factory=lambda: deque(maxlen=RECENT)
    )


def read_heads(commit_log: CommitLog, partition: int) -> dict[str, Head]:
    """Per session of ``partition``, the last outcome on the commit topic: from each
    record's head header (no decoding), or its value for an older writer's record."""
    heads: dict[str, Head] = {}
    for message in commit_log.messages(partition):
        head, key = head_from_headers(message.headers()), message.key()
        if head is not None and key is not None:
            session_id = key.decode(errors="replace")
        else:  # an outcome without the header: an older writer's
            outcome = commit_log.decode(message)
            if outcome is None:
                continue
            session_id, head = outcome.session_id, Head(outcome.cycle_id, outcome.version)
        current = heads.get(session_id)
        if current is None or head.cycle_id > current.cycle_id:
            heads[session_id] = head
    return heads


def restore_sessions(
    commit_log: CommitLog,
    store: StateStore,
    partition: int,
    sessions: Collection[str] | None = None,
) -> dict[str, Head]:
    """Rebuild ``sessions`` of ``partition`` in the store (every session when None, and then
    the partition is marked ready); returns the heads of every session of the partition."""
    rebuilt: dict[str, _Rebuilt] = {}
    heads: dict[str, Head] = {}
    for record, outcome in commit_log.read_partition(partition):
        head = heads.get(outcome.session_id)
        if head is not None and outcome.cycle_id <= head.cycle_id:
            continue  # cannot happen with exactly-once outcomes; never go backwards
        heads[outcome.session_id] = Head(outcome.cycle_id, outcome.version)
        if sessions is not None and outcome.session_id not in sessions:
            continue
        session = rebuilt.setdefault(outcome.session_id, _Rebuilt())
        session.last_decided = outcome.cycle_id
        if outcome.committed:
            session.state = state_from_outcome(outcome)
        session.recent.append((outcome.cycle_id, record, outcome.event_ids))
    for session_id, session in rebuilt.items():
        store.restore(session_id, session.state, session.last_decided, list(session.recent))
    if sessions is None:
        store.mark_partition_ready(partition)
    return heads


def behind(store: StateStore, heads: dict[str, Head]) -> dict[str, tuple[SessionSnapshot, Head]]:
    """The sessions whose stored state is older than their head, with both."""
    found: dict[str, tuple[SessionSnapshot, Head]] = {}
    names = sorted(heads)
    for start in range(0, len(names), _LOAD_CHUNK):
        chunk = names[start : start + _LOAD_CHUNK]
        for session_id, snapshot in zip(chunk, store.load_many(chunk), strict=True):
            if is_behind(snapshot, heads[session_id]):
                found[session_id] = (snapshot, heads[session_id])
    return found


def restore_partition(commit_log: CommitLog, store: StateStore, partition: int) -> int:
    """Rebuild every session of ``partition`` in the store; returns how many."""
    count = len(restore_sessions(commit_log, store, partition))
    if count:
        log.warning("restored %d sessions of partition %d from the commit topic", count, partition)
    return count
