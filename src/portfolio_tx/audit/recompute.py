"""Recompute every cycle from the input topics, offline, with the pure core.

The same CycleDesk the worker runs (session books, cycle-id order, the core's decision) is
fed every record of the input topics, partition by partition, in the order the records were
appended (their Kafka timestamps, events before markers on a tie), with time running on those
timestamps: a marked cycle still incomplete when the input ends is INCOMPLETE. Decisions land
in the given store (memory for ``verify``, a Redis namespace for ``replay``); no outcome is
published anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from portfolio_tx.config import Settings
from portfolio_tx.kafka.clients import located, make_reader
from portfolio_tx.kafka.mark_feed import MarkFeed
from portfolio_tx.store.port import StateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.outcomes import CycleOutcome
from portfolio_tx.worker.book import SessionBook
from portfolio_tx.worker.decide import Verdict
from portfolio_tx.worker.desk import CycleDesk
from portfolio_tx.worker.mark_table import MarkTable
from portfolio_tx.worker.stats import WorkerStats

Progress = Callable[[int, int], None]  # (records read, records in all)
StartOffsets = dict[tuple[str, int], int]  # (topic, partition) -> first offset


@dataclass(slots=True)
class Recomputed:
    """Every decision made, keyed by (session, cycle), and every dead letter's reason."""

    outcomes: dict[tuple[str, int], CycleOutcome] = field(default_factory=dict)
    dead_letters: list[tuple[str, int, int, str]] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    records: int = 0
    stats: WorkerStats = field(default_factory=WorkerStats)


def _read_to_end(consumer: Consumer, starts: list[TopicPartition]) -> list[Message]:
    """Every record from ``starts`` to each partition's end as of now."""
    ends = {}
    for tp in starts:
        low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        ends[(tp.topic, tp.partition)] = high
    pending = {k for k, high in ends.items() if high > 0}
    consumer.assign(starts)
    messages: list[Message] = []
    while pending:
        for message in consumer.consume(1000, timeout=0.5):
            if message.error() is not None:
                pending.discard((message.topic() or "", message.partition() or 0))
                continue  # end of partition (read_committed: the stable end)
            topic, partition, offset = located(message)
            messages.append(message)
            if offset + 1 >= ends[(topic, partition)]:
                pending.discard((topic, partition))
    consumer.unassign()
    return messages


def recompute(
    settings: Settings,
    store: StateStore,
    *,
    sessions: set[str] | None = None,
    start: StartOffsets | None = None,
    progress: Progress | None = None,
) -> Recomputed:
    """Decide every cycle found in the input topics into ``store``; see the module doc."""
    codec = Codec(settings.schema_registry_url)
    topics = settings.topics
    result = Recomputed()
    table = MarkTable(retention_ms=2**62)
    marks = MarkFeed(make_reader(settings, "audit-marks"), topics.marks, codec, table)
    marks.start()
    marks.close()
    reader = make_reader(settings, "audit")
    try:
        metadata = reader.list_topics(topics.cycles, timeout=10)
        partitions = sorted(metadata.topics[topics.cycles].partitions)
        inputs = (topics.fills, topics.pnl, topics.cycles)
        rank = {topics.fills: 0, topics.pnl: 0, topics.cycles: 1}
        for partition in partitions:
            starts = [
                TopicPartition(t, partition, (start or {}).get((t, partition), OFFSET_BEGINNING))
                for t in inputs
            ]
            records = _read_to_end(reader, starts)
            if sessions is not None:
                wanted = {s.encode() for s in sessions}
                records = [m for m in records if m.key() in wanted]
            records.sort(key=lambda m: (m.timestamp()[1], rank[m.topic() or ""], m.offset()))
            _decide_partition(settings, store, codec, table, records, result)
            if progress is not None:
                progress(partition + 1, len(partitions))
    finally:
        reader.close()
    return result


def _decide_partition(
    settings: Settings,
    store: StateStore,
    codec: Codec,
    table: MarkTable,
    records: Iterable[Message],
    result: Recomputed,
) -> None:
    def dead_letter(
        topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, reason: str
    ) -> None:
        result.dead_letters.append((topic, partition, offset, reason))

    def publish(book: SessionBook, verdict: Verdict) -> None:
        result.sessions.add(book.session_id)
        if verdict.record is not None:
            outcome = codec.decode(
                verdict.record,
                topic=settings.topics.commits,
                partition=book.partition,
                offset=None,
                expected=CycleOutcome,
            )
            result.outcomes[(outcome.session_id, outcome.cycle_id)] = outcome

    desk = CycleDesk(settings, store, codec, table, None, result.stats, dead_letter)
    for message in records:
        desk.route(message, 0.0)
        result.records += 1
        if desk.intake.marked:
            desk.decide_ready(0.0, publish, lambda: None)
    # the input ends: every partition is read to its end and time runs on, so every marked
    # cycle still short of its events is INCOMPLETE
    desk.all_caught_up = True
    desk.clock_ms = 2**62
    desk.decide_ready(0.0, publish, lambda: None)
