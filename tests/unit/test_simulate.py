"""The simulated upstream, checked without Kafka: determinism, fault coverage, and a replay
of the planned stream through the pure ledger that must reach the simulator's own verdicts."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from portfolio_tx.errors import ConfigError, DecodeError
from portfolio_tx.ledger import (
    CostBasis,
    Decision,
    PnlKind,
    PortfolioState,
    decide,
    discard,
    open_cycle,
    stage_fill,
    stage_pnl,
)
from portfolio_tx.ledger import DiscardReason as Reason
from portfolio_tx.ledger.validation import reconciles
from portfolio_tx.sim.oracle import COMMIT, Fault
from portfolio_tx.sim.publish import state_differences
from portfolio_tx.sim.upstream import Planned, SimConfig, Upstream, generate
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, MarkPrice, PnlEvent, event_problem

FAULTY = SimConfig(sessions=10, cycles=10, fault_rate=0.4, seed=7)


def planned(config: SimConfig) -> tuple[Upstream, list[Planned]]:
    upstream = generate(config)
    return upstream, list(upstream)


@dataclass
class _Cycle:
    fills: dict[str, Fill] = field(default_factory=dict)
    pnl: dict[str, PnlEvent] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)


@dataclass
class Replay:
    """What a worker that reads the stream in publication order decides, via the ledger."""

    outcomes: dict[tuple[str, int], str] = field(default_factory=dict)
    decisions: list[tuple[Decision, bool]] = field(default_factory=list)  # (d, reconciled)
    states: dict[str, PortfolioState] = field(default_factory=lambda: defaultdict(PortfolioState))
    dead_letters: int = 0


def replay(items: list[Planned], basis: CostBasis, max_age_ms: int) -> Replay:
    result = Replay()
    marks: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    cycles: dict[tuple[str, int], _Cycle] = defaultdict(_Cycle)
    for item in items:
        record = item.record
        if record is None:  # undecodable bytes: dead-lettered, counted by nobody
            result.dead_letters += 1
        elif isinstance(record, MarkPrice):
            marks[record.symbol].append((record.ts, record.price))
        elif isinstance(record, Fill):
            cycle = cycles[(record.session_id, record.cycle_id)]
            if event_problem(record):
                result.dead_letters += 1
                cycle.invalid.add(record.event_id)
            else:
                cycle.fills.setdefault(record.event_id, record)  # a duplicate counts once
        elif isinstance(record, PnlEvent):
            cycles[(record.session_id, record.cycle_id)].pnl.setdefault(record.event_id, record)
        else:
            decide_cycle(
                result,
                record,
                cycles.pop((record.session_id, record.cycle_id), _Cycle()),
                marks,
                basis,
                max_age_ms,
            )
    return result


def decide_cycle(
    result: Replay,
    marker: CycleMarker,
    cycle: _Cycle,
    marks: dict[str, list[tuple[int, Decimal]]],
    basis: CostBasis,
    max_age_ms: int,
) -> None:
    base = result.states[marker.session_id]
    fills = len(cycle.fills) + len(cycle.invalid)
    reason: Reason | None = None
    if fills > marker.fill_count or len(cycle.pnl) > marker.pnl_count:
        reason = Reason.COUNT_MISMATCH
    elif fills < marker.fill_count or len(cycle.pnl) < marker.pnl_count:
        reason = Reason.INCOMPLETE
    elif cycle.invalid:
        reason = Reason.INVALID_EVENT
    if reason is not None:
        result.outcomes[(marker.session_id, marker.cycle_id)] = reason.value
        return
    staged = open_cycle(base, basis)
    for f in cycle.fills.values():
        staged = stage_fill(staged, f.symbol, f.side, f.quantity, f.price, f.fee)
    for event in cycle.pnl.values():
        staged = stage_pnl(staged, event.kind, event.amount)
    valued: dict[str, Decimal] = {}
    for symbol in staged.held_symbols():
        known = [(ts, price) for ts, price in marks[symbol] if ts <= marker.ts]
        if not known:
            reason = Reason.MISSING_MARK
        elif marker.ts - max(known)[0] > max_age_ms:
            reason = Reason.STALE_MARK
        else:
            valued[symbol] = max(known)[1]
        if reason is not None:
            break
    decision = (
        discard(base, reason)
        if reason is not None
        else decide(staged, valued, cycle_id=marker.cycle_id)
    )
    result.decisions.append((decision, reconciles(staged)))
    result.outcomes[(marker.session_id, marker.cycle_id)] = (
        decision.reason.value if decision.reason else COMMIT
    )
    result.states[marker.session_id] = decision.state


# -- determinism and shape ---------------------------------------------------------------


def test_the_same_seed_plans_the_same_stream_and_the_same_expectations() -> None:
    first, items = planned(FAULTY)
    second, again = planned(FAULTY)
    assert items == again
    assert first.expected == second.expected and first.states == second.states
    assert first.cycles == second.cycles


def test_another_seed_plans_another_stream() -> None:
    assert planned(FAULTY)[1] != planned(SimConfig(sessions=10, cycles=10, seed=8))[1]


def test_an_upstream_is_iterated_once() -> None:
    upstream, _ = planned(SimConfig(sessions=1, cycles=1))
    with pytest.raises(RuntimeError):
        list(upstream)


@pytest.mark.parametrize(
    "bad",
    [
        {"sessions": 0},
        {"cycles": 0},
        {"fills_per_cycle": 0},
        {"fault_rate": 1.5},
        {"fault_rate": 0.5, "faults": ()},
        {"max_mark_age_s": 0},
    ],
)
def test_a_config_out_of_range_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**bad)  # type: ignore[arg-type]


def test_within_a_session_each_marker_comes_after_its_cycle_and_cycles_go_in_order() -> None:
    _, items = planned(FAULTY)
    seen_markers: dict[str, int] = {}
    for item in items:
        record = item.record
        if isinstance(record, CycleMarker):
            assert seen_markers.get(record.session_id, 0) == record.cycle_id - 1
            seen_markers[record.session_id] = record.cycle_id
        elif isinstance(record, Fill | PnlEvent):
            assert seen_markers.get(record.session_id, 0) == record.cycle_id - 1
            assert item.key == record.session_id
    assert set(seen_markers.values()) == {FAULTY.cycles}


def test_timestamps_increase_strictly_but_for_resent_fills_and_stale_marks() -> None:
    upstream, items = planned(FAULTY)
    last, sent, stale = 0, set[Fill](), 0
    for item in items:
        record = item.record
        if record is None:
            continue
        if isinstance(record, Fill) and record in sent:  # the duplicate: the same record again
            continue
        if isinstance(record, MarkPrice) and record.ts < last:
            assert last - record.ts == 2 * FAULTY.max_mark_age_s * 1000
            stale += 1
            continue
        assert record.ts > last
        last = record.ts
        if isinstance(record, Fill):
            sent.add(record)
    assert stale == upstream.faults_injected()[Fault.STALE_MARK.value] > 0


def test_marks_are_keyed_by_symbol_positive_and_have_at_most_8_decimals() -> None:
    _, items = planned(FAULTY)
    marks = [item for item in items if isinstance(item.record, MarkPrice)]
    assert marks
    for item in marks:
        assert isinstance(item.record, MarkPrice) and item.key == item.record.symbol
        exponent = item.record.price.as_tuple().exponent
        assert item.record.price > 0 and isinstance(exponent, int) and exponent >= -8


def test_each_session_is_funded_by_a_transfer_in_a_first_cycle_that_commits() -> None:
    upstream, items = planned(FAULTY)
    deposits = {
        item.record.session_id
        for item in items
        if isinstance(item.record, PnlEvent)
        and item.record.cycle_id == 1
        and item.record.kind is PnlKind.TRANSFER
        and item.record.amount > 0
    }
    assert deposits == set(upstream.session_ids)
    assert all(c.outcome == COMMIT for c in upstream.cycles if c.cycle_id == 1)


def test_more_symbols_than_the_named_ones_are_generated() -> None:
    _, items = planned(SimConfig(sessions=5, cycles=5, symbols=14, fault_rate=0))
    symbols = {item.record.symbol for item in items if isinstance(item.record, Fill)}
    assert any(symbol.startswith("T0") for symbol in symbols)


# -- faults and the expectations ---------------------------------------------------------


def test_every_fault_kind_appears_given_enough_faulty_cycles() -> None:
    upstream, _ = planned(FAULTY)
    assert set(upstream.faults_injected()) == {fault.value for fault in Fault}
    # TOO_LARGE needs a cycle past a size limit: tests/faults/test_large_cycles.py makes those
    simulated = {reason.value for reason in Reason if reason is not Reason.TOO_LARGE}
    assert set(upstream.expected) == {COMMIT, *simulated}


def test_without_faults_every_cycle_is_expected_to_commit() -> None:
    upstream, items = planned(SimConfig(sessions=4, cycles=6, fault_rate=0))
    assert upstream.expected == Counter({COMMIT: 24}) and upstream.dead_letters == 0
    assert all(item.record is not None for item in items)


def test_the_expected_counts_add_up() -> None:
    upstream, items = planned(FAULTY)
    assert sum(upstream.expected.values()) == len(upstream.cycles) == 100
    assert upstream.expected == Counter(c.outcome for c in upstream.cycles)
    invalid = sum(1 for i in items if isinstance(i.record, Fill) and event_problem(i.record))
    malformed = sum(1 for i in items if i.raw is not None)
    assert upstream.dead_letters == invalid + malformed > 0
    assert upstream.duplicates == upstream.faults_injected()[Fault.DUPLICATE_FILL.value]


def test_malformed_records_do_not_decode_and_go_to_the_fills_topic_with_the_session_key() -> None:
    upstream, items = planned(FAULTY)
    raw = [item for item in items if item.raw is not None]
    assert raw and all(item.topic == "fills" for item in raw)
    assert {item.key for item in raw} <= set(upstream.session_ids)
    for item in raw:
        with pytest.raises(DecodeError):
            Codec().decode(item.raw, topic="fills", partition=0, offset=0)


def test_a_discarded_cycle_is_corrected_under_the_next_cycle_id() -> None:
    upstream, _ = planned(FAULTY)
    by_id = {(c.session_id, c.cycle_id): c for c in upstream.cycles}
    corrected = [c for c in upstream.cycles if c.correction_of is not None]
    assert corrected
    for c in corrected:
        assert c.correction_of == c.cycle_id - 1 and c.fault is None
        assert by_id[(c.session_id, c.cycle_id - 1)].outcome != COMMIT


# -- the replay through the ledger -------------------------------------------------------


@pytest.mark.parametrize("basis", [CostBasis.FIFO, CostBasis.AVERAGE])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replaying_the_stream_through_the_ledger_reaches_the_simulators_verdicts(
    basis: CostBasis, seed: int
) -> None:
    config = SimConfig(
        sessions=8,
        cycles=12,
        fault_rate=0.3,
        seed=seed,
        cost_basis=basis,
        max_mark_age_s=60,
        symbols=7,
    )
    upstream, items = planned(config)
    result = replay(items, basis, max_age_ms=60_000)
    assert result.outcomes == {(c.session_id, c.cycle_id): c.outcome for c in upstream.cycles}
    assert result.dead_letters == upstream.dead_letters
    for session_id in upstream.session_ids:
        assert state_differences(upstream.states[session_id], result.states[session_id]) == []


def test_reconciling_cycles_really_reconcile_to_a_delta_of_exactly_zero() -> None:
    upstream, items = planned(SimConfig(sessions=8, cycles=12, fault_rate=0.3, seed=4))
    result = replay(items, CostBasis.FIFO, max_age_ms=300_000)
    committed = [(d, ok) for d, ok in result.decisions if d.committed]
    assert len(committed) == upstream.expected[COMMIT]
    assert all(d.delta == 0 and ok for d, ok in committed)
    failed = [d for d, _ in result.decisions if d.reason is Reason.VALIDATION_FAILED]
    assert failed and all(abs(d.delta) > 10 * d.epsilon for d in failed)


def test_state_differences_names_what_differs() -> None:
    same = PortfolioState(cash=Decimal("1.0"))
    assert state_differences(same, PortfolioState(cash=Decimal("1"))) == []
    found = state_differences(same, PortfolioState(cash=Decimal("2"), version=1))
    assert [line.split(":")[0] for line in found] == ["cash", "version"]


def test_check_accepts_the_expectation_and_names_each_difference() -> None:
    upstream, _ = planned(FAULTY)
    seen = dict(upstream.expected)
    assert upstream.check(seen, upstream.dead_letters) == []
    assert upstream.check(
        {**seen, COMMIT: seen[COMMIT] - 1, "INCOMPLETE": seen["INCOMPLETE"] + 1},
        upstream.dead_letters,
    ) == [
        f"COMMIT: expected {seen[COMMIT]}, saw {seen[COMMIT] - 1}",
        f"INCOMPLETE: expected {seen['INCOMPLETE']}, saw {seen['INCOMPLETE'] + 1}",
    ]
    assert upstream.check(seen, upstream.dead_letters - 1) == [
        f"dead letters: expected {upstream.dead_letters}, saw {upstream.dead_letters - 1}"
    ]


def test_check_tolerates_an_extra_fill_cycle_decided_before_its_extra_fill_arrived() -> None:
    upstream, _ = planned(FAULTY)
    seen = dict(upstream.expected)
    seen["COUNT_MISMATCH"] -= 1
    seen["VALIDATION_FAILED"] += 1
    assert upstream.check(seen, upstream.dead_letters + 1) == []
    seen[COMMIT] += 1
    seen["VALIDATION_FAILED"] -= 1
    assert upstream.check(seen, upstream.dead_letters + 1) != []


def test_an_extra_fill_comes_last_and_deciding_without_it_never_commits() -> None:
    upstream, items = planned(FAULTY)
    extra = {
        item.record.event_id
        for item in items
        if isinstance(item.record, Fill) and item.record.event_id.endswith("-f98")
    }
    assert len(extra) == upstream.faults_injected()[Fault.EXTRA_FILL.value] > 0
    for n, item in enumerate(items):
        if isinstance(item.record, Fill) and item.record.event_id in extra:
            rest = [
                i.record
                for i in items[n + 1 :]
                if getattr(i.record, "session_id", None) == item.record.session_id
            ]
            assert isinstance(rest[0], CycleMarker)  # the last record before the marker
    early = replay(
        [i for i in items if getattr(i.record, "event_id", None) not in extra],
        CostBasis.FIFO,
        max_age_ms=300_000,
    )
    for cycle in upstream.cycles:
        want = cycle.early_outcome or cycle.outcome
        assert early.outcomes[(cycle.session_id, cycle.cycle_id)] == want
    for session_id in upstream.session_ids:
        assert state_differences(upstream.states[session_id], early.states[session_id]) == []
