"""CycleDesk: consumed records in, one decision per cycle out, without Kafka or Redis.

The desk is fed encoded records (the shape a consumer hands it) over the in-memory store,
with the marks in a MarkTable; the figures expected are the contract's worked example
(CONTRACT §2), not a re-run of the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from portfolio_tx.config import Settings
from portfolio_tx.ledger import DiscardReason, PnlKind, Side
from portfolio_tx.store.memory import MemoryStateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.worker.decide import Verdict
from portfolio_tx.worker.desk import CycleDesk
from portfolio_tx.worker.mark_table import MarkTable
from portfolio_tx.worker.stats import WorkerStats

SESSION = "desk-1"
BTC, ETH = "BTC/USDT", "ETH/USDT"
T0 = 1_767_000_000_000
CYCLE_TIMEOUT_MS = 30_000


@dataclass
class Record:
    """What the desk reads of a consumed message."""

    _topic: str
    _partition: int
    _offset: int
    _key: bytes | None
    _value: bytes | None
    _ms: int

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ms)  # TIMESTAMP_CREATE_TIME

    def error(self) -> None:
        return None


@dataclass
class DeskRig:
    """A CycleDesk and what it handed out: outcomes published, records dead-lettered."""

    settings: Settings = field(
        default_factory=lambda: Settings(instance_id="t", cycle_timeout_s=CYCLE_TIMEOUT_MS / 1000)
    )
    store: MemoryStateStore = field(default_factory=MemoryStateStore)
    marks: MarkTable = field(default_factory=MarkTable)
    codec: Codec = field(default_factory=Codec)
    published: list[Verdict] = field(default_factory=list)
    dead_letters: list[tuple[str, int, str]] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    desk: Any = None

    def __post_init__(self) -> None:
        def dead_letter(
            topic: str, partition: int, offset: int, _k: Any, _v: Any, reason: str
        ) -> None:
            self.dead_letters.append((topic, offset, reason))

        self.desk = CycleDesk(
            self.settings, self.store, self.codec, self.marks, None, WorkerStats(), dead_letter
        )

    def read(self, event: Fill | PnlEvent | CycleMarker, ms: int | None = None) -> int:
        topics = self.settings.topics
        topic = {Fill: topics.fills, PnlEvent: topics.pnl, CycleMarker: topics.cycles}[type(event)]
        return self.read_raw(topic, self.codec.encode(event, topic), event.ts if ms is None else ms)

    def read_raw(self, topic: str, value: bytes, ms: int, offset: int | None = None) -> int:
        if offset is None:
            offset = self.offsets.get(topic, 0)
            self.offsets[topic] = offset + 1
        self.desk.route(Record(topic, 0, offset, SESSION.encode(), value, ms), 0.0)
        return offset

    def mark(self, symbol: str, price: str, ts: int) -> None:
        self.marks.add(symbol, Decimal(price), ts)

    def decide(self) -> list[Verdict]:
        before = len(self.published)
        self.desk.decide_ready(0.0, lambda _book, verdict: self.published.append(verdict), noop)
        return self.published[before:]


def noop() -> None:
    return None


class Cycle:
    """Builds one cycle's events with fresh event ids and the marker that closes it."""

    def __init__(self, cycle_id: int, ts: int) -> None:
        self.cycle_id, self.ts = cycle_id, ts
        self.events: list[Fill | PnlEvent] = []

    def fill(self, side: Side, qty: str, price: str, fee: str, symbol: str = BTC) -> Cycle:
        self.events.append(
            Fill(
                f"c{self.cycle_id}-{len(self.events)}",
                SESSION,
                self.cycle_id,
                symbol,
                side,
                Decimal(qty),
                Decimal(price),
                Decimal(fee),
                self.ts,
            )
        )
        return self

    def pnl(self, kind: PnlKind, amount: str) -> Cycle:
        event_id = f"c{self.cycle_id}-{len(self.events)}"
        self.events.append(
            PnlEvent(event_id, SESSION, self.cycle_id, kind, Decimal(amount), self.ts)
        )
        return self

    def marker(self) -> CycleMarker:
        fills = sum(isinstance(e, Fill) for e in self.events)
        return CycleMarker(SESSION, self.cycle_id, fills, len(self.events) - fills, self.ts + 1)

    def read_into(self, desk: DeskRig) -> None:
        for event in self.events:
            desk.read(event)
        desk.read(self.marker())


def outcome(verdict: Verdict) -> str:
    decision = verdict.decision
    assert decision is not None
    return "COMMIT" if decision.committed else str(decision.reason)


