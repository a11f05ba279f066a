"""worker.offsets.flooding: which batch makes a session a flood (the partitions to overtake)."""

from __future__ import annotations

from confluent_kafka import Message

from portfolio_tx.worker.offsets import FLOODING, flooding


def record(key: str, topic: str = "fills", partition: int = 0, offset: int = 0) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, key=key.encode(), value=b"")


def test_a_batch_of_many_normal_cycles_has_no_flood() -> None:
    batch = [record(f"s{n % 200}", partition=n % 4, offset=n) for n in range(2_000)]
    assert flooding(batch) == []


def test_one_session_with_flooding_records_is_overtaken_on_each_of_its_partitions() -> None:
    batch = [record("wild", offset=n) for n in range(FLOODING - 10)]
    batch += [record("wild", topic="pnl", offset=n) for n in range(10)]
    batch += [record(f"s{n}", partition=1 + n % 3, offset=n) for n in range(300)]
    assert sorted((tp.topic, tp.partition) for tp in flooding(batch)) == [
        ("fills", 0),
        ("pnl", 0),
    ]


def test_one_record_short_of_the_threshold_is_not_a_flood() -> None:
    batch = [record("wild", offset=n) for n in range(FLOODING - 1)]
    batch += [record(f"s{n}", partition=1, offset=n) for n in range(1_000)]
    assert flooding(batch) == []
