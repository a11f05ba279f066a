"""``portfolio-tx verify``: recompute from the input topics, diff against Redis and the commit
topic, print a table of differences, exit non-zero if there is any."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from portfolio_tx.audit.progress import ProgressBar
from portfolio_tx.audit.recompute import recompute
from portfolio_tx.config import Settings
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.ledger import PortfolioState, canonical
from portfolio_tx.store.memory import MemoryStateStore
from portfolio_tx.store.port import SessionSnapshot, StateStore
from portfolio_tx.wire.outcomes import CycleOutcome
from portfolio_tx.worker.build import connect_store


@dataclass(frozen=True, slots=True)
class Difference:
    session_id: str
    field: str
    expected: str
    actual: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", help="verify only this session")


def run(args: argparse.Namespace, settings: Settings) -> int:
    found = verify(settings, connect_store(settings), session=args.session)
    return 1 if found else 0


def verify(
    settings: Settings,
    live: StateStore,
    *,
    session: str | None = None,
    out: TextIO | None = None,
) -> list[Difference]:
    """Every difference between the recomputation and the live state and commit topic."""
    out = out or sys.stdout
    expected = MemoryStateStore()
    bar = ProgressBar("recomputing partitions")
    recomputed = recompute(
        settings, expected, sessions=None if session is None else {session}, progress=bar.update
    )
    bar.done()
    published = Counter[tuple[str, int]]()
    kinds: dict[tuple[str, int], CycleOutcome] = {}
    for outcome in committed_outcomes(settings):
        if session is None or outcome.session_id == session:
            published[(outcome.session_id, outcome.cycle_id)] += 1
            kinds[(outcome.session_id, outcome.cycle_id)] = outcome
    differences = list(_state_differences(recomputed.sessions, expected, live))
    differences += _outcome_differences(recomputed.outcomes, published, kinds)
    _print_table(differences, len(recomputed.sessions), len(recomputed.outcomes), out)
    return differences


def committed_outcomes(settings: Settings) -> Iterator[CycleOutcome]:
    """Every outcome on the commit topic as a read_committed reader sees it."""
    log = CommitLog.open(settings, "verify")
    try:
        yield from log.outcomes()
    finally:
        log.close()


def _fields(snapshot: SessionSnapshot) -> dict[str, str]:
    state: PortfolioState = snapshot.state
    figures: dict[str, Any] = {
        "last_decided": snapshot.last_decided,
        "last_cycle": state.last_cycle,
        "version": state.version,
        "cash": canonical(state.cash),
        "equity": canonical(state.equity),
        "realized_pnl": canonical(state.realized_pnl),
        "fees": canonical(state.fees),
        "transfers": canonical(state.transfers),
        "residual": canonical(state.residual),
    }
    for symbol, lots in sorted(state.lots.items()):
        figures[f"lots[{symbol}]"] = "; ".join(
            f"{canonical(lot.quantity)}@{canonical(lot.cost)}" for lot in lots
        )
    return {k: str(v) for k, v in figures.items()}


def _state_differences(
    sessions: set[str], expected: StateStore, live: StateStore
) -> Iterator[Difference]:
    for session_id in sorted(sessions):
        want, have = _fields(expected.load(session_id)), _fields(live.load(session_id))
        for name in sorted(set(want) | set(have)):
            if want.get(name, "-") != have.get(name, "-"):
                yield Difference(session_id, name, want.get(name, "-"), have.get(name, "-"))


def _outcome_differences(
    recomputed: dict[tuple[str, int], CycleOutcome],
    published: Counter[tuple[str, int]],
    seen: dict[tuple[str, int], CycleOutcome],
) -> list[Difference]:
    found = []
    for key in sorted(set(recomputed) | set(published)):
        session_id, cycle = key
        name = f"outcome[{cycle}]"
        want = recomputed.get(key)
        have = seen.get(key)
        shown = "-" if want is None else f"{want.outcome} {want.reason or ''}".strip()
        actual = "-" if have is None else f"{have.outcome} {have.reason or ''}".strip()
        if published[key] > 1:
            found.append(Difference(session_id, name, shown, f"{published[key]} outcomes"))
        elif shown != actual:
            found.append(Difference(session_id, name, shown, actual))
    return found


def _print_table(differences: list[Difference], sessions: int, cycles: int, out: TextIO) -> None:
    if not differences:
        print(f"verify: {sessions} sessions, {cycles} cycles: no differences", file=out)
        return
    rows = [("session", "field", "expected (recomputed)", "actual (Redis / commit topic)")]
    rows += [(d.session_id, d.field, d.expected, d.actual) for d in differences]
    widths = [min(max(len(r[i]) for r in rows), 48) for i in range(4)]
    for row in rows:
        print("  ".join(cell[:48].ljust(w) for cell, w in zip(row, widths, strict=True)), file=out)
    print(
        f"verify: {len(differences)} differences in "
        f"{len({d.session_id for d in differences})} of {sessions} sessions",
        file=out,
    )