def test_the_worked_example_through_the_desk() -> None:
    d = DeskRig()
    BUY, SELL = Side.BUY, Side.SELL
    d.mark(BTC, "50500", T0)
    Cycle(1, T0 + 1000).pnl(PnlKind.TRANSFER, "100000").fill(BUY, "1", "50000", "25").read_into(d)
    [one] = d.decide()
    assert outcome(one) == "COMMIT" and one.decision is not None
    assert one.decision.delta == 0 and one.decision.epsilon == Decimal("1.00")
    assert one.snapshot.state.cash == Decimal("49975")
    assert one.snapshot.state.equity == Decimal("100475")

    d.mark(BTC, "51000", T0 + 1500)
    Cycle(2, T0 + 2000).fill(SELL, "0.4", "52000", "10.4").pnl(PnlKind.REALIZED, "800").read_into(d)
    [two] = d.decide()
    assert outcome(two) == "COMMIT" and two.decision is not None
    assert two.decision.epsilon == Decimal("10.0475")
    state = two.snapshot.state
    assert (state.cash, state.equity, state.realized_pnl, state.fees) == (
        Decimal("70764.6"),
        Decimal("101364.6"),
        Decimal("800"),
        Decimal("35.4"),
    )

    d.mark(BTC, "48000", T0 + 2500)
    Cycle(3, T0 + 3000).fill(SELL, "1.0", "49000", "9.8").pnl(PnlKind.REALIZED, "-500").read_into(d)
    [three] = d.decide()
    assert outcome(three) == "VALIDATION_FAILED" and three.decision is not None
    assert three.decision.delta == Decimal("-100")
    assert three.snapshot.state.cash == Decimal("70764.6")  # unchanged
    assert d.store.load(SESSION).last_decided == 3


def test_a_held_symbol_marked_only_after_the_marker_is_missing_mark() -> None:
    d = DeskRig()
    cycle = Cycle(1, T0).pnl(PnlKind.TRANSFER, "100000").fill(Side.BUY, "1", "50000", "25")
    d.mark(BTC, "50500", T0 + 5)  # after the marker's ts (T0 + 1)
    cycle.read_into(d)
    [verdict] = d.decide()
    assert outcome(verdict) == str(DiscardReason.MISSING_MARK)


def test_a_duplicate_event_id_within_a_cycle_is_applied_once() -> None:
    d = DeskRig()
    d.mark(BTC, "50500", T0)
    cycle = Cycle(1, T0 + 1000).pnl(PnlKind.TRANSFER, "100000").fill(Side.BUY, "1", "50000", "25")
    for event in cycle.events:
        d.read(event)
    d.read(cycle.events[1])  # the fill, redelivered
    d.read(cycle.marker())
    [verdict] = d.decide()
    assert outcome(verdict) == "COMMIT" and verdict.snapshot.state.cash == Decimal("49975")


def test_a_later_cycle_waits_for_an_earlier_one_and_follows_it_when_it_times_out() -> None:
    d = DeskRig()
    d.mark(BTC, "50500", T0)
    one = Cycle(1, T0 + 1000).pnl(PnlKind.TRANSFER, "100000").fill(Side.BUY, "1", "50000", "25")
    d.read(one.events[0])  # its fill never comes
    d.read(one.marker())
    Cycle(2, T0 + 2000).pnl(PnlKind.TRANSFER, "5").read_into(d)
    assert d.decide() == []  # cycle 2 is complete but does not overtake cycle 1
    late = T0 + 1001 + CYCLE_TIMEOUT_MS
    d.read(PnlEvent("c3-0", SESSION, 3, PnlKind.TRANSFER, Decimal(1), late), late)
    d.read(Fill("c3-1", SESSION, 3, BTC, Side.BUY, Decimal(1), Decimal(1), Decimal(0), late), late)
    decided = d.decide()
    assert [(v.cycle_id, outcome(v)) for v in decided] == [(1, "INCOMPLETE"), (2, "COMMIT")]
    assert decided[1].snapshot.state.cash == Decimal("5")  # cycle 1 left no trace


def test_more_events_than_the_marker_announced_is_count_mismatch() -> None:
    d = DeskRig()
    cycle = Cycle(1, T0).pnl(PnlKind.TRANSFER, "100").pnl(PnlKind.TRANSFER, "100")
    d.read(cycle.events[0])
    d.read(cycle.events[1])
    d.read(CycleMarker(SESSION, 1, 0, 1, T0 + 1))
    [verdict] = d.decide()
    assert outcome(verdict) == "COUNT_MISMATCH"


def test_a_redelivered_event_of_a_decided_cycle_is_skipped_and_a_late_one_dead_lettered() -> None:
    d = DeskRig()
    cycle = Cycle(1, T0).pnl(PnlKind.TRANSFER, "100")
    offset = d.read(cycle.events[0])
    d.read(cycle.marker())
    [verdict] = d.decide()
    assert outcome(verdict) == "COMMIT"
    pnl = d.settings.topics.pnl
    d.read_raw(pnl, d.codec.encode(cycle.events[0], pnl), T0, offset=offset)  # re-read
    assert d.dead_letters == []
    late = PnlEvent("c1-late", SESSION, 1, PnlKind.TRANSFER, Decimal(7), T0)
    late_offset = d.read(late)
    [(topic, offset, reason)] = d.dead_letters
    assert (topic, offset) == (pnl, late_offset) and "already decided" in reason
    assert d.decide() == [] and d.store.load(SESSION).state.cash == Decimal("100")


