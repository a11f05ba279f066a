"""Each discard reason from real Kafka traffic; bad records land on the dead-letter topic."""

from __future__ import annotations

import subprocess
import sys

from pipeline import T0, Pipeline, make_pipeline

from portfolio_tx.kafka.admin import create_topics
from portfolio_tx.wire.topics import TopicNames

MINUTE = 60_000


def _funded(p: Pipeline, session: str) -> None:
    p.pnl(session, 1, "TRANSFER", "100000", event_id=f"{session}-fund")
    p.marker(session, 1, 0, 1, ts=T0)


def test_each_faulty_cycle_gets_its_discard_reason(pipeline: Pipeline) -> None:
    p = pipeline
    p.mark("BTC", "100", ts=T0)
    p.mark("OLD", "5", ts=T0 - 10 * MINUTE)  # older than the max mark age at T0 + 1 min
    for s in ("dup", "missing", "stale", "incomplete", "mismatch", "invalid"):
        _funded(p, s)
    at = T0 + MINUTE
    # duplicated fill: one event id twice counts once, so the cycle still commits
    fid = p.fill("dup", 2, "BTC", "BUY", "1", "100", "0")
    p.fill("dup", 2, "BTC", "BUY", "1", "100", "0", event_id=fid)
    p.marker("dup", 2, 1, 0, ts=at)
    # missing mark: NEW has never been marked
    p.fill("missing", 2, "NEW", "BUY", "1", "10", "0")
    p.marker("missing", 2, 1, 0, ts=at)
    # stale mark: OLD's only mark is 11 minutes before the marker
    p.fill("stale", 2, "OLD", "BUY", "1", "5", "0")
    p.marker("stale", 2, 1, 0, ts=at)
    # incomplete: the marker announces two fills, one arrives
    p.fill("incomplete", 2, "BTC", "BUY", "1", "100", "0")
    p.marker("incomplete", 2, 2, 0, ts=at)
    # count mismatch: two distinct fills, the marker announces one
    p.fill("mismatch", 2, "BTC", "BUY", "1", "100", "0")
    p.fill("mismatch", 2, "BTC", "BUY", "1", "100", "0")
    p.marker("mismatch", 2, 1, 0, ts=at)
    # invalid event: a zero quantity is dead-lettered and sinks its cycle
    p.fill("invalid", 2, "BTC", "BUY", "0", "100", "0")
    p.marker("invalid", 2, 1, 0, ts=at)
    # undecodable records: random bytes and a truncated fill
    p.publisher.raw(p.settings.topics.fills, "garbage", b"\x00\x01not avro at all")
    p.publisher.raw(p.settings.topics.pnl, "garbage", b"\xc3\x01\x00")
    p.flush()

    stats = p.run_worker(until_idle=2.0)

    reasons = {o.session_id: o.reason for o in p.outcomes(expected=12) if o.cycle_id == 2}
    assert reasons == {
        "dup": None,
        "missing": "MISSING_MARK",
        "stale": "STALE_MARK",
        "incomplete": "INCOMPLETE",
        "mismatch": "COUNT_MISMATCH",
        "invalid": "INVALID_EVENT",
    }
    assert stats.duplicates == 1
    letters = p.dead_letters(expected=3)
    assert len(letters) == 3
    for letter in letters:
        headers = dict(letter.headers())
        assert set(headers) == {"source.topic", "source.partition", "source.offset", "error"}
        assert int(headers["source.offset"]) >= 0
    errors = sorted(dict(letter.headers())["error"].decode() for letter in letters)
    assert any("quantity must be positive" in e for e in errors)
    assert sum("cannot decode record" in e for e in errors) == 2
    assert {dict(x.headers())["source.topic"].decode() for x in letters} == {
        p.settings.topics.fills,
        p.settings.topics.pnl,
    }


def test_late_events_are_dead_lettered_and_redeliveries_are_not(pipeline: Pipeline) -> None:
    p = pipeline
    _funded(p, "late")
    p.flush()
    p.run_worker(until_idle=1.0)
    p.pnl("late", 1, "TRANSFER", "5", event_id="late-fund")  # same id: a redelivery
    p.pnl("late", 1, "TRANSFER", "5", event_id="new-id")  # genuinely late
    p.flush()
    stats = p.run_worker(until_idle=1.0)
    assert stats.redelivered == 1
    letters = p.dead_letters(expected=1)
    assert len(letters) == 1
    assert "already decided" in dict(letters[0].headers())["error"].decode()
    assert len(p.outcomes(expected=1)) == 1


def test_worker_refuses_non_copartitioned_topics_with_one_line(
    bootstrap_servers: str, redis_url: str, topic_prefix: str
) -> None:
    topics = TopicNames.with_prefix(topic_prefix)
    create_topics(bootstrap_servers, topics, 2)
    other = TopicNames.with_prefix(topic_prefix + "x.")
    create_topics(bootstrap_servers, other, 3)
    pipeline, cleanup = make_pipeline(bootstrap_servers, redis_url, topic_prefix + "y.")
    try:
        env = pipeline.env(PTX_TOPIC_PREFIX=topic_prefix, PTX_TOPIC_PNL=other.pnl)
        done = subprocess.run(
            [sys.executable, "-m", "portfolio_tx", "worker"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        cleanup()
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("portfolio-tx: topics not co-partitioned:")
    assert f"{other.pnl} has 3" in lines[0] and "Traceback" not in done.stderr
