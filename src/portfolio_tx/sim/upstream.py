"""A synthetic upstream: trading sessions publishing cycles, with faults injected on purpose.

Pure, no I/O: ``generate(config)`` returns an ``Upstream`` whose iteration yields the records
to publish, in order, each with its logical topic (a ``TopicNames`` field) and key. Sessions
interleave; within a session a cycle is its marks, fills and P&L reports in random order, then
its marker. Timestamps grow by ``step_ms`` per record; marks walk randomly per symbol.

The generator is its own oracle. Each session's committed state is modelled with the ledger
itself (``open_cycle`` → ``stage_*`` → ``decide``), so the REALIZED reports are exactly what
the worker will realize, and the model advances only on the cycles the worker must commit.
Once the iteration is exhausted, ``cycles`` lists each published cycle with the outcome it
must get, ``expected`` counts those outcomes, ``dead_letters`` counts the records the worker
must dead-letter, and ``states`` holds every session's final committed ``PortfolioState``.

Faults, one per faulty cycle, kinds taken round-robin (the first cycle, which funds the
session with a TRANSFER, is never faulty):

    wrong-realized   a REALIZED report off by 20-100 ε                VALIDATION_FAILED
    missing-mark     a BUY of a new symbol that was never marked       MISSING_MARK
    stale-mark       a new symbol whose only mark is 2 max-ages old    STALE_MARK
    missing-fill     the marker announces one fill more than sent      INCOMPLETE
    duplicate-fill   one fill sent twice with the same event id        COMMIT (it counts once)
    extra-fill       a distinct fill beyond the marker's count         COUNT_MISMATCH (see below)
    malformed        one fill replaced by random bytes                 INCOMPLETE, 1 dead letter
    invalid-fill     one fill with a non-positive quantity             INVALID_EVENT, 1 dead letter

An extra fill is the one fault a worker cannot always see: fills and markers travel on
different topics, and a worker that has the marker and the announced number of fills decides
before the extra one arrives, which then is a late event. The extra fill is therefore sent
last, after the cycle's reports, and the reports are wrong as well, so that early decision is
VALIDATION_FAILED, never a commit. ``check`` tolerates exactly that race.

With ``corrections`` a session republishes a discarded cycle's legitimate content (the same
fill event ids, fresh reports) under its next cycle id, as CONTRACT §2 describes.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import NamedTuple

from portfolio_tx import ledger
from portfolio_tx.errors import ConfigError
from portfolio_tx.ledger import ZERO, CostBasis, D, PnlKind, PortfolioState, Side, StagedCycle
from portfolio_tx.ledger.lots import lots_quantity
from portfolio_tx.ledger.money import exact
from portfolio_tx.wire.events import CycleMarker, Fill, MarkPrice, PnlEvent

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch ms: the default start of the clock
COMMIT = ledger.OutcomeKind.COMMIT.value
VALIDATION_FAILED = ledger.DiscardReason.VALIDATION_FAILED.value
PRICE_QUANTUM, QUANTITY_QUANTUM, CENT = Decimal("1e-8"), Decimal("1e-6"), Decimal("0.01")
_MAJORS = (
    ("BTC", "60000"),
    ("ETH", "3000"),
    ("SOL", "150"),
    ("BNB", "600"),
    ("XRP", "0.6"),
    ("ADA", "0.45"),
    ("DOGE", "0.15"),
    ("AVAX", "35"),
    ("DOT", "7"),
    ("LINK", "15"),
)


class Fault(StrEnum):
    """A kind of fault the simulator injects (the module docstring says what each does)."""

    WRONG_REALIZED = "wrong-realized"
    MISSING_MARK = "missing-mark"
    STALE_MARK = "stale-mark"
    MISSING_FILL = "missing-fill"
    DUPLICATE_FILL = "duplicate-fill"
    EXTRA_FILL = "extra-fill"
    MALFORMED = "malformed"
    INVALID_FILL = "invalid-fill"


OUTCOME_OF = {
    Fault.WRONG_REALIZED: VALIDATION_FAILED,
    Fault.MISSING_MARK: "MISSING_MARK",
    Fault.STALE_MARK: "STALE_MARK",
    Fault.MISSING_FILL: "INCOMPLETE",
    Fault.DUPLICATE_FILL: COMMIT,
    Fault.EXTRA_FILL: "COUNT_MISMATCH",
    Fault.MALFORMED: "INCOMPLETE",
    Fault.INVALID_FILL: "INVALID_EVENT",
}
DEAD_LETTERS_OF = {Fault.MALFORMED: 1, Fault.INVALID_FILL: 1}


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


@dataclass(frozen=True, slots=True)
class PlannedCycle:
    """A published cycle, the outcome the worker must give it (COMMIT or the reason), the
    one it may give instead when it decides early (extra-fill) and how many of the cycle's
    records it may then dead-letter as late."""

    session_id: str
    cycle_id: int
    fault: Fault | None
    outcome: str
    correction_of: int | None = None
    early_outcome: str | None = None
    may_be_late: int = 0


class _Content(NamedTuple):
    """A cycle's legitimate fills and cash events: what a correction republishes."""

    fills: tuple[Fill, ...]
    cash: tuple[tuple[PnlKind, Decimal, str | None], ...]
    origin: int


