"""portfolio-tx: trading cycles staged from Kafka, validated with marks, committed once.

The public API; everything else is internal.
"""

import importlib
from typing import TYPE_CHECKING, Any

from portfolio_tx.errors import (
    ConcurrentModificationError,
    ConfigError,
    DecodeError,
    KafkaSetupError,
    PortfolioTxError,
    RetriesExhaustedError,
    StateLostError,
    StateStoreError,
    TransactionStateError,
    ValidationError,
)
from portfolio_tx.ledger import (
    CostBasis,
    Decision,
    DiscardReason,
    OutcomeKind,
    PnlKind,
    PortfolioState,
    Position,
    Side,
)

if TYPE_CHECKING:
    from portfolio_tx.store import RedisStateStore, StateStore
    from portfolio_tx.transaction import (
        BatchResult,
        PortfolioTransaction,
        RetriedCommit,
        Savepoint,
        StagedCash,
        StagedLotBook,
        StagedPosition,
        StagedRealizedPnl,
        TransactionBatch,
        TransactionMetrics,
        commit_with_retries,
        portfolio_batch,
        portfolio_transaction,
    )

# The store and the transaction API are imported when first used: the command line
# (`python -m portfolio_tx` imports this package first) then starts without redis-py, and a
# bad flag or variable is refused in a fraction of a second.
_LAZY = {
    "RedisStateStore": "portfolio_tx.store",
    "StateStore": "portfolio_tx.store",
    **dict.fromkeys(
        (
            "BatchResult",
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
            "portfolio_transaction",
        ),
        "portfolio_tx.transaction",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'portfolio_tx' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BatchResult",
    "ConcurrentModificationError",
    "ConfigError",
    "CostBasis",
    "Decision",
    "DecodeError",
    "DiscardReason",
    "KafkaSetupError",
    "OutcomeKind",
    "PnlKind",
    "PortfolioState",
    "PortfolioTransaction",
    "PortfolioTxError",
    "Position",
    "RedisStateStore",
    "RetriedCommit",
    "RetriesExhaustedError",
    "Savepoint",
    "Side",
    "StagedCash",
    "StagedLotBook",
    "StagedPosition",
    "StagedRealizedPnl",
    "StateStore",
    "StateLostError",
    "StateStoreError",
    "TransactionBatch",
    "TransactionMetrics",
    "TransactionStateError",
    "ValidationError",
    "commit_with_retries",
    "portfolio_batch",
    "portfolio_transaction",
]
