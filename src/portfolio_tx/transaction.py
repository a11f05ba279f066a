"""The seed's library API: ``portfolio_transaction(...)`` and ``PortfolioTransaction``.

A transaction reads the session's committed state once, stages changes on top of it with
the pure ledger, and at ``commit(mark_prices)`` values and validates only the final staged
state. A COMMIT is written to the store in one atomic, version-checked call; a DISCARD
leaves the state untouched. An exception inside the ``with`` block, or leaving it without
``commit``, rolls back: nothing staged reaches the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from portfolio_tx import ledger
from portfolio_tx.errors import TransactionStateError, ValidationError
from portfolio_tx.ledger import (
    CostBasis,
    D,
    Decision,
    DiscardReason,
    PnlKind,
    Side,
    StagedCycle,
    money2,
)
from portfolio_tx.ledger.money import Number
from portfolio_tx.store.port import Applied, DecisionWriter, SessionSnapshot, StateStore

log = logging.getLogger("portfolio_tx.transaction")

OutcomeRecorder = Callable[[Decision], bytes]


def _money(value: Number, what: str) -> Decimal:
    try:
        return D(value)
    except ValueError as exc:
        raise ValidationError(f"{what}: {exc}") from exc


def decision_line(decision: Decision) -> str:
    """The seed's log line for a decision (two decimals)."""
    if decision.committed:
        return (
            f"PORTFOLIO_COMMIT: cash=${money2(decision.cash)}, "
            f"positions=${money2(decision.positions_value)}, total=${money2(decision.total)} "
            f"(Δ=${money2(decision.delta)}, ε=${money2(decision.epsilon)})"
        )
    return (
        f"PORTFOLIO_DISCARD: reason={decision.reason} "
        f"Δ=${money2(decision.delta)}, ε=${money2(decision.epsilon)}"
    )


