"""Batch operations: many sessions' transactions read in one round trip and decided in one.

    with portfolio_batch(store, ["s-1", "s-2", "s-3"]) as batch:
        for session_id in ("s-1", "s-2", "s-3"):
            tx = batch.transaction(session_id)
            tx.stage_transfer(Decimal("10"))
            tx.commit({})
    batch.results["s-2"].committed     # True, or False with .error / a DISCARD decision

Each transaction stages and validates on its own, exactly as ``portfolio_transaction``;
its ``commit`` only queues the write. Leaving the block sends every write in one round
trip (``StateStore.apply_many``, the same fenced, version-locked script as a single
commit, the path the worker's checkpoint takes): one session's discard or lost race does
not touch the others. A lost race is reported in ``results`` (``error`` set, the
transaction's ``committed`` False and ``rolled_back`` True), not raised. An exception
inside the block writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from portfolio_tx.errors import StateStoreError, TransactionStateError
from portfolio_tx.ledger import Decision
from portfolio_tx.store.port import SessionSnapshot, StateStore, WriteQueue
from portfolio_tx.transaction.core import PortfolioTransaction


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What became of one session's transaction in the batch."""

    session_id: str
    committed: bool  # written as a COMMIT
    decision: Decision
    error: StateStoreError | None = None  # ConcurrentModificationError, StateLostError
    fenced: bool = False  # its cycle id had been decided before: nothing written


class TransactionBatch:
    """Collects the transactions of one batch; ``commit`` writes them in one round trip."""

    def __init__(self, store: StateStore, session_ids: Iterable[str] = (), **options: Any):
        self._store = store
        self._options = options
        names = list(dict.fromkeys(session_ids))
        self._snapshots: dict[str, SessionSnapshot] = (
            dict(zip(names, store.load_many(names), strict=True)) if names else {}
        )
        self._transactions: dict[str, PortfolioTransaction] = {}
        self._writes = WriteQueue()
        self.results: dict[str, BatchResult] = {}
        self._done = False

    def transaction(self, session_id: str, **options: Any) -> PortfolioTransaction:
        """A transaction on ``session_id`` in this batch (one per session)."""
        if self._done:
            raise TransactionStateError("the batch was already committed")
        if session_id in self._transactions:
            raise TransactionStateError(f"session {session_id} already has a transaction here")
        snapshot = self._snapshots.get(session_id) or self._store.load(session_id)
        tx = PortfolioTransaction(
            self._store,
            session_id,
            snapshot=snapshot,
            writer=self._writes,
            **({**self._options, **options} if options else self._options),
        )
        self._transactions[session_id] = tx
        return tx

    def commit(self) -> dict[str, BatchResult]:
        """Send every queued write in one round trip; per session, what happened."""
        if self._done:
            raise TransactionStateError("the batch was already committed")
        self._done = True
        writes = self._writes.take()
        results, _ = self._store.apply_many(writes)
        for request, result in zip(writes, results, strict=True):
            tx = self._transactions[request.session_id]
            if isinstance(result, StateStoreError):
                tx.committed, tx.rolled_back, tx.applied = False, True, None
                self.results[request.session_id] = BatchResult(
                    request.session_id, False, request.decision, error=result
                )
                continue
            tx.applied = result
            committed = result.decision.committed and not result.fenced
            tx.committed, tx.rolled_back = committed, not committed
            self.results[request.session_id] = BatchResult(
                request.session_id, committed, result.decision, fenced=result.fenced
            )
        for tx in self._transactions.values():
            tx.rollback()  # any left without commit: nothing of it was queued
        return self.results

    def rollback(self) -> None:
        """Drop every queued write; nothing reaches the store."""
        self._done = True
        self._writes.take()
        for tx in self._transactions.values():
            tx.rollback()


@contextmanager
def portfolio_batch(
    state_store: StateStore, session_ids: Iterable[str] = (), **options: Any
) -> Iterator[TransactionBatch]:
    """Open a TransactionBatch (``session_ids`` are read in one round trip up front); its
    writes go to the store in one round trip when the block ends, none on an exception."""
    batch = TransactionBatch(state_store, session_ids, **options)
    try:
        yield batch
    except BaseException:
        batch.rollback()
        raise
    batch.commit()
