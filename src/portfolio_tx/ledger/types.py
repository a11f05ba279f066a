"""The ledger's vocabulary: string enums that are also the wire's enum symbols."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """Side of a fill: BUY adds quantity, SELL removes it."""

    BUY = "BUY"
    SELL = "SELL"


class PnlKind(StrEnum):
    """Kind of a P&L report (CONTRACT §2)."""

    REALIZED = "REALIZED"  # upstream's claim; no cash effect, validated
    FUNDING = "FUNDING"  # cash += amount, and it is realized P&L
    TRANSFER = "TRANSFER"  # cash += amount; deposit or withdrawal, not P&L


class CostBasis(StrEnum):
    """Order in which a fill closes opposite lots."""

    FIFO = "fifo"
    AVERAGE = "average"


class OutcomeKind(StrEnum):
    COMMIT = "COMMIT"
    DISCARD = "DISCARD"


class DiscardReason(StrEnum):
    """Why a cycle was discarded; the strings are stable and public."""

    VALIDATION_FAILED = "VALIDATION_FAILED"
    MISSING_MARK = "MISSING_MARK"
    STALE_MARK = "STALE_MARK"
    INCOMPLETE = "INCOMPLETE"
    COUNT_MISMATCH = "COUNT_MISMATCH"
    INVALID_EVENT = "INVALID_EVENT"
    TOO_LARGE = "TOO_LARGE"  # past a size limit: events per cycle or open cycles per session
