"""StoreRepair: before anything is decided, the store holds what the commit topic says.

A partition without its readiness key is restored whole from the commit topic. For every
other assigned partition the heads (the last outcome per session on the commit topic) are
read once per assignment, and the stored sessions are compared with them after each change
of the Redis server and each store error; a session behind its head is restored (a Redis
restarted from an older snapshot, a replica promoted without the last writes).
"""

from __future__ import annotations

import logging

from portfolio_tx.errors import StateStoreError
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.store.port import StateStore
from portfolio_tx.worker.heads import PublishedHeads, StateBehind
from portfolio_tx.worker.intake import Intake
from portfolio_tx.worker.restore import behind, read_heads, restore_sessions
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")


class StoreRepair:
    """Which partitions were checked against their heads since the store last changed hands
    (a restart, a failover, trouble), and the repair of the others."""

    def __init__(
        self,
        store: StateStore,
        commit_log: CommitLog,
        heads: PublishedHeads,
        intake: Intake,
        stats: WorkerStats,
    ) -> None:
        self._store = store
        self._commit_log = commit_log
        self._heads = heads
        self._intake = intake
        self._stats = stats
        self._verified: set[int] = set()
        self._identity: str | None = None

    def distrust(self) -> None:
        """Compare every partition with its heads again before the next decision."""
        self._verified.clear()

    def forget(self, partitions: set[int]) -> None:
        """Partitions assigned or revoked: their heads are read again when next held."""
        self._verified -= partitions

    def before_deciding(self, assigned: set[int]) -> None:
        """Restore what the store lost or holds older than the commit topic, and re-read the
        repaired sessions' snapshots into their books (the books hold only unstaged events,
        so nothing needs to be read again from Kafka)."""
        partitions = sorted(assigned)
        ready = self._store.partitions_ready(partitions)
        repaired: set[str] = set()
        for partition in partitions:
            if partition not in ready:
                heads = restore_sessions(self._commit_log, self._store, partition)
                self._heads.learn(partition, heads)
                self._verified.add(partition)
                self._stats.restored_sessions += len(heads)
                log.warning(
                    "restored %d sessions of partition %d from the commit topic "
                    "(the store had lost the partition)",
                    len(heads),
                    partition,
                )
                books = self._intake.books.items()
                repaired |= {s for s, b in books if b.partition == partition}
                continue
            if not self._heads.known(partition):
                self._heads.learn(partition, read_heads(self._commit_log, partition))
                self._verified.discard(partition)
            if partition not in self._verified:
                stale = behind(self._store, self._heads.partition_heads(partition))
                if stale:
                    self._repair(StateBehind(partition, stale))
                    repaired |= set(stale)
                self._verified.add(partition)
        if repaired:
            self._intake.reload(repaired)

    def _repair(self, found: StateBehind) -> None:
        """Restore the sessions found behind their published heads, and say so."""
        restore_sessions(self._commit_log, self._store, found.partition, set(found.sessions))
        self._stats.repaired_sessions += len(found.sessions)
        log.warning(
            "repaired %d sessions from the commit topic (partition %d): %s",
            len(found.sessions),
            found.partition,
            found,
        )

    def watch_identity(self) -> None:
        """A new Redis server process (restart, failover) may hold older data: compare the
        stored sessions with their heads again before the next decision."""
        try:
            identity = self._store.server_identity()
        except StateStoreError:
            self._verified.clear()
            return
        if self._identity is not None and identity != self._identity:
            log.warning(
                "the Redis server changed (%s -> %s); checking every session against "
                "the commit topic",
                self._identity,
                identity,
            )
            self._verified.clear()
        self._identity = identity
