"""Hostile input at a steady rate: the worker never stops, every hostile record lands on the
dead-letter topic with its reason, and the counts match what was injected."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import fastavro
from harness import LONG, FaultRun

from portfolio_tx.kafka.publisher import Publisher
from portfolio_tx.ledger import Side
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import Fill, MarkPrice
from portfolio_tx.wire.records import record_type


def _fill(session: str, cycle: int, n: int, **changes: object) -> Fill:
    values: dict[str, object] = dict(
        event_id=f"hostile-{n}",
        session_id=session,
        cycle_id=cycle,
        symbol="BTC/USDT",
        side=Side.BUY,
        quantity=Decimal("1"),
        price=Decimal("100"),
        fee=Decimal("0"),
        ts=0,
    )
    values.update(changes)
    return Fill(**values)  # type: ignore[arg-type]


def _with_schema(change: Callable[[dict[str, object]], None], record: dict[str, object]) -> bytes:
    """A Fill body written with a tampered copy of the schema, behind the real Fill header:
    what a producer with a broken schema would send."""
    fill = record_type(Fill)
    schema = json.loads(fill.schema_text)
    change(schema)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return fill.header + out.getvalue()


def _field(schema: dict[str, object], name: str) -> dict[str, object]:
    return next(f for f in schema["fields"] if f["name"] == name)  # type: ignore[union-attr,index]


def _raw_fill(n: int, **changes: object) -> dict[str, object]:
    record: dict[str, object] = dict(
        event_id=f"hostile-{n}",
        session_id="hostile",
        cycle_id=1,
        symbol="BTC/USDT",
        side="BUY",
        quantity=Decimal("1"),
        price=Decimal("1"),
        fee=Decimal("0"),
        ts=0,
    )
    record.update(changes)
    return record


def _unknown_side(schema: dict[str, object]) -> None:
    _field(schema, "side")["type"]["symbols"].append("HOLD")  # type: ignore[index]


def _wide_quantity(schema: dict[str, object]) -> None:
    _field(schema, "quantity")["type"]["precision"] = 60  # type: ignore[index]


def hostile(n: int, codec: Codec, fills: str) -> tuple[str, bytes]:
    """The n-th hostile record (key, value) for the fills topic, kinds in turn."""
    kind = n % 7
    session = f"hostile-{n}"
    if kind == 0:
        return session, random.Random(n).randbytes(40)
    if kind == 1:
        whole = codec.encode(_fill(session, 1, n), fills)
        return session, whole[: len(whole) // 2]
    if kind == 2:
        return session, codec.encode(MarkPrice("BTC/USDT", Decimal("1"), 0), "marks")
    if kind == 3:
        return session, _with_schema(_unknown_side, _raw_fill(n, side="HOLD"))
    if kind == 4:
        return session, _with_schema(_wide_quantity, _raw_fill(n, quantity=Decimal(10) ** 45))
    if kind == 5:
        return session, codec.encode(_fill(session, 1, n, quantity=Decimal("-1")), fills)
    return session, codec.encode(_fill(session, 1, n, symbol="X" * 100_000), fills)


def test_hostile_records_are_dead_lettered_one_for_one_and_the_worker_goes_on(
    fault_run: Callable[..., FaultRun],
) -> None:
    run = fault_run(sessions=20 if LONG else 8, cycles=10 if LONG else 6, fault_rate=0.0)
    run.start_worker("w1")
    codec = Codec()
    fills = run.settings.topics.fills
    injected = Counter[int]()
    stop = threading.Event()

    def inject() -> None:
        publisher = Publisher(run.settings.bootstrap_servers, run.settings.topics, codec)
        n = 0
        while not stop.is_set():
            key, value = hostile(n, codec, fills)
            publisher.raw(fills, key, value)
            injected[n % 7] += 1
            n += 1
            time.sleep(0.02)
        publisher.flush()

    injector = threading.Thread(target=inject, daemon=True)
    injector.start()
    run.publish_in_background(rate=300)
    outcomes = run.wait_for_all_outcomes(timeout=300 if LONG else 120)
    stop.set()
    injector.join(timeout=30)

    # genuinely late events: new event ids for cycles that are already decided
    late = Publisher(run.settings.bootstrap_servers, run.settings.topics, codec)
    for i, session in enumerate(run.upstream.session_ids):
        late.publish(_fill(session, 1, 10**6 + i))
    late.flush()
    expected_letters = sum(injected.values()) + len(run.upstream.session_ids)

    letters = []
    deadline = time.monotonic() + 60
    while len(letters) < expected_letters and time.monotonic() < deadline:
        run.assert_alive()
        letters = _dead_letters(run)
        time.sleep(1)
    run.assert_alive()
    reasons = Counter(_kind(dict(m.headers())["error"].decode()) for m in letters)
    assert len(letters) == expected_letters, (reasons, injected)
    assert reasons["late"] == len(run.upstream.session_ids)
    assert reasons["undecodable"] == sum(injected[k] for k in (0, 1, 2, 3, 4))
    assert reasons["invalid"] == injected[5] + injected[6]
    run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()
    print(
        f"hostile records injected {sum(injected.values())}, dead-lettered "
        f"{len(letters) - reasons['late']}, late events {reasons['late']}"
    )


def _kind(error: str) -> str:
    if "already decided" in error:
        return "late"
    if error.startswith("cannot decode"):
        return "undecodable"
    return "invalid"


def _dead_letters(run: FaultRun) -> list:  # type: ignore[type-arg]
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = run.settings.topics.deadletter
    consumer = Consumer(
        {
            "bootstrap.servers": run.settings.bootstrap_servers,
            "group.id": f"dlq-reader-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found, pending = [], set(partitions)
    try:
        while pending:
            for message in consumer.consume(500, timeout=1.0):
                if message.error() is not None:
                    pending.discard(message.partition())
                else:
                    found.append(message)
    finally:
        consumer.close()
    return found
