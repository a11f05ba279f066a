"""The simulated upstream through the real worker, Kafka and Redis: every verdict, dead letter
and session state is what the simulator expects; ``simulate`` and ``demo`` end to end."""

from __future__ import annotations

import json
from collections import Counter

from pipeline import Pipeline

from portfolio_tx.sim.oracle import COMMIT, Fault
from portfolio_tx.sim.publish import publish, state_differences
from portfolio_tx.sim.upstream import SimConfig, generate

DLQ_HEADERS = {"source.topic", "source.partition", "source.offset", "error"}


def test_the_worker_decides_a_simulated_stream_exactly_as_the_simulator_expects(
    pipeline: Pipeline,
) -> None:
    settings = pipeline.settings
    upstream = generate(
        SimConfig(
            sessions=8,
            cycles=8,
            fault_rate=0.3,
            seed=20,
            cost_basis=settings.cost_basis,
            max_mark_age_s=settings.max_mark_age_s,
        )
    )
    publish(upstream, pipeline.publisher, settings.topics)
    assert set(upstream.faults_injected()) == {fault.value for fault in Fault}

    stats = pipeline.run_worker(until_idle=3.0)

    outcomes = pipeline.outcomes(expected=len(upstream.cycles))
    seen = Counter(o.reason or COMMIT for o in outcomes)
    assert seen == Counter({COMMIT: stats.committed, **stats.discarded})
    dead = pipeline.dead_letters(expected=upstream.dead_letters)
    assert len(dead) == stats.dead_lettered
    assert upstream.check(seen, len(dead)) == []
    # exactly one outcome per published cycle, and the one planned for it (an extra-fill
    # cycle may be decided before its extra fill arrives: see portfolio_tx.sim.oracle)
    per_cycle = Counter((o.session_id, o.cycle_id) for o in outcomes)
    assert per_cycle == Counter((c.session_id, c.cycle_id) for c in upstream.cycles)
    given = {(o.session_id, o.cycle_id): o.reason or COMMIT for o in outcomes}
    for cycle in upstream.cycles:
        assert given[(cycle.session_id, cycle.cycle_id)] in (cycle.outcome, cycle.early_outcome)

    for message in dead:
        headers = dict(message.headers() or [])
        assert headers.keys() >= DLQ_HEADERS
        assert headers["source.topic"].decode() in (settings.topics.fills, settings.topics.pnl)
        assert int(headers["source.partition"]) >= 0 and int(headers["source.offset"]) >= 0
        assert headers["error"] and message.key().decode() in upstream.session_ids

    for session_id in upstream.session_ids:
        stored = pipeline.store.load(session_id).state
        assert state_differences(upstream.states[session_id], stored) == [], session_id


def test_simulate_command_publishes_a_stream_and_says_what_to_expect(pipeline: Pipeline) -> None:
    done = pipeline.cli(
        "simulate",
        "--sessions",
        "3",
        "--cycles",
        "3",
        "--fault-rate",
        "0",
        "--seed",
        "1",
        "--session-prefix",
        "cli-",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["expected"] == {COMMIT: 9} and summary["dead_letters"] == 0
    assert summary["cycles"] == 9 and summary["records"] > 9

    stats = pipeline.run_worker(max_cycles=9, until_idle=10.0)
    assert stats.committed == 9 and not stats.discarded


def test_demo_runs_the_pipeline_end_to_end_and_reports_a_match(pipeline: Pipeline) -> None:
    prefix = pipeline.settings.topics.fills.removesuffix("portfolio.fills")
    done = pipeline.cli(
        "demo",
        "--topic-prefix",
        prefix,
        "--sessions",
        "4",
        "--cycles",
        "4",
        "--fault-rate",
        "0.4",
        "--rate",
        "0",
        "--quiet",
        "--cleanup",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: every outcome, dead letter and state is what the simulator expected" in (
        done.stdout
    )
    assert "worker exit on SIGTERM         0         0   ok" in done.stdout
    assert "deleted the demo's topics" in done.stdout
