"""A flooding session does not hold the other partitions behind it in the consumer's queue
(the broker sends a producer's record batch whole, so one fetch of a flood is ~1 MB of small
records): after a batch in which one session had FLOODING records or more, the next batch
is what the other partitions fetched, and the flood goes on from the record after the last
one read — none skipped, none twice — at most FLOOD_BATCH records a batch. Real broker, the
worker's consumer settings."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Message, Producer, TopicPartition
from pipeline import Pipeline

from portfolio_tx.kafka.clients import consumer_config, make_consumer
from portfolio_tx.worker.offsets import FLOOD_BATCH, FLOODING, ConsumedOffsets, flooding

WILD = 5_000


def batch(read: ConsumedOffsets, deadline_s: float = 20.0) -> list[Message]:
    deadline = time.monotonic() + deadline_s
    while not (found := read.next_batch(2_000)):
        assert time.monotonic() < deadline, "nothing consumed"
    return found


def test_the_other_partitions_overtake_a_flooding_session(pipeline: Pipeline) -> None:
    fills = pipeline.settings.topics.fills
    producer = Producer(
        {"bootstrap.servers": pipeline.settings.bootstrap_servers, "linger.ms": 200}
    )
    for n in range(WILD):  # one producer batch: linger.ms gathers them all
        producer.produce(fills, key=b"wild", value=b"x" * 80 + str(n).encode(), partition=0)
    producer.produce(fills, key=b"calm", value=b"calm", partition=1)
    producer.flush(10)

    consumer = make_consumer(consumer_config(pipeline.settings))
    consumer.assign([TopicPartition(fills, 0, OFFSET_BEGINNING)])
    read = ConsumedOffsets(consumer, None, 10.0)  # type: ignore[arg-type]  # no rewind here
    try:
        first = batch(read)
        assert {m.key() for m in first} == {b"wild"} and FLOODING <= len(first) < WILD
        assert [(tp.topic, tp.partition) for tp in flooding(first)] == [(fills, 0)]
        # the calm partition is fetched now, its record queued behind the flood's batch
        consumer.incremental_assign([TopicPartition(fills, 1, OFFSET_BEGINNING)])
        time.sleep(1.0)
        second = batch(read)
        assert [m.key() for m in second] == [b"calm"], [m.key() for m in second[:3]]
        rest, sizes = [*first], []
        while len(rest) < WILD:
            more = batch(read)
            sizes.append(len(more))
            rest += [m for m in more if m.key() == b"wild"]
        assert [m.offset() for m in rest] == list(range(WILD))
        assert max(sizes) <= FLOOD_BATCH < 2_000, sizes  # a flood's transactions stay short
    finally:
        consumer.close()
