"""What the engine needs from a state store, and the values it exchanges with one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from portfolio_tx.errors import StateStoreError
from portfolio_tx.ledger import Decision, PortfolioState
from portfolio_tx.ledger.lots import lots_cost
from portfolio_tx.ledger.money import exact


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """A session's committed state, the last cycle id decided for it (commit or discard),
    and the last one whose outcome is known to be on the commit topic."""

    state: PortfolioState
    last_decided: int | None
    published_through: int | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """What the store did with a decision.

    ``fenced`` is True when the cycle had been decided before: nothing was written and
    ``outcome`` is the record stored with that earlier decision (``None`` when it has aged
    out of the store's window, or when none was stored).
    """

    decision: Decision
    fenced: bool
    outcome: bytes | None


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """One ``StateStore.apply`` call, for ``apply_many``."""

    session_id: str
    decision: Decision
    outcome: bytes | None = None
    event_ids: Sequence[str] = ()
    decided_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DecidedCycle:
    """What the store kept of a decided cycle: its outcome record, its event ids, when it was
    decided (epoch ms) and whether its outcome is known to be published."""

    outcome: bytes | None
    event_ids: frozenset[str]
    decided_at_ms: int = 0
    published: bool = False


class DecisionWriter(Protocol):
    """What writes a decision: the store itself, or the worker's batching checkpoint."""

    def apply(
        self,
        session_id: str,
        decision: Decision,
        *,
        outcome: bytes | None = None,
        event_ids: Sequence[str] = (),
        decided_at_ms: int | None = None,
    ) -> Applied: ...


class WriteQueue:
    """A DecisionWriter that keeps the writes for one ``StateStore.apply_many`` instead of
    making them: each is answered as the store will answer it if nothing interferes (the
    worker's checkpoint and the library's batch check the real answers)."""

    def __init__(self) -> None:
        self.requests: list[ApplyRequest] = []

    def apply(
        self,
        session_id: str,
        decision: Decision,
        *,
        outcome: bytes | None = None,
        event_ids: Sequence[str] = (),
        decided_at_ms: int | None = None,
    ) -> Applied:
        self.requests.append(ApplyRequest(session_id, decision, outcome, event_ids, decided_at_ms))
        return Applied(decision, fenced=False, outcome=outcome)

    def take(self) -> list[ApplyRequest]:
        """The queued writes, in order; the queue is empty after."""
        taken, self.requests = self.requests, []
        return taken


class StateStore(Protocol):
    """A store of committed session state with one atomic, version-checked write per decision."""

    def load(self, session_id: str) -> SessionSnapshot:
        """The committed state (an empty PortfolioState for a new session)."""
        ...

    def load_many(self, session_ids: Sequence[str]) -> list[SessionSnapshot]:
        """``load`` of each session, in order, in one round trip."""
        ...

    def apply(
        self,
        session_id: str,
        decision: Decision,
        *,
        outcome: bytes | None = None,
        event_ids: Sequence[str] = (),
        decided_at_ms: int | None = None,
    ) -> Applied:
        """Write ``decision`` atomically.

        A COMMIT replaces the state if the stored version still equals the version the
        decision was staged on, else raises ConcurrentModificationError and writes nothing.
        A DISCARD leaves the state untouched. When ``decision.cycle_id`` is set, the cycle is
        fenced: a cycle id at or below the last decided one is not applied again, and the
        store keeps ``outcome`` and ``event_ids`` with the decision for a window of cycles.
        """
        ...

    def apply_many(
        self, requests: Sequence[ApplyRequest], *, ready: Sequence[int] = ()
    ) -> tuple[list[Applied | StateStoreError], set[int]]:
        """``apply`` of each request, in order, in one round trip; then ``partitions_ready``
        of ``ready`` after the writes.

        Each request is fenced and version-locked on its own: a conflict or a lost state is
        returned in its place (ConcurrentModificationError, StateLostError), never raised,
        and does not stop the requests after it. Raises StateStoreError when the store
        cannot be reached.
        """
        ...

    def decided_cycle(self, session_id: str, cycle_id: int) -> DecidedCycle | None:
        """What was kept of decided cycle ``cycle_id``, or None (never decided or aged out)."""
        ...

    def mark_published(self, last_published: Mapping[str, int]) -> None:
        """Per session, the last cycle whose outcome the commit topic now holds."""
        ...

    def restore(
        self,
        session_id: str,
        state: PortfolioState,
        last_decided: int,
        recent: Sequence[tuple[int, bytes, Sequence[str]]] = (),
    ) -> None:
        """Replace a session's stored state and decisions with those of the commit topic."""
        ...

    def server_identity(self) -> str:
        """An id of the serving process that changes when it restarts or fails over."""
        ...

    def partitions_ready(self, partitions: Sequence[int]) -> set[int]:
        """The partitions whose sessions the store holds (restored or never lost)."""
        ...

    def abandoned(self, session_id: str) -> dict[int, str]:
        """The session's cycles given up undecided (cycle id -> discard reason)."""
        ...

    def abandon(self, session_id: str, cycles: Mapping[int, str]) -> None:
        """Remember cycles given up undecided: their events are dead-lettered from now on
        and their marker decides them at once with that reason (a restart included)."""
        ...

    def mark_partition_ready(self, partition: int) -> None: ...

    def get_latest_cash_equity(self, session_id: str) -> dict[str, Decimal] | None: ...

    def get_positions(self, session_id: str) -> list[dict[str, Any]]: ...


def cash_equity_view(state: PortfolioState) -> dict[str, Decimal] | None:
    """The seed's ``get_latest_cash_equity`` answer for a state (None before any commit):
    its four figures, the original module's ``total_unrealized_pnl`` (at the marks of the
    last commit), and ours: cumulative ``total_transfers`` and ``total_residual``."""
    if state.version == 0:
        return None
    return {
        "cash_balance": state.cash,
        "total_equity": state.equity,
        "total_fees": state.fees,
        "total_realized_pnl": state.realized_pnl,
        "total_unrealized_pnl": state.unrealized(),
        "total_transfers": state.transfers,
        "total_residual": state.residual,
    }


@exact
def positions_view(state: PortfolioState) -> list[dict[str, Any]]:
    """The seed's ``get_positions`` answer: symbol, quantity, entry_price (average),
    current_price (the last commit's mark), strategy (the caller's label or None) and
    unrealized_pnl (quantity · mark − cost of the lots)."""
    return [
        {
            "symbol": position.symbol,
            "quantity": position.quantity,
            "entry_price": position.avg_entry_price,
            "current_price": position.mark_price,
            "strategy": state.strategies.get(position.symbol),
            "unrealized_pnl": (
                None
                if position.mark_price is None
                else position.quantity * position.mark_price
                - lots_cost(state.lots[position.symbol])
            ),
        }
        for position in state.positions()
    ]


@exact
def lotbooks_view(state: PortfolioState) -> dict[str, list[dict[str, Any]]]:
    """The seed's lot books: per held symbol its lots, oldest first, as the seed's dicts
    (``lot_id``, ``quantity``, ``cost_price``, ``fee``, ``timestamp``; None where a lot has
    no description, e.g. one a fill opened)."""
    return {
        symbol: [
            {
                "lot_id": lot.lot_id,
                "quantity": lot.quantity,
                "cost_price": lot.price,
                "fee": lot.fee,
                "timestamp": lot.opened_at,
            }
            for lot in lots
        ]
        for symbol, lots in sorted(state.lots.items())
    }


def staged_on(decision: Decision) -> int:
    """The session version a decision was staged on: the version the store must still hold."""
    return decision.state.version - 1 if decision.committed else decision.state.version
