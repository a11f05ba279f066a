"""The state-store port and its Redis implementation."""

from portfolio_tx.store.port import Applied, DecidedCycle, SessionSnapshot, StateStore
from portfolio_tx.store.redis_store import RedisStateStore

__all__ = ["Applied", "DecidedCycle", "RedisStateStore", "SessionSnapshot", "StateStore"]
