"""Counters the worker keeps (the demo's summary and the tests read them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class WorkerStats:
    consumed: Counter[str] = field(default_factory=Counter)  # per topic
    committed: int = 0
    discarded: Counter[str] = field(default_factory=Counter)  # per reason
    dead_lettered: int = 0
    duplicates: int = 0
    redelivered: int = 0
    fenced: int = 0
    aborted_transactions: int = 0
    transactions: int = 0

    @property
    def decided(self) -> int:
        return self.committed + sum(self.discarded.values())

    def summary(self) -> dict[str, object]:
        return {
            "consumed": dict(self.consumed),
            "committed": self.committed,
            "discarded": dict(self.discarded),
            "dead_lettered": self.dead_lettered,
            "duplicates": self.duplicates,
            "redelivered": self.redelivered,
            "fenced": self.fenced,
            "aborted_transactions": self.aborted_transactions,
            "transactions": self.transactions,
        }
