"""The benchmark's workload: reconciling cycles of a fixed shape, and the model that checks them.

Shape (issue 5): ``sessions`` sessions, ``symbols`` symbols, cycles of 10 fills + 2 P&L
reports + 1 marker; before each marker one mark (symbols refreshed round-robin, all of them
marked once at the start), so every mark a cycle is valued with is older than its marker.
Each session trades a basket of ``basket`` symbols out of the universe (a strategy trades a
handful), which keeps the per-session state, the stored document and the outcome record at a
realistic size.

The two reports are the cycle's REALIZED P&L (exactly what the ledger realizes) and a
TRANSFER (the first cycle funds the session) or a small FUNDING. Every ``fault_every``-th
cycle (never the first) reports a REALIZED figure off by 50 ε: VALIDATION_FAILED.

Sessions interleave: in each round every session publishes one cycle, in blocks of
``interleave`` sessions whose records are shuffled together (a session's marker comes after
its own records). Timestamps grow 1 ms per record.

The generator is its own oracle, built on the pure ledger (``open_cycle`` → ``stage_*`` →
``decide``): it knows each cycle's outcome and every session's final committed state.
"""

from __future__ import annotations

import hashlib
import pickle
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from portfolio_tx.ledger import (
    ZERO,
    CostBasis,
    D,
    PnlKind,
    PortfolioState,
    Side,
    StagedCycle,
    decide,
    epsilon_for,
    open_cycle,
    stage_fill,
    stage_pnl,
    to_wire,
)
from portfolio_tx.ledger.lots import lots_quantity
from portfolio_tx.ledger.money import exact
from portfolio_tx.store.document import dump_state, load_state
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, MarkPrice, PnlEvent

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PRICE_Q = Decimal("1e-8")
QTY_Q = Decimal("1e-6")
KINDS = ("fills", "pnl", "cycles", "marks")
CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True)
class Shape:
    sessions: int = 1000
    cycles: int = 77  # per session: 1,000 × 77 × 13 = 1,001,000 input events
    symbols: int = 50
    basket: int = 8
    fills: int = 10
    interleave: int = 16
    fault_every: int = 50
    markers: bool = True  # False: cycles stay open (the memory scenario)
    seed: int = 5
    prefix: str = "s"

    @property
    def input_events(self) -> int:
        return self.sessions * self.cycles * (self.fills + 2 + (1 if self.markers else 0))


@dataclass
class Workload:
    """Encoded records in publishing order, and what the worker must make of them."""

    shape: Shape
    records: list[tuple[int, str, bytes]]  # (kind index into KINDS, key, value)
    markers: list[tuple[int, str, int]] = field(default_factory=list)  # (index, session, cycle)
    outcomes: Counter[str] = field(default_factory=Counter)  # COMMIT / VALIDATION_FAILED
    states: dict[str, str] = field(default_factory=dict)  # session -> dump_state(final state)
    lots_held: float = 0.0  # mean open lots per session at the end

    @property
    def cycles(self) -> int:
        return sum(self.outcomes.values())

    def state(self, session: str) -> PortfolioState:
        """The session's final committed state according to the model."""
        return load_state(self.states[session])

    def count(self, kind: str) -> int:
        index = KINDS.index(kind)
        return sum(1 for k, _, _ in self.records if k == index)


def _price(value: Decimal) -> Decimal:
    return max(PRICE_Q, value.quantize(PRICE_Q, rounding=ROUND_DOWN))


