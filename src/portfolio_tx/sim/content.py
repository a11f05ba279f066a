"""What a simulated cycle holds: the fills and P&L events a session trades, faults included.

``Market`` holds the symbols, their prices and the stream's one random generator, shared with
``Upstream`` so that a seed fixes every draw, in order. ``plan`` draws a cycle's legitimate
content, sized against the session's equity; ``build`` stages it on the ledger, writes the
REALIZED reports the worker must reproduce, and builds the cycle's fault (see ``oracle``)
into the records sent. Prices walk with each published mark (``walk``).
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from typing import NamedTuple

from portfolio_tx import ledger
from portfolio_tx.ledger import ZERO, CostBasis, D, PnlKind, PortfolioState, Side, StagedCycle
from portfolio_tx.ledger.lots import lots_quantity
from portfolio_tx.ledger.money import exact
from portfolio_tx.sim.oracle import Fault
from portfolio_tx.wire.events import Fill, PnlEvent

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


class Content(NamedTuple):
    """A cycle's legitimate fills and cash events: what a correction republishes."""

    fills: tuple[Fill, ...]
    cash: tuple[tuple[PnlKind, Decimal, str | None], ...]
    origin: int


def _decimal(value: Decimal | float, quantum: Decimal = PRICE_QUANTUM) -> Decimal:
    """``value`` cut to ``quantum``, never below it: prices and quantities stay positive."""
    return max(quantum, D(value).quantize(quantum, rounding=ROUND_DOWN))


class Market:
    """``symbols`` symbols, the ten majors first, and the cycles sessions trade on them."""

    def __init__(
        self, rng: random.Random, symbols: int, fills_per_cycle: int, cost_basis: CostBasis
    ) -> None:
        self._rng = rng
        self._fills_per_cycle = fills_per_cycle
        self._cost_basis = cost_basis
        self.prices = {f"{base}/USDT": D(price) for base, price in _MAJORS[:symbols]}
        for n in range(len(self.prices), symbols):
            self.prices[f"T{n + 1:03d}/USDT"] = _decimal(rng.uniform(0.5, 500))
        self._symbols = tuple(self.prices)
        self._listings = 0

    @exact
    def walk(self, symbol: str) -> Decimal:
        """The next mark of ``symbol``: its price after a random step, its price from now."""
        step = D(self._rng.gauss(0, 0.002))
        price = self.prices[symbol] = _decimal(self.prices[symbol] * (1 + step))
        return price

    @exact
    def plan(self, session_id: str, cycle_id: int, state: PortfolioState) -> Content:
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
        for n in range(1, rng.randint(1, self._fills_per_cycle) + 1):
            symbol = rng.choice(self._symbols)
            position = held.get(symbol, ZERO)
            if position and rng.random() < 0.4:
                side = Side.SELL if position > 0 else Side.BUY
                quantity = abs(position) * D(rng.uniform(0.2, 1.3))
            else:
                side = Side.BUY if rng.random() < 0.6 else Side.SELL
                quantity = equity * D(rng.uniform(0.005, 0.04)) / self.prices[symbol]
            fills.append(self._fill(session_id, cycle_id, n, symbol, side, quantity))
            held[symbol] = position + (quantity if side is Side.BUY else -quantity)
        if state.lots and rng.random() < 0.2:
            symbol = rng.choice(sorted(state.lots))
            notional = abs(held.get(symbol, ZERO)) * self.prices[symbol]
            amount = (D(rng.uniform(-0.0003, 0.0001)) * notional).quantize(CENT)
            cash.append((PnlKind.FUNDING, amount or -CENT, symbol))
        return Content(tuple(fills), tuple(cash), cycle_id)

    @exact
    def _fill(
        self, session_id: str, cycle_id: int, n: int, symbol: str, side: Side, quantity: Decimal
    ) -> Fill:
        price = _decimal(self.prices[symbol] * D(self._rng.uniform(0.998, 1.002)))
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

    def listing(self, session_id: str, cycle_id: int, state: PortfolioState) -> Fill:
        """A BUY of a symbol nobody has marked yet (the missing- and stale-mark faults)."""
        self._listings += 1
        symbol = f"NEW{self._listings}/USDT"
        self.prices[symbol] = _decimal(self._rng.uniform(1, 100))
        quantity = state.equity * Decimal("0.01") / self.prices[symbol]
        return self._fill(session_id, cycle_id, 99, symbol, Side.BUY, quantity)

    @exact
    def build(
        self,
        session_id: str,
        cycle_id: int,
        state: PortfolioState,
        content: Content,
        fault: Fault | None,
    ) -> tuple[list[tuple[str, object]], tuple[int, int], StagedCycle, str | None]:
        """The cycle's records before its marker, the marker's counts, the staged cycle the
        worker decides once the cycle is complete, and the symbol left unmarked, if any."""
        rng, staged = self._rng, ledger.open_cycle(state, self._cost_basis)
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
            quantity = state.equity * Decimal("0.01") / self.prices[symbol]
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
