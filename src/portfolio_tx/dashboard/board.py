"""The desk board: the latest view of every session, built from outcomes; pure, no I/O.

``Board.apply`` takes one ``CycleOutcome`` from the commit topic and returns the JSON-ready
event the browsers receive (None for an outcome already applied: the topic holds one per
cycle, but a reader that re-reads must not draw a point twice). ``Board.snapshot`` is what a
browser receives when it connects. Money and quantities travel as decimal strings; the page
formats them.

Equity on the board is the *committed* equity: the staged total on COMMIT, the previous
equity on DISCARD (a discard leaves the state untouched). Cash likewise: the committed cash
(``state_cash``) on a DISCARD, whose ``cash`` field is the staged one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portfolio_tx.ledger import canonical
from portfolio_tx.wire.outcomes import CycleOutcome

Json = dict[str, Any]

RECENT_OUTCOMES = 50
DISCARDS_PER_SESSION = 10


def outcome_event(outcome: CycleOutcome, committed_cash: Decimal) -> Json:
    """The browser's view of one outcome (every decimal a string)."""
    committed = outcome.committed
    equity = outcome.total if committed else outcome.previous_equity
    return {
        "session_id": outcome.session_id,
        "cycle_id": outcome.cycle_id,
        "outcome": str(outcome.outcome.value),
        "reason": outcome.reason,
        "ts": outcome.ts,
        "equity": canonical(equity),
        "cash": canonical(committed_cash),
        "staged_total": canonical(outcome.total),
        "expected_equity": canonical(outcome.expected_equity),
        "previous_equity": canonical(outcome.previous_equity),
        "delta": canonical(outcome.delta),
        "epsilon": canonical(outcome.epsilon),
        "realized_pnl": canonical(outcome.realized_pnl),
        "fees": canonical(outcome.fees),
        "transfers": None if outcome.transfers is None else canonical(outcome.transfers),
        "residual": None if outcome.residual is None else canonical(outcome.residual),
        "positions": [
            {
                "symbol": p.symbol,
                "quantity": canonical(p.quantity),
                "avg_entry_price": canonical(p.avg_entry_price),
                "mark_price": None if p.mark_price is None else canonical(p.mark_price),
            }
            for p in outcome.positions
        ],
    }


@dataclass(slots=True)
class SessionView:
    """One session as the desk sees it."""

    session_id: str
    history: int
    last: Json | None = None
    last_cycle: int = -1
    cash: Decimal | None = None
    commits: int = 0
    discards: int = 0
    equity: deque[tuple[int, str, bool]] = field(init=False)  # (ts, equity, discarded)
    recent_discards: deque[Json] = field(init=False)

    def __post_init__(self) -> None:
        self.equity = deque(maxlen=self.history)
        self.recent_discards = deque(maxlen=DISCARDS_PER_SESSION)

    def as_json(self) -> Json:
        return {
            "session_id": self.session_id,
            "last": self.last,
            "commits": self.commits,
            "discards": self.discards,
            "equity": [[ts, value, discarded] for ts, value, discarded in self.equity],
            "recent_discards": list(self.recent_discards),
        }


@dataclass(slots=True)
class Board:
    """Every session seen on the commit topic; ``history`` equity points kept per session."""

    history: int = 2000
    sessions: dict[str, SessionView] = field(default_factory=dict)
    recent: deque[Json] = field(default_factory=lambda: deque(maxlen=RECENT_OUTCOMES))

    def apply(self, outcome: CycleOutcome) -> Json | None:
        """Fold ``outcome`` into its session; the browser event, or None if already seen."""
        view = self.sessions.get(outcome.session_id)
        if view is None:
            view = self.sessions[outcome.session_id] = SessionView(outcome.session_id, self.history)
        if outcome.cycle_id <= view.last_cycle:
            return None
        if outcome.committed:
            view.cash = outcome.cash
            view.commits += 1
        else:
            if outcome.state_cash is not None:
                view.cash = outcome.state_cash
            view.discards += 1
        event = outcome_event(outcome, view.cash if view.cash is not None else outcome.cash)
        view.last = event
        view.last_cycle = outcome.cycle_id
        view.equity.append((outcome.ts, event["equity"], not outcome.committed))
        if not outcome.committed:
            view.recent_discards.appendleft(event)
        self.recent.appendleft(event)
        return event

    def snapshot(self) -> Json:
        """Everything a browser needs to draw the board from scratch."""
        return {
            "sessions": [self.sessions[s].as_json() for s in sorted(self.sessions)],
            "recent": list(self.recent),
        }
