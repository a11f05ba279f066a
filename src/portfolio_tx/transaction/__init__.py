"""The seed's library API over the ledger: ``portfolio_transaction`` / ``PortfolioTransaction``.

    core       the transaction: staging, commit, the seed's attributes, the context manager
    staging    the journal of what is staged and savepoints (nested transactions)
    staged     read-only views in the seed's shapes (StagedCash, StagedPosition, ...)
    seed       the seed's call shapes (lot dicts, update dicts) turned into journal ops
    retry      commit_with_retries: recovery from a lost optimistic-lock race
    batch      portfolio_batch: many sessions' transactions in one store round trip
    metrics    Prometheus metrics on a registry the caller passes in
    logline    the seed's PORTFOLIO_COMMIT / PORTFOLIO_DISCARD line

It may import ``ledger`` and ``store.port``; the worker imports it, never the reverse.
"""

from portfolio_tx.transaction.batch import BatchResult, TransactionBatch, portfolio_batch
from portfolio_tx.transaction.core import (
    OutcomeRecorder,
    PortfolioTransaction,
    portfolio_transaction,
)
from portfolio_tx.transaction.logline import decision_line
from portfolio_tx.transaction.metrics import TransactionMetrics
from portfolio_tx.transaction.retry import RetriedCommit, commit_with_retries
from portfolio_tx.transaction.staged import (
    StagedCash,
    StagedLotBook,
    StagedPosition,
    StagedRealizedPnl,
)
from portfolio_tx.transaction.staging import Savepoint

__all__ = [
    "BatchResult",
    "OutcomeRecorder",
    "PortfolioTransaction",
    "RetriedCommit",
    "Savepoint",
    "StagedCash",
    "StagedLotBook",
    "StagedPosition",
    "StagedRealizedPnl",
    "TransactionBatch",
    "TransactionMetrics",
    "commit_with_retries",
    "portfolio_batch",
    "decision_line",
    "portfolio_transaction",
]
