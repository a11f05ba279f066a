"""Many sessions across partitions, some markers published before their own fills (another
topic): the worker reaches exactly the state the pure core computes."""

from __future__ import annotations

from pipeline import Pipeline

from portfolio_tx.sim.publish import publish
from portfolio_tx.sim.upstream import Planned, SimConfig, generate


def _markers_first(planned: list[Planned], every: int) -> list[Planned]:
    """Move every ``every``-th cycle's marker in front of that cycle's first event."""
    reordered = list(planned)
    for item in planned:
        if item.topic != "cycles" or item.record is None:
            continue
        marker = item.record
        if marker.cycle_id % every:
            continue
        first = next(
            i
            for i, other in enumerate(reordered)
            if other.key == item.key
            and other.topic in ("fills", "pnl")
            and other.record is not None
            and getattr(other.record, "cycle_id", None) == marker.cycle_id
        )
        reordered.remove(item)
        reordered.insert(first, item)
    return reordered


def test_markers_before_their_fills_across_partitions_reach_the_cores_state(
    pipeline: Pipeline,
) -> None:
    upstream = generate(
        SimConfig(sessions=12, cycles=6, fault_rate=0.0, seed=3, session_prefix="mix-")
    )
    planned = _markers_first(list(upstream), every=2)
    assert sum(1 for p in planned if p.topic == "cycles") == 72
    publish(planned, pipeline.publisher, pipeline.settings.topics)

    stats = pipeline.run_worker(until_idle=3.0)

    assert stats.committed == 72 and not stats.discarded
    outcomes = pipeline.outcomes(expected=72)
    assert len({(o.session_id, o.cycle_id) for o in outcomes}) == len(outcomes) == 72
    assert len({o.session_id for o in outcomes}) == 12
    assert {pipeline.store.load(s).state.version for s in upstream.session_ids} == {6}
    for session in upstream.session_ids:
        assert pipeline.store.load(session).state == upstream.states[session], session
