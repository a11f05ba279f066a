"""The heads of a commit partition are read from the outcome records' headers, without
decoding them, and agree with what the records say; an older writer's record (no header)
is decoded instead."""

from __future__ import annotations

from dataclasses import replace

from confluent_kafka import Producer
from pipeline import Pipeline
from test_worker_worked_example import S, publish_worked_example

from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.wire.outcomes import CycleOutcome
from portfolio_tx.worker.heads import HEAD_HEADER, Head, head_from_headers
from portfolio_tx.worker.restore import read_heads


def test_heads_come_from_the_headers_and_agree_with_the_records(pipeline: Pipeline) -> None:
    publish_worked_example(pipeline)
    pipeline.run_worker(until_idle=3.0)
    records = pipeline.read(pipeline.settings.topics.commits, expected=6)
    assert len(records) == 6
    for message in records:
        outcome = pipeline.codec.decode(
            message.value(), topic="commits", partition=None, offset=None, expected=CycleOutcome
        )
        assert head_from_headers(message.headers()) == Head(outcome.cycle_id, outcome.version)
    partition = records[0].partition()
    # the worked example ends at cycle 6, version 4 (cycles 3 and 5 were discarded)
    assert records[-1].headers() == [(HEAD_HEADER, b"6:4")]

    # an older writer's outcome for another session of the same partition: no header
    other = "old-writer"
    last = pipeline.codec.decode(
        records[-1].value(), topic="commits", partition=None, offset=None, expected=CycleOutcome
    )
    older = replace(last, session_id=other, cycle_id=9, version=7)
    topic = pipeline.settings.topics.commits
    producer = Producer({"bootstrap.servers": pipeline.settings.bootstrap_servers})
    producer.produce(topic, key=other.encode(), value=pipeline.codec.encode(older, topic),
                     partition=partition)
    assert producer.flush(30) == 0
    log = CommitLog.open(pipeline.settings, "test-heads", wait_s=30)
    try:
        heads = read_heads(log, partition)
    finally:
        log.close()
    assert heads == {S: Head(6, 4), other: Head(9, 7)}


def test_a_header_that_is_not_a_head_is_ignored() -> None:
    assert head_from_headers(None) is None
    assert head_from_headers([("other", b"1:2")]) is None
    assert head_from_headers([(HEAD_HEADER, b"x:2")]) is None
    assert head_from_headers([(HEAD_HEADER, b"\xff\xfe")]) is None
    assert head_from_headers([(HEAD_HEADER, b"12:3")]) == Head(12, 3)
    assert head_from_headers({HEAD_HEADER: "4:1"}) == Head(4, 1)
