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
    PortfolioTransaction,
    RetriedCommit,
    Savepoint,
    StagedCash,
    StagedLotBook,
    StagedPosition,
    StagedRealizedPnl,
    TransactionMetrics,
    commit_with_retries,
    portfolio_transaction,
)

__all__ = [
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
    "StateStoreError",
    "TransactionMetrics",
    "TransactionStateError",
    "ValidationError",
    "commit_with_retries",
    "portfolio_transaction",
]
