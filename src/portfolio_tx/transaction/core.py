"""``PortfolioTransaction``: one session's cycle, staged in memory and decided once.

A transaction reads the session's committed state once, stages changes on top of it with
the pure ledger, and at ``commit(mark_prices)`` values and validates only the final staged
state. A COMMIT is written to the store in one atomic, version-checked call; a DISCARD
leaves the state untouched. An exception inside the ``with`` block, or leaving it without
``commit``, rolls back: nothing staged reaches the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from portfolio_tx import ledger
from portfolio_tx.errors import (
    ConcurrentModificationError,
    TransactionStateError,
    ValidationError,
)
from portfolio_tx.ledger import CostBasis, Decision, DiscardReason, StagedCycle
from portfolio_tx.ledger import journal as ops
from portfolio_tx.ledger.fast import decide_fast
from portfolio_tx.ledger.money import Number
from portfolio_tx.store.port import (
    Applied,
    DecisionWriter,
    SessionSnapshot,
    StateStore,
    cash_equity_view,
    lotbooks_view,
    positions_view,
)
from portfolio_tx.transaction import seed, staged
from portfolio_tx.transaction.logline import decision_line
from portfolio_tx.transaction.metrics import TransactionMetrics, metrics_for
from portfolio_tx.transaction.stages import Stages
from portfolio_tx.transaction.staging import Savepoint, Staging

log = logging.getLogger("portfolio_tx.transaction")

OutcomeRecorder = Callable[[Decision], bytes]
_money = seed.money


class PortfolioTransaction(Stages):
    """One session's cycle, staged in memory and decided once.

    Use it as a context manager, directly or through ``portfolio_transaction(...)``.
    ``previous_equity`` defaults to the committed equity; ``validation_epsilon`` overrides
    the tolerance rule; ``cycle_id`` fences the decision in the store so a cycle is never
    decided twice; ``record_outcome`` turns the decision into the record the store keeps
    beside it (the worker's CycleOutcome) and ``event_ids`` are kept with it; ``snapshot``
    spares the read when the caller has the session's committed state at hand (the worker's
    cache); ``metrics`` (a TransactionMetrics, or a prometheus_client registry) counts the
    decisions; ``writer`` takes the decision's write instead of the store (the worker's
    checkpoint, which sends a batch's writes in one round trip). ``committed`` /
    ``rolled_back`` say how it ended.
    """

    def __init__(
        self,
        state_store: StateStore,
        session_id: str,
        *,
        previous_equity: Number | None = None,
        validation_epsilon: Number | None = None,
        cost_basis: CostBasis | str = CostBasis.FIFO,
        cycle_id: int | None = None,
        portfolio_manager: Any = None,
        record_outcome: OutcomeRecorder | None = None,
        snapshot: SessionSnapshot | None = None,
        event_ids: Sequence[str] = (),
        metrics: TransactionMetrics | CollectorRegistry | None = None,
        writer: DecisionWriter | None = None,
    ) -> None:
        self.session_id = session_id
        self.cycle_id = cycle_id
        self.portfolio_manager = portfolio_manager
        self._store = state_store
        self._writer: DecisionWriter = state_store if writer is None else writer
        self._previous_equity = seed.optional_money(previous_equity, "previous_equity")
        self._epsilon = seed.optional_money(validation_epsilon, "epsilon")
        self._record_outcome = record_outcome
        self._event_ids = event_ids
        self._metrics: TransactionMetrics | None = metrics_for(metrics)
        if snapshot is None:
            snapshot = state_store.load(session_id)
        self.last_decided = snapshot.last_decided
        self._base = snapshot.state
        basis = cost_basis if isinstance(cost_basis, CostBasis) else CostBasis(cost_basis)
        self._staging = Staging(snapshot.state, basis)
        self._open = True
        self._savepoints: list[Savepoint] = []
        self.applied: Applied | None = None
        self.committed = False
        self.rolled_back = False

    # -- the seed's attributes -------------------------------------------------------------

    @property
    def previous_equity(self) -> Decimal:
        """The equity validation starts from: the one given, else the committed equity."""
        return self._base.equity if self._previous_equity is None else self._previous_equity

    @property
    def validation_epsilon(self) -> Decimal:
        return ledger.epsilon_for(self.previous_equity, self._epsilon)

    @property
    def current_cash_equity(self) -> dict[str, Decimal] | None:
        """The committed figures this transaction is staged on (None for a new session)."""
        return cash_equity_view(self._base)

    @property
    def current_positions(self) -> list[dict[str, Any]]:
        return positions_view(self._base)

    @property
    def current_lotbooks(self) -> dict[str, list[dict[str, Any]]]:
        return lotbooks_view(self._base)

    @property
    def staged_cash(self) -> staged.StagedCash:
        return staged.staged_cash(self._staging.staged)

    @property
    def staged_realized_pnl(self) -> staged.StagedRealizedPnl:
        return staged.staged_realized(self._staging.staged)

    @property
    def staged_positions(self) -> dict[str, staged.StagedPosition]:
        return staged.staged_positions(self._staging.staged, self._staging.ops)

    @property
    def staged_lotbooks(self) -> dict[str, staged.StagedLotBook]:
        return staged.staged_lotbooks(self._staging.ops)

    # -- state -----------------------------------------------------------------------------

    @property
    def staged(self) -> StagedCycle:
        """The staged cycle so far; raises TransactionStateError once the transaction ended."""
        self._ensure_open()
        return self._staging.staged

    @property
    def decision(self) -> Decision | None:
        return None if self.applied is None else self.applied.decision

    def held_symbols(self) -> tuple[str, ...]:
        """Symbols held after what is staged so far: each needs a mark to commit."""
        return self.staged.held_symbols()

    def savepoint(self) -> Savepoint:
        """A nested transaction: ``with tx.savepoint() as sp:`` (see ``Savepoint``)."""
        self._ensure_open()
        return Savepoint(self._staging, self._savepoints)

    nested = savepoint

    def _stage(self, op: ops.Op) -> None:
        self._ensure_open()
        self._staging.apply(op)

    def _stage_fills(self, fills: list[ops.Fill]) -> None:
        self._ensure_open()
        self._staging.apply_fills(fills)

    def _ensure_open(self) -> None:
        if not self._open:
            raise TransactionStateError(f"transaction for {self.session_id} has ended")

    # -- deciding --------------------------------------------------------------------------

    def commit(self, mark_prices: Mapping[str, Number]) -> bool:
        """Value the final staged state at ``mark_prices``, validate, and write or discard.

        Returns True when committed, False when discarded. Raises
        ConcurrentModificationError (nothing written) when another commit changed the
        session since this transaction read it; TransactionStateError inside a savepoint;
        ValidationError when a symbol's position legs and lot edits disagree.
        """
        started = time.perf_counter()
        current = self.staged
        if self._savepoints:
            raise TransactionStateError("commit inside an open savepoint: leave it first")
        # only lot-defined symbols can mismatch (none: no lot edit staged, the usual case)
        mismatches = self._staging.lot_defined and ops.leg_mismatches(current, self._staging.ops)
        if mismatches:
            raise ValidationError("; ".join(mismatches))
        marks = {symbol: _money(price, f"mark {symbol}") for symbol, price in mark_prices.items()}
        decision = decide_fast(  # ledger.decide, equal digit for digit (ledger/fast.py)
            current,
            marks,
            cycle_id=self.cycle_id,
            previous_equity=self._previous_equity,
            epsilon=self._epsilon,
        )
        return self._finish(decision, started).decision.committed

    def discard(self, reason: DiscardReason) -> Applied:
        """Decide the cycle as discarded without valuing it (incomplete, stale mark, ...)."""
        decision = ledger.discard(
            self.staged.base,
            reason,
            cycle_id=self.cycle_id,
            previous_equity=self._previous_equity,
            epsilon=self._epsilon,
        )
        return self._finish(decision, time.perf_counter())

    def rollback(self) -> None:
        """Drop everything staged; the store is not touched."""
        if self._open:
            self._open = False
            self.rolled_back = True
            self._savepoints.clear()
            self._staging = Staging(self._base, self._staging.basis)

    def _finish(self, decision: Decision, started: float) -> Applied:
        self._open = False
        record = self._record_outcome(decision) if self._record_outcome else None
        try:
            applied = self._writer.apply(
                self.session_id, decision, outcome=record, event_ids=self._event_ids
            )
        except ConcurrentModificationError:
            self.rolled_back = True
            if self._metrics is not None:
                self._metrics.conflict()
            raise
        self.applied = applied
        self.committed = committed = decision.committed
        self.rolled_back = not committed
        if self._metrics is not None:
            self._metrics.observe(applied, time.perf_counter() - started)
        if applied.fenced:
            log.info(
                "cycle already decided, not applied again session=%s cycle=%s",
                self.session_id,
                self.cycle_id,
            )
        elif log.isEnabledFor(logging.INFO):  # the line costs more than deciding a small tx
            log.info(
                "%s session=%s cycle=%s",
                decision_line(decision),
                self.session_id,
                self.cycle_id,
                extra={"session_id": self.session_id, "cycle_id": self.cycle_id},
            )
        return applied

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> PortfolioTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._open and exc_type is None:
            log.info("transaction left without commit, rolled back session=%s", self.session_id)
        self.rollback()


@contextmanager
def portfolio_transaction(
    state_store: StateStore,
    session_id: str,
    previous_equity: Number | None = None,
    **options: Any,
) -> Iterator[PortfolioTransaction]:
    """Open a PortfolioTransaction; roll back on exception or when left without commit."""
    with PortfolioTransaction(
        state_store, session_id, previous_equity=previous_equity, **options
    ) as tx:
        yield tx
