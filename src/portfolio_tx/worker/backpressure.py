"""Backpressure: a worker at its buffer limit pauses the busiest partitions' fills and pnl.

Markers keep flowing, so marked cycles still complete and the open-cycle timeout still
runs; every paused partition resumes once the buffer is back under ``RESUME_AT`` of the
limit (``PTX_MAX_BUFFERED_MB``).
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

from portfolio_tx.wire.topics import TopicNames
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")

RESUME_AT = 0.75  # paused partitions resume once the buffer is back under this share


class Backpressure:
    def __init__(
        self, consumer: Consumer, topics: TopicNames, limit_bytes: int, stats: WorkerStats
    ) -> None:
        self._consumer = consumer
        self._topics = topics
        self._limit = limit_bytes
        self._stats = stats
        self.paused: set[int] = set()

    def forget(self, partitions: set[int]) -> None:
        """Partitions assigned or revoked start unpaused."""
        self.paused -= partitions

    def apply(self, sizes: dict[int, tuple[int, int]]) -> None:
        """``sizes``: per partition, bytes buffered and bytes in unmarked cycles. Pause the
        partitions buffering the most unmarked bytes until the paused ones hold half."""
        total = sum(size for size, _ in sizes.values())
        self._stats.buffered_bytes = total
        if total > self._limit:
            busiest = sorted(
                (p for p, (_, unmarked) in sizes.items() if unmarked and p not in self.paused),
                key=lambda p: -sizes[p][1],
            )
            held = sum(sizes[p][0] for p in self.paused if p in sizes)
            for partition in busiest:
                if held * 2 >= total:
                    break
                self._pause(partition, True)
                held += sizes[partition][0]
        elif self.paused and total <= self._limit * RESUME_AT:
            for partition in sorted(self.paused):
                self._pause(partition, False)
        self._stats.paused_partitions = len(self.paused)

    def _pause(self, partition: int, pause: bool) -> None:
        tps = [TopicPartition(t, partition) for t in (self._topics.fills, self._topics.pnl)]
        if pause:
            self._consumer.pause(tps)
            self.paused.add(partition)
        else:
            self._consumer.resume(tps)
            self.paused.discard(partition)
        log.warning(
            "%s partition %d: %d bytes buffered, limit %d (PTX_MAX_BUFFERED_MB)",
            "pausing" if pause else "resuming",
            partition,
            self._stats.buffered_bytes,
            self._limit,
        )
