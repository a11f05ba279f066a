"""verify and replay against a real run of the worked example."""

from __future__ import annotations

import io
import json

from pipeline import Pipeline
from test_worker_worked_example import S, publish_worked_example

from portfolio_tx.audit.verify import verify
from portfolio_tx.sim.oracle import Fault
from portfolio_tx.sim.publish import publish
from portfolio_tx.sim.upstream import SimConfig, Upstream, generate
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


def test_verify_exits_zero_on_a_healthy_simulated_run(pipeline: Pipeline) -> None:
    upstream = _simulated(pipeline)
    shown = pipeline.cli("verify")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"{len(upstream.session_ids)} sessions, {len(upstream.cycles)} cycles" in shown.stdout


def _simulated(pipeline: Pipeline) -> Upstream:
    upstream = generate(
        SimConfig(
            sessions=6,
            cycles=6,
            fault_rate=0.2,
            seed=9,
            faults=tuple(f for f in Fault if f is not Fault.EXTRA_FILL),
        )
    )
    publish(upstream, pipeline.publisher, pipeline.settings.topics)
    pipeline.run_worker(until_idle=3.0)
    return upstream


def test_replay_into_a_what_if_namespace_leaves_live_state_and_topic_alone(
    pipeline: Pipeline,
) -> None:
    upstream = _simulated(pipeline)
    sessions = upstream.session_ids
    live_states = {s: pipeline.store.raw_state(s) for s in sessions}
    live_outcomes = sorted(
        (o.session_id, o.cycle_id, o.outcome, o.reason)
        for o in pipeline.outcomes(expected=len(upstream.cycles))
    )
    assert len(live_outcomes) == len(upstream.cycles)

    what_if = "what-if-" + pipeline.settings.redis_namespace
    shown = pipeline.cli("replay", "--into", what_if, "--epsilon", "0")
    try:
        assert shown.returncode == 0, shown.stderr
        assert f"replay into {what_if!r}" in shown.stdout and "committed" in shown.stdout
        replayed = RedisStateStore(pipeline.store.client, namespace=what_if)
        assert all(replayed.load(s).state.version > 0 for s in sessions)
        assert {s: pipeline.store.raw_state(s) for s in sessions} == live_states
        after = sorted(
            (o.session_id, o.cycle_id, o.outcome, o.reason)
            for o in pipeline.outcomes(expected=len(live_outcomes))
        )
        assert after == live_outcomes
    finally:
        for key in pipeline.store.client.scan_iter(match=f"{what_if}:*"):
            pipeline.store.client.delete(key)
