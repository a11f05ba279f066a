"""Every error portfolio-tx raises derives from one root.

    PortfolioTxError
    ├── ConfigError                  a configuration value is missing or malformed
    ├── ValidationError              a staged input is invalid (quantity, price, side, ...)
    ├── StateStoreError              the state store failed (Redis unreachable, script error)
    │   ├── ConcurrentModificationError   a commit lost the optimistic-lock race on a session
    │   │   └── RetriesExhaustedError     every attempt of commit_with_retries lost it
    │   └── StateLostError           the store no longer has a session's state (flushed, replaced)
    ├── TransactionStateError        the transaction was used after it ended
    ├── DecodeError                  a record could not be decoded (names topic/partition/offset)
    │   └── EncodeError              a record does not fit its schema
    └── KafkaSetupError              broker unreachable, topics missing or not co-partitioned

Dependency errors (redis, confluent_kafka, fastavro) are translated into these at the adapter
that talks to the dependency, with ``raise ... from exc`` so the cause stays visible.
"""

from __future__ import annotations


class PortfolioTxError(Exception):
    """Root of every error raised by portfolio-tx."""


class ConfigError(PortfolioTxError):
    """A configuration value is missing or malformed."""


class ValidationError(PortfolioTxError):
    """A staged input was rejected (non-positive quantity or price, unknown side, ...)."""


class StateStoreError(PortfolioTxError):
    """The state store could not complete an operation."""


class ConcurrentModificationError(StateStoreError):
    """Another commit changed the session after this transaction read it; nothing was written."""


class RetriesExhaustedError(ConcurrentModificationError):
    """Every attempt of ``commit_with_retries`` lost the race; ``attempts`` says how many."""

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class StateLostError(StateStoreError):
    """The store no longer holds a state this transaction was staged on; nothing was written.

    Redis was flushed or replaced: the worker restores from the commit topic before going on.
    """


class TransactionStateError(PortfolioTxError):
    """A PortfolioTransaction was used after it committed, discarded or rolled back."""


class DecodeError(PortfolioTxError):
    """A record could not be decoded.

    ``topic``, ``partition`` and ``offset`` say where it came from when known.
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = message
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = ""
        if topic is not None:
            where = f" at {topic}[{partition}]@{offset}"
        super().__init__(f"cannot decode record{where}: {message}")


class EncodeError(DecodeError):
    """A record could not be encoded for ``topic`` (a value that does not fit its schema)."""

    def __init__(self, message: str, *, topic: str) -> None:
        super().__init__(message, topic=topic)
        Exception.__init__(self, f"cannot encode record for {topic}: {message}")


class KafkaSetupError(PortfolioTxError):
    """The Kafka side is not usable as configured (unreachable, topics missing, partitions)."""
