"""Every error portfolio-tx raises derives from one root.

    PortfolioTxError
    ├── ConfigError                  a configuration value is missing or malformed
    ├── ValidationError              a staged input is invalid (quantity, price, side, ...)
    ├── StateStoreError              the state store failed (Redis unreachable, script error)
    │   ├── ConcurrentModificationError   a commit lost the optimistic-lock race on a session
    │   │   └── RetriesExhaustedError     every attempt of commit_with_retries lost it
    │   ├── StateLostError           the store no longer has a session's state (flushed, replaced)
    │   ├── StateBehind              (worker) stored sessions older than their published outcome
    │   ├── StoreLost                (worker) a partition's sessions vanished mid-transaction
    │   └── BatchRejected            (worker) a batched write did not apply as staged
    ├── TransactionStateError        the transaction was used after it ended
    ├── RecordError                  a record is not what its schema says
    │   ├── DecodeError              it could not be decoded (names topic/partition/offset)
    │   └── EncodeError              it does not fit its schema
    ├── KafkaSetupError              broker unreachable, topics missing or not co-partitioned
    ├── ProducerStuckError           a transactional producer call did not return in time
    └── WorkerFatalError             the worker cannot go on (fenced, fatal Kafka error)

The three marked (worker) are the worker's signals between its commit protocol and its loop;
they live beside the code that raises them (``worker/heads.py``, ``worker/checkpoint.py``).
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


class RecordError(PortfolioTxError):
    """A record is not what its schema says (``DecodeError`` reading, ``EncodeError`` writing)."""


class DecodeError(RecordError):
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


class EncodeError(RecordError):
    """A record could not be encoded for ``topic`` (a value that does not fit its schema)."""

    def __init__(self, message: str, *, topic: str) -> None:
        self.reason = message
        self.topic = topic
        self.partition: int | None = None
        self.offset: int | None = None
        super().__init__(f"cannot encode record for {topic}: {message}")


class KafkaSetupError(PortfolioTxError):
    """The Kafka side is not usable as configured (unreachable, topics missing, partitions)."""


class ProducerStuckError(PortfolioTxError):
    """A transactional producer call did not return within its deadline: the producer is
    replaced and the transaction rewound."""


class WorkerFatalError(PortfolioTxError):
    """The worker cannot go on (fenced by a newer instance, a fatal Kafka error)."""