class PortfolioTransaction:
    """One session's cycle, staged in memory and decided once.

    Build it with ``portfolio_transaction(...)``. ``previous_equity`` defaults to the
    committed equity; ``validation_epsilon`` overrides the tolerance rule; ``cycle_id``
    fences the decision in the store so a cycle is never decided twice; ``record_outcome``
    turns the decision into the record the store keeps beside it (the worker's CycleOutcome)
    and ``event_ids`` are kept with it; ``snapshot`` spares the read when the caller has the
    session's committed state at hand (the worker's cache); ``writer`` takes the decision's
    write instead of the store (the worker's checkpoint, which sends a batch's in one round
    trip).
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
        writer: DecisionWriter | None = None,
    ) -> None:
        self.session_id = session_id
        self.cycle_id = cycle_id
        self.portfolio_manager = portfolio_manager
        self._store = state_store
        self._writer: DecisionWriter = state_store if writer is None else writer
        self._previous_equity = (
            None if previous_equity is None else _money(previous_equity, "previous_equity")
        )
        self._epsilon = (
            None if validation_epsilon is None else _money(validation_epsilon, "epsilon")
        )
        self._record_outcome = record_outcome
        self._event_ids = event_ids
        if snapshot is None:
            snapshot = state_store.load(session_id)
        self.last_decided = snapshot.last_decided
        self._staged: StagedCycle | None = ledger.open_cycle(snapshot.state, CostBasis(cost_basis))
        self.applied: Applied | None = None

    @property
    def staged(self) -> StagedCycle:
        """The staged cycle so far; raises TransactionStateError once the transaction ended."""
        if self._staged is None:
            raise TransactionStateError(f"transaction for {self.session_id} has ended")
        return self._staged

    @property
    def decision(self) -> Decision | None:
        return None if self.applied is None else self.applied.decision

    def held_symbols(self) -> tuple[str, ...]:
        """Symbols held after what is staged so far: each needs a mark to commit."""
        return self.staged.held_symbols()

    # -- staging ---------------------------------------------------------------------------

    def stage_fill(
        self, symbol: str, side: Side | str, quantity: Number, price: Number, fee: Number = 0
    ) -> None:
        try:
            side = Side(side)
        except ValueError as exc:
            raise ValidationError(f"unknown side {side!r}") from exc
        self._staged = ledger.stage_fill(
            self.staged,
            symbol,
            side,
            _money(quantity, "quantity"),
            _money(price, "price"),
            _money(fee, "fee"),
        )

    def stage_transfer(self, amount: Number) -> None:
        self._staged = ledger.stage_pnl(self.staged, PnlKind.TRANSFER, _money(amount, "amount"))

    def stage_funding(self, amount: Number) -> None:
        self._staged = ledger.stage_pnl(self.staged, PnlKind.FUNDING, _money(amount, "amount"))

    def stage_realized_pnl_delta(self, amount: Number) -> None:
        self._staged = ledger.stage_pnl(self.staged, PnlKind.REALIZED, _money(amount, "amount"))

    def stage_pnl(self, kind: PnlKind | str, amount: Number) -> None:
        """Stage a P&L report of any kind (REALIZED, FUNDING or TRANSFER)."""
        self._staged = ledger.stage_pnl(self.staged, PnlKind(kind), _money(amount, "amount"))

    def stage_cash_delta(self, amount: Number, fees: Number = 0) -> None:
        self._staged = ledger.stage_cash_delta(
            self.staged, _money(amount, "amount"), _money(fees, "fees")
        )

    def stage_position_delta(self, symbol: str, quantity: Number, entry_price: Number) -> None:
        self._staged = ledger.stage_position_delta(
            self.staged, symbol, _money(quantity, "quantity"), _money(entry_price, "entry_price")
        )

    def stage_lot_add(self, symbol: str, quantity: Number, price: Number) -> None:
        self._staged = ledger.stage_lot_add(
            self.staged, symbol, _money(quantity, "quantity"), _money(price, "price")
        )

    def stage_lot_remove(self, symbol: str, index: int = 0) -> None:
        self._staged = ledger.stage_lot_remove(self.staged, symbol, index)

    def stage_lot_update(
        self,
        symbol: str,
        index: int,
        *,
        quantity: Number | None = None,
        price: Number | None = None,
    ) -> None:
        self._staged = ledger.stage_lot_update(
            self.staged,
            symbol,
            index,
            quantity=None if quantity is None else _money(quantity, "quantity"),
            price=None if price is None else _money(price, "price"),
        )

    # -- deciding --------------------------------------------------------------------------

    def commit(self, mark_prices: Mapping[str, Number]) -> bool:
        """Value the final staged state at ``mark_prices``, validate, and write or discard.

        Returns True when committed, False when discarded. Raises
        ConcurrentModificationError (nothing written) when another commit changed the
        session since this transaction read it.
        """
        marks = {symbol: _money(price, f"mark {symbol}") for symbol, price in mark_prices.items()}
        decision = ledger.decide(
            self.staged,
            marks,
            cycle_id=self.cycle_id,
            previous_equity=self._previous_equity,
            epsilon=self._epsilon,
        )
        return self._finish(decision).decision.committed

    def discard(self, reason: DiscardReason) -> Applied:
        """Decide the cycle as discarded without valuing it (incomplete, stale mark, ...)."""
        decision = ledger.discard(
            self.staged.base,
            reason,
            cycle_id=self.cycle_id,
            previous_equity=self._previous_equity,
            epsilon=self._epsilon,
        )
        return self._finish(decision)

    def rollback(self) -> None:
        """Drop everything staged; the store is not touched."""
        self._staged = None

    def _finish(self, decision: Decision) -> Applied:
        self._staged = None
        record = self._record_outcome(decision) if self._record_outcome else None
        applied = self._writer.apply(
            self.session_id, decision, outcome=record, event_ids=self._event_ids
        )
        self.applied = applied
        if applied.fenced:
            log.info(
                "cycle already decided, not applied again session=%s cycle=%s",
                self.session_id,
                self.cycle_id,
            )
        else:
            log.info(
                "%s session=%s cycle=%s",
                decision_line(decision),
                self.session_id,
                self.cycle_id,
                extra={"session_id": self.session_id, "cycle_id": self.cycle_id},
            )
        return applied


@contextmanager
def portfolio_transaction(
    state_store: StateStore,
    session_id: str,
    previous_equity: Number | None = None,
    **options: Any,
) -> Iterator[PortfolioTransaction]:
    """Open a PortfolioTransaction; roll back on exception or when left without commit."""
    tx = PortfolioTransaction(state_store, session_id, previous_equity=previous_equity, **options)
    try:
        yield tx
    except BaseException:
        tx.rollback()
        raise
    if tx.applied is None:
        log.info("transaction left without commit, rolled back session=%s", session_id)
        tx.rollback()
