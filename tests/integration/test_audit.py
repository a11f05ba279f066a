"""verify and replay against a real run of the worked example."""

from __future__ import annotations

import io
import json

from pipeline import Pipeline
from test_worker_worked_example import S, publish_worked_example

from portfolio_tx.audit.replay import replay
from portfolio_tx.audit.verify import verify
from portfolio_tx.store import RedisStateStore


def _decided(pipeline: Pipeline) -> None:
    publish_worked_example(pipeline)
    pipeline.run_worker(max_cycles=6)


def test_verify_finds_no_difference_after_a_healthy_run(pipeline: Pipeline) -> None:
    _decided(pipeline)
    out = io.StringIO()
    assert verify(pipeline.settings, pipeline.store, out=out) == []
    assert "1 sessions, 6 cycles: no differences" in out.getvalue()


def test_verify_names_the_session_and_field_of_a_corrupted_state(pipeline: Pipeline) -> None:
    _decided(pipeline)
    state_key = pipeline.store.keys_for(S)[0]
    document = json.loads(pipeline.store.client.hget(state_key, "doc"))
    document["cash"] = "70000"
    pipeline.store.client.hset(state_key, "doc", json.dumps(document))

    out = io.StringIO()
    differences = verify(pipeline.settings, pipeline.store, out=out)
    assert [(d.session_id, d.field, d.expected, d.actual) for d in differences] == [
        (S, "cash", "70934.6", "70000")
    ]
    assert "cash" in out.getvalue() and S in out.getvalue()
    shown = pipeline.cli("verify")
    assert shown.returncode == 1 and "cash" in shown.stdout


def test_replay_into_a_what_if_namespace_leaves_live_state_and_topic_alone(
    pipeline: Pipeline,
) -> None:
    _decided(pipeline)
    live_state = pipeline.store.raw_state(S)
    live_outcomes = len(pipeline.outcomes(expected=6))

    summary = replay(pipeline.settings, "what-if-" + pipeline.settings.redis_namespace,
                     epsilon=0)
    assert summary.committed == 4 and summary.discarded == {
        "VALIDATION_FAILED": 1, "MISSING_MARK": 1,
    }
    what_if = RedisStateStore(pipeline.store.client, namespace=summary.namespace)
    try:
        assert what_if.load(S).state.equity == pipeline.store.load(S).state.equity
        assert pipeline.store.raw_state(S) == live_state
        assert len(pipeline.outcomes(expected=6)) == live_outcomes == 6
    finally:
        for key in pipeline.store.client.scan_iter(match=f"{summary.namespace}:*"):
            pipeline.store.client.delete(key)