def _decimal(value: Decimal | float, quantum: Decimal = PRICE_QUANTUM) -> Decimal:
    """``value`` cut to ``quantum``, never below it: prices and quantities stay positive."""
    return max(quantum, D(value).quantize(quantum, rounding=ROUND_DOWN))


def generate(config: SimConfig) -> Upstream:
    """The planned stream of ``config``: iterate it once, then read its expectations."""
    return Upstream(config)


class Upstream:
    """The planned stream of ``config``; iterate it once. See the module docstring."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.cycles: list[PlannedCycle] = []
        self.expected: Counter[str] = Counter()
        self.dead_letters = 0
        self.duplicates = 0  # fills sent twice: the worker counts each once
        self.states: dict[str, PortfolioState] = {}
        self._rng = random.Random(config.seed)
        self._prices = {f"{base}/USDT": D(price) for base, price in _MAJORS[: config.symbols]}
        for n in range(len(self._prices), config.symbols):
            self._prices[f"T{n + 1:03d}/USDT"] = _decimal(self._rng.uniform(0.5, 500))
        self._symbols = tuple(self._prices)
        self._marks: dict[str, Decimal] = {}  # the last published mark per symbol
        self._now = config.start_ms
        self._faults = self._rng.randrange(len(config.faults)) if config.faults else 0
        self._listings = 0
        self._resend: dict[str, Fill] = {}  # a fill to send twice, as it was sent first
        self._iterated = False

    @property
    def session_ids(self) -> list[str]:
        return [f"{self.config.session_prefix}{n:03d}" for n in range(1, self.config.sessions + 1)]

    def faults_injected(self) -> Counter[str]:
        return Counter(c.fault.value for c in self.cycles if c.fault is not None)

    def bounds(self) -> dict[str, tuple[int, int]]:
        """Per outcome, the fewest and the most cycles the worker may give it: ``expected``,
        give or take the extra-fill cycles it may decide early."""
        early = Counter(c.early_outcome for c in self.cycles if c.early_outcome)
        moved = Counter(c.outcome for c in self.cycles if c.early_outcome)
        return {
            outcome: (
                self.expected[outcome] - moved[outcome],
                self.expected[outcome] + early[outcome],
            )
            for outcome in sorted(set(self.expected) | set(early))
        }

    def dead_letter_bounds(self) -> tuple[int, int]:
        """The fewest and the most dead letters: early decisions make some events late."""
        return self.dead_letters, self.dead_letters + sum(c.may_be_late for c in self.cycles)

    def check(self, seen: Mapping[str, int], dead_letters: int) -> list[str]:
        """How outcome counts and a dead-letter count differ from the expectation, within
        ``bounds`` and ``dead_letter_bounds``; empty when they match."""
        bounds = self.bounds()
        found = [
            f"{outcome}: expected {self.expected[outcome]}, saw {seen.get(outcome, 0)}"
            for outcome, (low, high) in bounds.items()
            if not low <= seen.get(outcome, 0) <= high
        ]
        found += [
            f"{outcome}: not expected, saw {n}"
            for outcome, n in seen.items()
            if n and outcome not in bounds
        ]
        if sum(seen.values()) != len(self.cycles):
            found.append(f"{sum(seen.values())} outcomes for {len(self.cycles)} cycles")
        low, high = self.dead_letter_bounds()
        if not low <= dead_letters <= high:
            found.append(f"dead letters: expected {self.dead_letters}, saw {dead_letters}")
        return found

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

    # -- a session -------------------------------------------------------------------------

    def _session(self, session_id: str) -> Iterator[Planned]:
        state = self.states[session_id] = PortfolioState()
        retry: _Content | None = None
        for cycle_id in range(1, self.config.cycles + 1):
            content, fault = retry or self._plan(session_id, cycle_id, state), None
            if retry is None and cycle_id > 1 and self._rng.random() < self.config.fault_rate:
                fault = self.config.faults[self._faults % len(self.config.faults)]
                self._faults += 1
            if fault in (Fault.MISSING_MARK, Fault.STALE_MARK):
                content = content._replace(
                    fills=(*content.fills, self._listing(session_id, cycle_id, state))
                )
            items, counts, staged, unmarked = self._build(
                session_id, cycle_id, state, content, fault
            )
            for kind, value in items:
                yield self._emit(session_id, kind, value)
            marker = CycleMarker(session_id, cycle_id, *counts, self._tick())
            extra = fault is Fault.EXTRA_FILL
            cycle = PlannedCycle(
                session_id,
                cycle_id,
                fault,
                OUTCOME_OF[fault] if fault else COMMIT,
                content.origin if content.origin != cycle_id else None,
                VALIDATION_FAILED if extra else None,
                counts[1] + 1 if extra else 0,
            )
            self._settle(cycle, self._decide(staged, cycle_id, unmarked))
            committed = cycle.outcome == COMMIT
            retry = None if committed or not self.config.corrections else content
            state = self.states[session_id]
            yield Planned("cycles", session_id, marker)

    def _settle(self, cycle: PlannedCycle, decision: ledger.Decision) -> None:
        """Count the cycle; the model advances only when the worker must commit it."""
        decided = decision.reason.value if decision.reason else COMMIT
        if decided != cycle.outcome and cycle.outcome in (COMMIT, VALIDATION_FAILED):
            raise AssertionError(f"simulator bug: {cycle} is {decided} on the model")
        self.expected[cycle.outcome] += 1
        if cycle.fault is not None:
            self.dead_letters += DEAD_LETTERS_OF.get(cycle.fault, 0)
            self.duplicates += 1 if cycle.fault is Fault.DUPLICATE_FILL else 0
        if cycle.outcome == COMMIT:
            self.states[cycle.session_id] = decision.state
        self.cycles.append(cycle)

    @exact
    def _decide(self, staged: StagedCycle, cycle_id: int, unmarked: str | None) -> ledger.Decision:
        held = [s for s in staged.held_symbols() if s in self._marks and s != unmarked]
        return ledger.decide(staged, {s: self._marks[s] for s in held}, cycle_id=cycle_id)

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

    @exact
    def _mark(self, symbol: str, *, stale: bool) -> Planned:
        if stale:  # never marked since: the marker finds only this one, too old
            ts = self._now - 2 * int(self.config.max_mark_age_s * 1000)
        else:
            ts = self._tick()
            step = D(self._rng.gauss(0, 0.002))
            self._prices[symbol] = self._marks[symbol] = _decimal(self._prices[symbol] * (1 + step))
        return Planned("marks", symbol, MarkPrice(symbol, self._prices[symbol], ts))

    # -- planning a cycle ------------------------------------------------------------------

    @exact
    def _plan(self, session_id: str, cycle_id: int, state: PortfolioState) -> _Content:
        """Random fills sized against the session's equity; a deposit opens the session."""
        rng, cash = self._rng, list[tuple[PnlKind, Decimal, str | None]]()
        equity = state.equity
        if cycle_id == 1:
            equity = D(rng.randrange(100, 1001) * 1000)
            cash.append((PnlKind.TRANSFER, equity, None))
        elif rng.random() < 0.06:
            withdraw = state.cash > 10_000 and rng.random() < 0.5
            deposit = D(rng.randrange(5, 51) * 1000)
            amount = -(state.cash / 20).quantize(CENT) if withdraw else deposit
            cash.append((PnlKind.TRANSFER, amount, None))
        held = {symbol: lots_quantity(lots) for symbol, lots in state.lots.items()}
        fills = []
        for n in range(1, rng.randint(1, self.config.fills_per_cycle) + 1):
            symbol = rng.choice(self._symbols)
            position = held.get(symbol, ZERO)
            if position and rng.random() < 0.4:
                side = Side.SELL if position > 0 else Side.BUY
                quantity = abs(position) * D(rng.uniform(0.2, 1.3))
            else:
                side = Side.BUY if rng.random() < 0.6 else Side.SELL
                quantity = equity * D(rng.uniform(0.005, 0.04)) / self._prices[symbol]
            fills.append(self._fill(session_id, cycle_id, n, symbol, side, quantity))
            held[symbol] = position + (quantity if side is Side.BUY else -quantity)
        if state.lots and rng.random() < 0.2:
            symbol = rng.choice(sorted(state.lots))
            notional = abs(held.get(symbol, ZERO)) * self._prices[symbol]
            amount = (D(rng.uniform(-0.0003, 0.0001)) * notional).quantize(CENT)
            cash.append((PnlKind.FUNDING, amount or -CENT, symbol))
        return _Content(tuple(fills), tuple(cash), cycle_id)

    @exact
    def _fill(
        self, session_id: str, cycle_id: int, n: int, symbol: str, side: Side, quantity: Decimal
    ) -> Fill:
        price = _decimal(self._prices[symbol] * D(self._rng.uniform(0.998, 1.002)))
        quantity = max(QUANTITY_QUANTUM, quantity.quantize(QUANTITY_QUANTUM, ROUND_DOWN))
        fee = (quantity * price * Decimal("0.0004")).quantize(PRICE_QUANTUM)
        return Fill(
            f"{session_id}-c{cycle_id}-f{n}",
            session_id,
            cycle_id,
            symbol,
            side,
            quantity,
            price,
            fee,
            0,
        )

    def _listing(self, session_id: str, cycle_id: int, state: PortfolioState) -> Fill:
        """A BUY of a symbol nobody has marked yet (the missing- and stale-mark faults)."""
        self._listings += 1
        symbol = f"NEW{self._listings}/USDT"
        self._prices[symbol] = _decimal(self._rng.uniform(1, 100))
        quantity = state.equity * Decimal("0.01") / self._prices[symbol]
        return self._fill(session_id, cycle_id, 99, symbol, Side.BUY, quantity)

    @exact
    def _build(
        self,
        session_id: str,
        cycle_id: int,
        state: PortfolioState,
        content: _Content,
        fault: Fault | None,
    ) -> tuple[list[tuple[str, object]], tuple[int, int], StagedCycle, str | None]:
        """The cycle's records before its marker, the marker's counts, the staged cycle the
        worker decides once the cycle is complete, and the symbol left unmarked, if any."""
        rng, staged = self._rng, ledger.open_cycle(state, self.config.cost_basis)
        fills = [replace(f, cycle_id=cycle_id) for f in content.fills]
        realized: dict[str, Decimal] = {}
        for f in fills:  # in the order sent, the order the worker stages them in
            before = staged.ledger_realized
            staged = ledger.stage_fill(staged, f.symbol, f.side, f.quantity, f.price, f.fee)
            realized[f.symbol] = realized.get(f.symbol, ZERO) + staged.ledger_realized - before
        reports = [
            PnlEvent(
                f"{session_id}-c{cycle_id}-r{n}",
                session_id,
                cycle_id,
                PnlKind.REALIZED,
                ledger.to_wire(amount),
                0,
                symbol,
            )
            for n, (symbol, amount) in enumerate(sorted(realized.items()), 1)
            if amount
        ]
        if fault in (Fault.WRONG_REALIZED, Fault.EXTRA_FILL):
            off = (ledger.epsilon_for(state.equity) * D(rng.uniform(20, 100))).quantize(CENT)
            wrong = (
                reports[0]
                if reports
                else PnlEvent(
                    f"{session_id}-c{cycle_id}-r0", session_id, cycle_id, PnlKind.REALIZED, ZERO, 0
                )
            )
            reports = [replace(wrong, amount=wrong.amount + rng.choice((off, -off))), *reports[1:]]
        pnl = reports + [
            PnlEvent(
                f"{session_id}-c{cycle_id}-p{n}", session_id, cycle_id, kind, amount, 0, symbol
            )
            for n, (kind, amount, symbol) in enumerate(content.cash, 1)
        ]
        for event in pnl:
            staged = ledger.stage_pnl(staged, event.kind, event.amount)
        sent: list[tuple[str, object]] = [("fill", f) for f in fills]
        at = rng.randrange(len(fills))
        if fault is Fault.MISSING_FILL:
            del sent[at]
        elif fault is Fault.MALFORMED:  # never the magic byte of either framing
            garbage = bytes([rng.randrange(1, 0xC3)]) + rng.randbytes(rng.randrange(8, 64))
            sent[at] = ("raw", garbage)
        elif fault is Fault.INVALID_FILL:
            sent[at] = ("fill", replace(fills[at], quantity=-fills[at].quantity * rng.randrange(2)))
        elif fault is Fault.DUPLICATE_FILL:
            sent[at] = ("first", fills[at])
            sent.insert(rng.randrange(at + 1, len(fills) + 1), ("again", fills[at]))
        unmarked = fills[-1].symbol if fault in (Fault.MISSING_MARK, Fault.STALE_MARK) else None
        marked = set(staged.held_symbols()) | {f.symbol for f in fills}
        others: list[tuple[str, object]] = [("mark", s) for s in sorted(marked - {unmarked})]
        if fault is Fault.STALE_MARK:
            others.append(("stale", unmarked))
        others += [("pnl", event) for event in pnl]
        if fault is Fault.EXTRA_FILL:
            symbol = rng.choice(self._symbols)
            quantity = state.equity * Decimal("0.01") / self._prices[symbol]
            extra = self._fill(session_id, cycle_id, 98, symbol, Side.BUY, quantity)
            rng.shuffle(others)
            return [*others, *sent, ("fill", extra)], (len(fills), len(pnl)), staged, None
        return _interleave(sent, others, rng), (len(fills), len(pnl)), staged, unmarked


def _interleave(
    ordered: list[tuple[str, object]], others: list[tuple[str, object]], rng: random.Random
) -> list[tuple[str, object]]:
    """``others`` shuffled in among ``ordered``, whose own order is kept."""
    rng.shuffle(others)
    merged = list(ordered)
    for item in others:
        merged.insert(rng.randrange(len(merged) + 1), item)
    return merged
