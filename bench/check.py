"""Correctness of every run, so that a fast wrong answer cannot pass.

* exactly one outcome per cycle: the count equals the workload's cycles and no (session,
  cycle) appears twice;
* the same decisions: outcomes per reason equal the model's (COMMIT / VALIDATION_FAILED);
* a sample of session states equals the model's final state, field for field (Decimal
  values compared exactly): read from Redis for our worker, rebuilt from the last COMMIT
  outcome (``state_from_outcome``) for the peer, which keeps its state elsewhere.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from workload import Workload

from portfolio_tx.ledger import PortfolioState
from portfolio_tx.store import RedisStateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.outcomes import CycleOutcome, state_from_outcome

SAMPLE = 50


def decode(records: Iterable[tuple[bytes | None, bytes]], topic: str) -> list[CycleOutcome]:
    codec = Codec()
    return [
        codec.decode(value, topic=topic, partition=None, offset=None, expected=CycleOutcome)
        for _, value in records
    ]


def sample_sessions(workload: Workload, size: int = SAMPLE) -> list[str]:
    sessions = sorted(workload.states)
    return sorted(random.Random(1).sample(sessions, min(size, len(sessions))))


def same_state(found: PortfolioState, model: PortfolioState) -> bool:
    return (
        found.cash == model.cash
        and found.realized_pnl == model.realized_pnl
        and found.fees == model.fees
        and found.equity == model.equity
        and dict(found.lots) == dict(model.lots)
        and dict(found.marks) == dict(model.marks)
        and found.last_cycle == model.last_cycle
        and found.version == model.version
    )


def check_outcomes(workload: Workload, outcomes: list[CycleOutcome]) -> list[str]:
    problems = []
    if len(outcomes) != workload.cycles:
        problems.append(f"{len(outcomes)} outcomes for {workload.cycles} cycles")
    seen = Counter((o.session_id, o.cycle_id) for o in outcomes)
    twice = sum(1 for count in seen.values() if count > 1)
    if twice:
        problems.append(f"{twice} cycles have more than one outcome")
    reasons = Counter(o.reason or "COMMIT" for o in outcomes)
    if reasons != workload.outcomes:
        problems.append(f"outcomes {dict(reasons)} != model {dict(workload.outcomes)}")
    return problems


def check_redis(workload: Workload, store: RedisStateStore) -> list[str]:
    bad = [s for s in sample_sessions(workload)
           if not same_state(store.load(s).state, workload.state(s))]
    return [f"{len(bad)} sampled Redis states differ from the model, e.g. {bad[0]}"] if bad else []


def check_outcome_states(workload: Workload, outcomes: list[CycleOutcome]) -> list[str]:
    last: dict[str, CycleOutcome] = {}
    for outcome in outcomes:
        if outcome.committed:
            known = last.get(outcome.session_id)
            if known is None or known.cycle_id < outcome.cycle_id:
                last[outcome.session_id] = outcome
    bad = []
    for session in sample_sessions(workload):
        model = workload.state(session)
        found = last.get(session)
        state = state_from_outcome(found) if found is not None else PortfolioState()
        if not same_state(state, model):
            bad.append(session)
    if not bad:
        return []
    return [f"{len(bad)} sampled outcome states differ from the model, e.g. {bad[0]}"]