@pytest.mark.parametrize("value", [b"", b"\x00not avro", b"\xc3\x01" + b"\x00" * 8])
def test_an_undecodable_record_is_dead_lettered_and_the_cycle_goes_on(value: bytes) -> None:
    d = DeskRig()
    fills = d.settings.topics.fills
    d.read_raw(fills, value, T0)
    assert [(topic, offset) for topic, offset, _ in d.dead_letters] == [(fills, 0)]
    Cycle(1, T0).pnl(PnlKind.TRANSFER, "100").read_into(d)
    assert [outcome(v) for v in d.decide()] == ["COMMIT"]


def test_an_open_cycle_pins_its_first_offsets_until_it_is_decided() -> None:
    d = DeskRig()
    cycle = Cycle(1, T0).pnl(PnlKind.TRANSFER, "100")
    d.read(cycle.events[0])
    assert d.desk.pinned() == {(d.settings.topics.pnl, 0): 0}
    assert d.desk.open_cycles() == 1
    d.read(cycle.marker())
    d.decide()
    assert d.desk.pinned() == {} and d.desk.open_cycles() == 0


def test_an_epsilon_in_the_settings_is_the_tolerance_the_cycle_is_decided_with() -> None:
    d = DeskRig(settings=Settings(instance_id="t", epsilon=Decimal("0.25")))
    d.mark(BTC, "50500", T0)
    Cycle(1, T0).pnl(PnlKind.TRANSFER, "100000").pnl(PnlKind.REALIZED, "0.5").read_into(d)
    [verdict] = d.decide()  # Δ = −0.5: within the rule's 1.00, not within 0.25
    assert verdict.decision is not None and verdict.decision.epsilon == Decimal("0.25")
    assert outcome(verdict) == "VALIDATION_FAILED"


def test_later_events_of_a_refused_cycle_are_dead_lettered_with_its_reason_undecoded() -> None:
    d = DeskRig(settings=Settings(instance_id="t", max_cycle_events=3))
    cycle = Cycle(1, T0)
    for _ in range(6):
        cycle.pnl(PnlKind.TRANSFER, "1")
    offsets = [d.read(event) for event in cycle.events]
    pnl = d.settings.topics.pnl
    # a record of the refused cycle whose body past its cycle id is garbage: a full decode
    # would dead-letter it as undecodable; it is known by its first fields as the cycle's
    first = cycle.events[0]  # header, event id, session id, cycle id: one length byte each
    head = 10 + 1 + len(first.event_id) + 1 + len(SESSION) + 1
    garbled = d.codec.encode(first, pnl)[:head] + b"\xff" * 3
    garbled_offset = d.read_raw(pnl, garbled, T0)
    assert [offset for _, offset, _ in d.dead_letters] == [3, 4, 5, garbled_offset]
    reasons = {reason for _, _, reason in d.dead_letters}
    assert reasons == {
        "TOO_LARGE: cycle 1 of desk-1 is past its limit (3 events per cycle, "
        "64 unmarked open cycles per session)"
    }
    d.decide()  # the three buffered before the limit are drained, a batch per transaction
    assert sorted(offset for _, offset, _ in d.dead_letters) == sorted([*offsets, garbled_offset])
    d.read(cycle.marker())
    [verdict] = d.decide()
    assert outcome(verdict) == "TOO_LARGE" and d.desk.pinned() == {}


def test_an_unmarked_cycle_past_the_open_cycle_timeout_is_drained_a_batch_per_transaction() -> None:
    d = DeskRig(settings=Settings(instance_id="t", batch_size=2, open_cycle_timeout_s=1.0))
    cycle = Cycle(1, T0)
    for _ in range(5):
        cycle.pnl(PnlKind.TRANSFER, "1")
    for event in cycle.events:
        d.read(event)
    pnl = d.settings.topics.pnl
    # record time moves past the timeout on the markers' partition (another session's cycle)
    d.read(CycleMarker("other", 1, 0, 0, T0 + 5_000))
    d.decide()  # the sweep gives the cycle up; it stays pinned until its records are out
    assert d.dead_letters == [] and d.desk.pinned() == {(pnl, 0): 0} and d.desk.due()
    sent = []
    for _ in range(3):
        d.decide()
        sent.append(len(d.dead_letters))
    assert sent == [2, 4, 5] and d.desk.pinned() == {} and not d.desk.due()
    late = PnlEvent("c1-late", SESSION, 1, PnlKind.TRANSFER, Decimal(1), T0)
    d.read(late)  # a later event of the given-up cycle goes the same way
    assert [offset for _, offset, _ in d.dead_letters] == [0, 1, 2, 3, 4, 5]
    assert {reason.split(":")[0] for _, _, reason in d.dead_letters} == {"INCOMPLETE"}
