"""MemoryStateStore: the StateStore port in a dict, for the offline engine and tests.

Same contract as RedisStateStore (version lock, cycle fence, outcome window), no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portfolio_tx.errors import ConcurrentModificationError, StateStoreError
from portfolio_tx.ledger import Decision, PortfolioState
from portfolio_tx.store.port import (
    Applied,
    ApplyRequest,
    DecidedCycle,
    SessionSnapshot,
    cash_equity_view,
    positions_view,
    staged_on,
)


@dataclass(slots=True)
class _Session:
    state: PortfolioState = field(default_factory=PortfolioState)
    last_decided: int | None = None
    published: int | None = None
    decided: dict[int, DecidedCycle] = field(default_factory=dict)


class MemoryStateStore:
    def __init__(self, outcome_window: int = 256) -> None:
        self._sessions: dict[str, _Session] = {}
        self._ready: set[int] = set()
        self._abandoned: dict[str, dict[int, str]] = {}
        self._window = outcome_window

    def sessions(self) -> list[str]:
        return sorted(self._sessions)

    def load(self, session_id: str) -> SessionSnapshot:
        s = self._sessions.get(session_id) or _Session()
        return SessionSnapshot(s.state, s.last_decided, s.published)

    def load_many(self, session_ids: Sequence[str]) -> list[SessionSnapshot]:
        return [self.load(session_id) for session_id in session_ids]

    def server_identity(self) -> str:
        return f"memory-{id(self)}"

    def apply(
        self,
        session_id: str,
        decision: Decision,
        *,
        outcome: bytes | None = None,
        event_ids: Sequence[str] = (),
        decided_at_ms: int | None = None,
    ) -> Applied:
        s = self._sessions.setdefault(session_id, _Session())
        cycle = decision.cycle_id
        if cycle is not None:
            if cycle in s.decided:
                return Applied(decision, fenced=True, outcome=s.decided[cycle].outcome)
            if s.last_decided is not None and cycle <= s.last_decided:
                return Applied(decision, fenced=True, outcome=None)
        expected = staged_on(decision)
        if s.state.version != expected:
            raise ConcurrentModificationError(
                f"session {session_id} is at version {s.state.version}, staged on {expected}"
            )
        if decision.committed:
            s.state = decision.state
        if cycle is not None:
            s.last_decided = cycle
            at = int(time.time() * 1000) if decided_at_ms is None else decided_at_ms
            s.decided[cycle] = DecidedCycle(outcome, frozenset(event_ids), at)
            while len(s.decided) > self._window:
                del s.decided[min(s.decided)]
        return Applied(decision, fenced=False, outcome=outcome)

    def apply_many(
        self, requests: Sequence[ApplyRequest], *, ready: Sequence[int] = ()
    ) -> tuple[list[Applied | StateStoreError], set[int]]:
        results: list[Applied | StateStoreError] = []
        for r in requests:
            try:
                results.append(
                    self.apply(
                        r.session_id,
                        r.decision,
                        outcome=r.outcome,
                        event_ids=r.event_ids,
                        decided_at_ms=r.decided_at_ms,
                    )
                )
            except StateStoreError as exc:
                results.append(exc)
        return results, self.partitions_ready(ready)

    def decided_cycle(self, session_id: str, cycle_id: int) -> DecidedCycle | None:
        s = self._sessions.get(session_id)
        if s is None or cycle_id not in s.decided:
            return None
        kept = s.decided[cycle_id]
        published = s.published is not None and s.published >= cycle_id
        return DecidedCycle(kept.outcome, kept.event_ids, kept.decided_at_ms, published)

    def mark_published(self, last_published: Mapping[str, int]) -> None:
        for session_id, cycle_id in last_published.items():
            s = self._sessions.setdefault(session_id, _Session())
            s.published = max(cycle_id, s.published if s.published is not None else cycle_id)

    def restore(
        self,
        session_id: str,
        state: PortfolioState,
        last_decided: int,
        recent: Sequence[tuple[int, bytes, Sequence[str]]] = (),
    ) -> None:
        self._sessions[session_id] = _Session(
            state,
            last_decided,
            last_decided,
            {c: DecidedCycle(r, frozenset(ids), 0, True) for c, r, ids in recent},
        )

    def partitions_ready(self, partitions: Sequence[int]) -> set[int]:
        return self._ready & set(partitions)

    def mark_partition_ready(self, partition: int) -> None:
        self._ready.add(partition)

    def abandoned(self, session_id: str) -> dict[int, str]:
        return dict(self._abandoned.get(session_id, {}))

    def abandon(self, session_id: str, cycles: Mapping[int, str]) -> None:
        self._abandoned.setdefault(session_id, {}).update(cycles)

    def get_latest_cash_equity(self, session_id: str) -> dict[str, Decimal] | None:
        """The seed's read: cash_balance, total_equity, total_fees, total_realized_pnl."""
        return cash_equity_view(self.load(session_id).state)

    def get_positions(self, session_id: str) -> list[dict[str, Any]]:
        """The seed's read: symbol, quantity, entry_price (average), current_price (last mark)."""
        return positions_view(self.load(session_id).state)
