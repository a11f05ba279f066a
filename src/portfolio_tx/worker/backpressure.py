"""Backpressure: a worker at its buffer limit pauses the busiest partitions' fills and pnl.

Markers keep flowing, so marked cycles still complete and the open-cycle timeout still
runs; every paused partition resumes once the buffer is back under ``RESUME_AT`` of the
limit (``PTX_MAX_BUFFERED_MB``).

A topic a marked cycle of the partition still waits for is never paused, and is resumed as
soon as one does: the three inputs of a partition are fetched at their own pace (in a
backlog the small P&L reports and markers run ahead of the fills), so the bytes over the
limit are often held by cycles that can only complete with the very records a pause would
stop. Pausing those wedged the partition for good (a full-scale backlog with a 64 MB
buffer: three partitions paused, never resumed, their cycles never decided).

Markers read far ahead of their events (a backlog: a fetch brings ~2,000 markers of a
partition, ~18 times as many cycles as a fetch of its fills) pause that partition's markers
once one of its sessions holds ``marked_limit`` marked cycles waiting for their events, and
resume them at half of it; never while its fills are paused for the buffer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, TopicPartition

from portfolio_tx.wire.topics import TopicNames
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.stats import WorkerStats

log = logging.getLogger("portfolio_tx.worker")

RESUME_AT = 0.75  # paused partitions resume once the buffer is back under this share


class Backpressure:
    def __init__(
        self,
        consumer: Consumer,
        topics: TopicNames,
        limit_bytes: int,
        stats: WorkerStats,
        books: Callable[[], Iterable[SessionBook]],
        marked_limit: int = 64,
    ) -> None:
        self._consumer = consumer
        self._topics = topics
        self._limit = limit_bytes
        self._stats = stats
        self._marked_limit = marked_limit
        self._books = books  # the open books, asked only while over the limit or paused
        self.paused: set[int] = set()
        self._paused_topics: dict[int, list[str]] = {}  # of each paused partition
        self.markers_paused: set[int] = set()

    @property
    def held(self) -> set[int]:
        """The partitions with anything paused here (the overtaking of a flood leaves them)."""
        return self.paused | self.markers_paused

    def forget(self, partitions: set[int]) -> None:
        """Partitions assigned or revoked start unpaused."""
        self.paused -= partitions
        self.markers_paused -= partitions
        for partition in partitions:
            self._paused_topics.pop(partition, None)

    def apply(self, sizes: dict[int, tuple[int, int, int]]) -> None:
        """``sizes``: per partition, bytes buffered, bytes in unmarked cycles, and the most
        marked cycles a session of it holds. Pause the partitions buffering the most unmarked
        bytes until the paused ones hold half; pause the markers of a partition whose
        markers run ahead (see the module docstring)."""
        total = sum(size for size, _, _ in sizes.values())
        self._stats.buffered_bytes = total
        waiting = self._waiting() if self.paused or total > self._limit else {}
        for partition in sorted(self.paused):  # a marked cycle waits for a paused topic
            needed = [t for t in self._paused_topics[partition] if t in waiting.get(partition, ())]
            if needed:
                self._pause(partition, needed, False)
        if total > self._limit:
            busiest = sorted(
                (p for p, (_, unmarked, _) in sizes.items() if unmarked and p not in self.paused),
                key=lambda p: -sizes[p][1],
            )
            held = sum(sizes[p][0] for p in self.paused if p in sizes)
            for partition in busiest:
                if held * 2 >= total:
                    break
                topics = [
                    topic
                    for topic in (self._topics.fills, self._topics.pnl)
                    if topic not in waiting.get(partition, ())
                ]
                if topics:
                    self._pause(partition, topics, True)
                    held += sizes[partition][0]
        elif self.paused and total <= self._limit * RESUME_AT:
            for partition in sorted(self.paused):
                self._pause(partition, list(self._paused_topics[partition]), False)
        self._stats.paused_partitions = len(self.paused)
        self._markers(sizes)

    def _markers(self, sizes: dict[int, tuple[int, int, int]]) -> None:
        for partition in sorted(set(sizes) | self.markers_paused):
            marked = sizes.get(partition, (0, 0, 0))[2]
            if partition in self.markers_paused:
                if marked <= self._marked_limit // 2 or partition in self.paused:
                    self._hold_markers(partition, False, marked)
            elif marked >= self._marked_limit and partition not in self.paused:
                self._hold_markers(partition, True, marked)

    def _hold_markers(self, partition: int, hold: bool, marked: int) -> None:
        self._switch([self._topics.cycles], partition, hold)
        if hold:
            self.markers_paused.add(partition)
        else:
            self.markers_paused.discard(partition)
        log.info(
            "%s the markers of partition %d: a session holds %d marked cycles waiting for "
            "their events",
            "pausing" if hold else "resuming",
            partition,
            marked,
        )

    def _waiting(self) -> dict[int, set[str]]:
        """Per partition, the input topics a marked cycle of it still waits for."""
        waiting: dict[int, set[str]] = {}
        fills, pnl = self._topics.fills, self._topics.pnl
        for book in self._books():
            for cycle in book.cycles.values():
                wants_fills, wants_pnl = cycle.waits_for()
                if wants_fills or wants_pnl:
                    topics = waiting.setdefault(book.partition, set())
                    if wants_fills:
                        topics.add(fills)
                    if wants_pnl:
                        topics.add(pnl)
        return waiting

    def _pause(self, partition: int, topics: list[str], pause: bool) -> None:
        """Pause (or resume) ``topics`` of ``partition``; it stays in ``paused`` while any
        of its topics is paused."""
        held = self._paused_topics.setdefault(partition, [])
        for topic in topics:
            if pause and topic not in held:
                held.append(topic)
            elif not pause and topic in held:
                held.remove(topic)
        self._switch(topics, partition, pause)
        if held:
            self.paused.add(partition)
        else:
            self.paused.discard(partition)
            del self._paused_topics[partition]
        log.warning(
            "%s %s of partition %d: %d bytes buffered, limit %d (PTX_MAX_BUFFERED_MB)",
            "pausing" if pause else "resuming",
            " and ".join(topics),
            partition,
            self._stats.buffered_bytes,
            self._limit,
        )

    def _switch(self, topics: list[str], partition: int, pause: bool) -> None:
        """Pause (or resume) ``partition`` of ``topics`` in the consumer."""
        tps = [TopicPartition(topic, partition) for topic in topics]
        (self._consumer.pause if pause else self._consumer.resume)(tps)
