"""portfolio-tx: trading cycles staged from Kafka, validated with marks, committed once.

The public API; everything else is internal.
"""

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
