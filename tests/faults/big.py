"""Large and hostile cycles for the fault scenarios: publishing them, reading what came of
them (record timestamps, dead letters, committed offsets), the worker's RSS."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from harness import FaultRun

from portfolio_tx.kafka.publisher import Publisher
from portfolio_tx.ledger import PnlKind, Side
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.wire.outcomes import CycleOutcome


def murmur2_partition(key: str, partitions: int) -> int:
    """The partition Kafka's Java-compatible murmur2 partitioner picks for ``key``."""
    data = key.encode()
    m, h = 0x5BD1E995, (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = data[whole:]
    if len(rest) >= 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if rest:
        h ^= rest[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def session_on_another_partition(prefix: str, avoid: str, partitions: int) -> str:
    n = 0
    while murmur2_partition(f"{prefix}{n}", partitions) == murmur2_partition(avoid, partitions):
        n += 1
    return f"{prefix}{n}"


def big_fills(session: str, cycle: int, count: int) -> Iterator[Fill]:
    """``count`` fills with UUID event ids, BUY then SELL of the same lot, so the cycle is
    valid (realizes 0, holds nothing at the end) and its lot book stays small."""
    ts = int(time.time() * 1000)
    for n in range(count):
        price = Decimal(100 + (n // 2) % 50)
        yield Fill(
            event_id=str(uuid.uuid4()),
            session_id=session,
            cycle_id=cycle,
            symbol="BTC/USDT",
            side=Side.BUY if n % 2 == 0 else Side.SELL,
            quantity=Decimal("0.001"),
            price=price,
            fee=Decimal("0.0001"),
            ts=ts,
        )


def publish_cycle(
    run: FaultRun,
    session: str,
    cycle: int,
    fills: int,
    *,
    announce: tuple[int, int] | None = None,
    transfer: str | None = None,
    progress: list[int] | None = None,
) -> None:
    """Publish a cycle of ``fills`` big fills (and a TRANSFER), then its marker announcing
    ``announce`` (fills, reports) — the true counts when None; no marker when ``()``."""
    publisher = Publisher(run.settings.bootstrap_servers, run.settings.topics)
    ts = int(time.time() * 1000)
    reports = 0
    if transfer is not None:
        publisher.publish(
            PnlEvent(
                f"{session}-{cycle}-t", session, cycle, PnlKind.TRANSFER, Decimal(transfer), ts
            )
        )
        reports = 1
    for n, fill in enumerate(big_fills(session, cycle, fills)):
        publisher.publish(fill)
        if progress is not None:
            progress[0] = n + 1
    if announce != ():
        counts = announce or (fills, reports)
        publisher.publish(CycleMarker(session, cycle, counts[0], counts[1], ts))
    publisher.flush(120)


class TopicTail:
    """A read_committed reader of ``topic`` from its beginning: each ``read`` returns the
    records committed since the last one (so a test polling a growing topic does not read
    it all again, which on a 2-core box takes CPU from the worker it measures)."""

    def __init__(self, run: FaultRun, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": run.settings.bootstrap_servers,
                "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                "enable.auto.commit": False,
            }
        )
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._assigned = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        self._consumer.assign(self._assigned)

    def read(self) -> list[Message]:
        """The records up to each partition's end as of now: an end-of-partition event, or
        a position at the high watermark the last fetch response gave (librdkafka sends
        one such event per arrival at the end, not one per read)."""
        found: list[Message] = []
        pending = {tp.partition for tp in self._assigned}
        while pending:
            for tp in self._consumer.position(self._assigned):
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if tp.partition in pending and 0 <= high <= max(tp.offset, 0):
                    pending.discard(tp.partition)
            for message in self._consumer.consume(1000, timeout=0.5) if pending else []:
                if message.error() is not None:
                    pending.discard(message.partition())
                else:
                    found.append(message)
        return found

    def close(self) -> None:
        self._consumer.close()


def read_topic(run: FaultRun, topic: str) -> list[Message]:
    """Every committed record of ``topic`` as of now."""
    tail = TopicTail(run, topic)
    try:
        return tail.read()
    finally:
        tail.close()


def stamps(run: FaultRun, topic: str, cls: type) -> dict[tuple[str, int], tuple[int, int]]:
    """(session, cycle) -> (first record timestamp, its value's size) of ``topic``."""
    codec = Codec()
    found: dict[tuple[str, int], tuple[int, int]] = {}
    for message in read_topic(run, topic):
        record = codec.decode(
            message.value(), topic=topic, partition=None, offset=None, expected=cls
        )
        key = (record.session_id, record.cycle_id)
        if key not in found:
            found[key] = (message.timestamp()[1], len(message.value() or b""))
    return found


def outcome_stamps(run: FaultRun) -> dict[tuple[str, int], tuple[int, int]]:
    return stamps(run, run.settings.topics.commits, CycleOutcome)


def marker_stamps(run: FaultRun) -> dict[tuple[str, int], tuple[int, int]]:
    return stamps(run, run.settings.topics.cycles, CycleMarker)


def wait_for_outcome(run: FaultRun, key: tuple[str, int], timeout: float) -> float:
    """Seconds until ``key``'s outcome is visible on the commit topic (read_committed)."""
    started = time.monotonic()
    while key not in outcome_stamps(run):
        run.assert_alive()
        assert time.monotonic() - started < timeout, f"no outcome for {key} in {timeout}s"
        time.sleep(0.2)
    return time.monotonic() - started


def source(letter: Message) -> tuple[int, int]:
    """The (partition, offset) a dead letter was read from, as its headers say."""
    headers = {name: value.decode() for name, value in letter.headers() or []}
    return int(headers["source.partition"]), int(headers["source.offset"])


def committed_offset(run: FaultRun, topic: str, partition: int) -> int:
    consumer = Consumer(
        {"bootstrap.servers": run.settings.bootstrap_servers, "group.id": run.settings.group_id}
    )
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