class _Generator:
    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.rng = random.Random(shape.seed)
        self.codec = Codec()
        self.prices = {
            f"S{n:02d}/USDT": _price(D(10 ** self.rng.uniform(-0.5, 4.5)))
            for n in range(shape.symbols)
        }
        self.symbols = sorted(self.prices)
        self.next_mark = 0
        self.now = T0
        self.out = Workload(shape, [])
        self.states: dict[str, PortfolioState] = {}
        self.baskets: dict[str, list[str]] = {}
        self.cycle_no = 0

    def emit(self, kind: str, key: str, record: object) -> None:
        self.out.records.append(
            (KINDS.index(kind), key, self.codec.encode(record, kind))  # type: ignore[arg-type]
        )

    def tick(self) -> int:
        self.now += 1
        return self.now

    @exact
    def mark(self, symbol: str | None = None) -> None:
        if symbol is None:
            symbol = self.symbols[self.next_mark % len(self.symbols)]
            self.next_mark += 1
            step = D(round(self.rng.gauss(0, 0.002), 6))
            self.prices[symbol] = _price(self.prices[symbol] * (1 + step))
        self.emit("marks", symbol, MarkPrice(symbol, self.prices[symbol], self.tick()))

    @exact
    def plan(self, session: str, cycle: int) -> tuple[list[object], StagedCycle, bool]:
        """The cycle's fills and reports (ts filled in later), the staged cycle, faulty?"""
        rng, shape = self.rng, self.shape
        state = self.states[session]
        staged = open_cycle(state, CostBasis.FIFO)
        cash: list[tuple[PnlKind, Decimal]] = []
        equity = state.equity
        if cycle == 1:
            equity = D(rng.randrange(100, 1001) * 1000)
            cash.append((PnlKind.TRANSFER, equity))
        events: list[object] = []
        for n in range(1, shape.fills + 1):
            symbol = rng.choice(self.baskets[session])
            position = lots_quantity(staged.lots.get(symbol, ()))
            reference = self.prices[symbol]
            if position and rng.random() < 0.5:
                side = Side.SELL if position > 0 else Side.BUY
                quantity = abs(position) * D(round(rng.uniform(0.3, 1.2), 4))
            else:
                side = Side.BUY if rng.random() < 0.55 else Side.SELL
                quantity = equity * D(round(rng.uniform(0.005, 0.03), 4)) / reference
            quantity = max(QTY_Q, quantity.quantize(QTY_Q, ROUND_DOWN))
            price = _price(reference * D(round(rng.uniform(0.998, 1.002), 6)))
            fee = (quantity * price * Decimal("0.0004")).quantize(PRICE_Q)
            fill = Fill(f"{session}-c{cycle}-f{n}", session, cycle, symbol, side, quantity,
                        price, fee, 0)
            staged = stage_fill(staged, symbol, side, quantity, price, fee)
            events.append(fill)
        if cycle > 1:
            notional = sum((abs(lots_quantity(lots)) * self.prices[s]
                            for s, lots in staged.lots.items()), ZERO)
            cash.append((PnlKind.FUNDING, -(notional * Decimal("0.00001")).quantize(
                Decimal("0.01")) or Decimal("-0.01")))
        self.cycle_no += 1
        faulty = cycle > 1 and self.cycle_no % shape.fault_every == 0
        realized = to_wire(staged.ledger_realized)
        if faulty:
            realized += (50 * epsilon_for(state.equity)).quantize(Decimal("0.01"))
        reports = [(PnlKind.REALIZED, realized), *cash]
        for n, (kind, amount) in enumerate(reports, 1):
            # fills keep their order (FIFO realizes in arrival order); reports go anywhere
            report = PnlEvent(f"{session}-c{cycle}-p{n}", session, cycle, kind, amount, 0)
            events.insert(rng.randrange(len(events) + 1), report)
            staged = stage_pnl(staged, kind, amount)
        return events, staged, faulty

    @exact
    def settle(self, session: str, cycle: int, staged: StagedCycle) -> None:
        held = staged.held_symbols()
        decision = decide(staged, {s: self.prices[s] for s in held}, cycle_id=cycle)
        self.out.outcomes[decision.reason.value if decision.reason else "COMMIT"] += 1
        if decision.committed:
            self.states[session] = decision.state

    def run(self) -> Workload:
        shape, rng = self.shape, self.rng
        sessions = [f"{shape.prefix}{n:05d}" for n in range(shape.sessions)]
        for session in sessions:
            self.states[session] = PortfolioState()
            self.baskets[session] = rng.sample(self.symbols, min(shape.basket, shape.symbols))
        if shape.markers:
            for symbol in self.symbols:
                self.mark(symbol)
        for cycle in range(1, shape.cycles + 1):
            order = sessions[:]
            rng.shuffle(order)
            for start in range(0, len(order), shape.interleave):
                self.block(order[start : start + shape.interleave], cycle)
        self.out.states = {s: dump_state(state) for s, state in self.states.items()}
        self.out.lots_held = sum(
            len(lots) for s in self.states.values() for lots in s.lots.values()
        ) / max(1, len(self.states))
        return self.out

    def block(self, sessions: list[str], cycle: int) -> None:
        planned = {s: self.plan(s, cycle) for s in sessions}
        queues = {s: [("event", e) for e in planned[s][0]] for s in sessions}
        if self.shape.markers:
            for s in sessions:
                queues[s] += [("mark", None), ("marker", None)]
        live = list(sessions)
        while live:
            session = self.rng.choice(live)
            kind, event = queues[session].pop(0)
            if not queues[session]:
                live.remove(session)
            if kind == "mark":
                self.mark()
            elif kind == "marker":
                staged = planned[session][1]
                marker = CycleMarker(session, cycle, self.shape.fills, 2, self.tick())
                self.out.markers.append((len(self.out.records), session, cycle))
                self.emit("cycles", session, marker)
                self.settle(session, cycle, staged)
            else:
                topic = "fills" if isinstance(event, Fill) else "pnl"
                self.emit(topic, session, _stamped(event, self.tick()))


def _stamped(event: object, ts: int) -> object:
    from dataclasses import replace

    return replace(event, ts=ts)  # type: ignore[type-var]


def _fingerprint(shape: Shape) -> str:
    """Cache key: the shape and the sources the records and the model depend on."""
    digest = hashlib.sha256(repr(sorted(asdict(shape).items())).encode())
    root = Path(__file__).resolve().parents[1] / "src" / "portfolio_tx"
    wire = root / "wire"
    sources = [Path(__file__), wire / "codec.py", wire / "records.py", wire / "events.py"]
    sources += sorted((root / "ledger").glob("*.py")) + sorted((wire / "schemas").rglob("*.avsc"))
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build(shape: Shape, *, cache: bool = True) -> Workload:
    """The workload of ``shape``, generated once and then read from ``bench/.cache``."""
    path = CACHE / f"workload-{_fingerprint(shape)}.pickle"
    if cache and path.exists():
        with path.open("rb") as handle:
            loaded: Workload = pickle.load(handle)
        return loaded
    workload = _Generator(shape).run()
    if cache:
        CACHE.mkdir(exist_ok=True)
        with path.open("wb") as handle:
            pickle.dump(workload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return workload
