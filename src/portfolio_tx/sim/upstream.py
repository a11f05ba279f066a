"""A synthetic upstream: trading sessions publishing cycles, with faults injected on purpose.

Pure, no I/O: ``generate(config)`` returns an ``Upstream`` whose iteration yields the records
to publish, in order, each with its logical topic (a ``TopicNames`` field) and key. Sessions
interleave; within a session a cycle is its marks, fills and P&L reports in random order, then
its marker. Timestamps grow by ``step_ms`` per record; marks walk randomly per symbol.

The generator is its own oracle: ``content`` draws and stages each cycle and builds its fault
in, ``oracle`` decides it on the model and says what the worker must make of it (the faults
and their outcomes are listed there). Once the iteration is exhausted, ``cycles``,
``expected``, ``dead_letters``, ``duplicates`` and ``states`` hold the expectation, and
``check`` compares a worker's counts against it.

With ``corrections`` a session republishes a discarded cycle's legitimate content (the same
fill event ids, fresh reports) under its next cycle id, as CONTRACT §2 describes.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from portfolio_tx.errors import ConfigError
from portfolio_tx.ledger import CostBasis, PortfolioState
from portfolio_tx.sim.content import Content, Market
from portfolio_tx.sim.oracle import COMMIT, Fault, Oracle, PlannedCycle, expect
from portfolio_tx.wire.events import CycleMarker, Fill, MarkPrice, PnlEvent

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch ms: the default start of the clock


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate. ``max_mark_age_s`` and ``cost_basis`` must match the worker's."""

    sessions: int = 20
    cycles: int = 10
    symbols: int = 5
    fills_per_cycle: int = 4
    fault_rate: float = 0.1
    faults: tuple[Fault, ...] = tuple(Fault)
    seed: int = 0
    cost_basis: CostBasis = CostBasis.FIFO
    max_mark_age_s: float = 300.0
    start_ms: int = T0
    step_ms: int = 10
    session_prefix: str = "sim-"
    corrections: bool = True

    def __post_init__(self) -> None:
        counts = (self.sessions, self.cycles, self.symbols, self.fills_per_cycle, self.step_ms)
        if min(counts) < 1:
            raise ConfigError("sessions, cycles, symbols, fills per cycle and step must be ≥ 1")
        if not 0 <= self.fault_rate <= 1 or (self.fault_rate > 0 and not self.faults):
            raise ConfigError(f"fault rate {self.fault_rate} must be in [0, 1], with faults")
        if self.max_mark_age_s <= 0:
            raise ConfigError("max mark age must be positive")


@dataclass(frozen=True, slots=True)
class Planned:
    """One record to publish: ``record`` encoded, or ``raw`` bytes as they are."""

    topic: str  # "fills", "pnl", "cycles" or "marks": a field of TopicNames
    key: str
    record: Fill | PnlEvent | CycleMarker | MarkPrice | None = None
    raw: bytes | None = None


def generate(config: SimConfig) -> Upstream:
    """The planned stream of ``config``: iterate it once, then read its expectations."""
    return Upstream(config)


class Upstream:
    """The planned stream of ``config``; iterate it once. See the module docstring."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.oracle = Oracle()
        self._rng = random.Random(config.seed)
        self._market = Market(self._rng, config.symbols, config.fills_per_cycle, config.cost_basis)
        self._marks: dict[str, Decimal] = {}  # the last published mark per symbol
        self._now = config.start_ms
        self._faults = self._rng.randrange(len(config.faults)) if config.faults else 0
        self._resend: dict[str, Fill] = {}  # a fill to send twice, as it was sent first
        self._iterated = False

    @property
    def session_ids(self) -> list[str]:
        return [f"{self.config.session_prefix}{n:03d}" for n in range(1, self.config.sessions + 1)]

    # -- the expectation, held by the oracle -----------------------------------------------

    @property
    def cycles(self) -> list[PlannedCycle]:
        return self.oracle.cycles

    @property
    def expected(self) -> Counter[str]:
        return self.oracle.expected

    @property
    def dead_letters(self) -> int:
        return self.oracle.dead_letters

    @property
    def duplicates(self) -> int:
        return self.oracle.duplicates

    @property
    def states(self) -> dict[str, PortfolioState]:
        return self.oracle.states

    def faults_injected(self) -> Counter[str]:
        return self.oracle.faults_injected()

    def bounds(self) -> dict[str, tuple[int, int]]:
        """See ``Oracle.bounds``."""
        return self.oracle.bounds()

    def dead_letter_bounds(self) -> tuple[int, int]:
        """See ``Oracle.dead_letter_bounds``."""
        return self.oracle.dead_letter_bounds()

    def check(self, seen: Mapping[str, int], dead_letters: int) -> list[str]:
        """See ``Oracle.check``."""
        return self.oracle.check(seen, dead_letters)

    # -- the stream ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Planned]:
        if self._iterated:
            raise RuntimeError("an Upstream is iterated once; generate() another")
        self._iterated = True
        sessions = [self._session(session_id) for session_id in self.session_ids]
        while sessions:
            index = self._rng.randrange(len(sessions))
            item = next(sessions[index], None)
            if item is None:
                sessions.pop(index)
            else:
                yield item

    def _tick(self) -> int:
        self._now += self.config.step_ms
        return self._now

    def _session(self, session_id: str) -> Iterator[Planned]:
        state = self.oracle.open_session(session_id)
        retry: Content | None = None
        for cycle_id in range(1, self.config.cycles + 1):
            content, fault = retry or self._market.plan(session_id, cycle_id, state), None
            if retry is None and cycle_id > 1 and self._rng.random() < self.config.fault_rate:
                fault = self.config.faults[self._faults % len(self.config.faults)]
                self._faults += 1
            if fault in (Fault.MISSING_MARK, Fault.STALE_MARK):
                content = content._replace(
                    fills=(*content.fills, self._market.listing(session_id, cycle_id, state))
                )
            items, counts, staged, unmarked = self._market.build(
                session_id, cycle_id, state, content, fault
            )
            for kind, value in items:
                yield self._emit(session_id, kind, value)
            marker = CycleMarker(session_id, cycle_id, *counts, self._tick())
            cycle = expect(session_id, cycle_id, fault, content.origin, counts)
            state = self.oracle.settle(cycle, staged, self._marks, unmarked)
            committed = cycle.outcome == COMMIT
            retry = None if committed or not self.config.corrections else content
            yield Planned("cycles", session_id, marker)

    def _emit(self, session_id: str, kind: str, value: object) -> Planned:
        if kind == "raw":
            assert isinstance(value, bytes)
            return Planned("fills", session_id, raw=value)
        if kind in ("mark", "stale"):
            assert isinstance(value, str)
            return self._mark(value, stale=kind == "stale")
        if isinstance(value, PnlEvent):
            return Planned("pnl", session_id, replace(value, ts=self._tick()))
        assert isinstance(value, Fill)
        if kind == "again":  # the very record sent before, timestamp included
            return Planned("fills", session_id, self._resend.pop(value.event_id))
        fill = replace(value, ts=self._tick())
        if kind == "first":
            self._resend[value.event_id] = fill
        return Planned("fills", session_id, fill)

    def _mark(self, symbol: str, *, stale: bool) -> Planned:
        if stale:  # never marked since: the marker finds only this one, too old
            ts = self._now - 2 * int(self.config.max_mark_age_s * 1000)
        else:
            ts = self._tick()
            self._marks[symbol] = self._market.walk(symbol)
        return Planned("marks", symbol, MarkPrice(symbol, self._market.prices[symbol], ts))
