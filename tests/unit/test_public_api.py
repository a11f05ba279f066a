"""The seed's names are public: callers of the original module switch by changing the import."""

from __future__ import annotations

import portfolio_tx
import portfolio_tx.transaction as transaction

SEED_NAMES = {
    "PortfolioTransaction",
    "portfolio_transaction",
    "StagedCash",
    "StagedPosition",
    "StagedLotBook",
    "StagedRealizedPnl",
}
FUTURE_ENHANCEMENTS = {
    "Savepoint",
    "commit_with_retries",
    "RetriedCommit",
    "TransactionMetrics",
    "portfolio_batch",
    "TransactionBatch",
    "BatchResult",
}


def test_the_seed_names_and_the_enhancements_are_exported() -> None:
    names = SEED_NAMES | FUTURE_ENHANCEMENTS
    assert names <= set(portfolio_tx.__all__)
    assert names <= set(transaction.__all__)
    for name in names:
        assert getattr(portfolio_tx, name) is getattr(transaction, name)
