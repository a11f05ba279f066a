"""The oracle of the simulated upstream: the faults, the outcome each cycle must get, the tally.

Each session's committed state is modelled with the ledger itself: ``content`` stages a
cycle (``open_cycle`` → ``stage_*``) and the oracle ``decide``s it, so the REALIZED reports
are exactly what the worker will realize, and the model advances only on the cycles the
worker must commit. Once the stream is exhausted, ``cycles`` lists each published cycle with
the outcome it must get, ``expected`` counts those outcomes, ``dead_letters`` counts the
records the worker must dead-letter, and ``states`` holds every session's final committed
``PortfolioState``.

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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from portfolio_tx import ledger
from portfolio_tx.ledger import PortfolioState, StagedCycle
from portfolio_tx.ledger.money import exact

COMMIT = ledger.OutcomeKind.COMMIT.value
VALIDATION_FAILED = ledger.DiscardReason.VALIDATION_FAILED.value


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


def expect(
    session_id: str, cycle_id: int, fault: Fault | None, origin: int, counts: tuple[int, int]
) -> PlannedCycle:
    """The cycle ``cycle_id`` with ``fault``, republishing the content of cycle ``origin``
    and announcing ``counts`` (fills, P&L events): the outcome its fault calls for."""
    extra = fault is Fault.EXTRA_FILL
    return PlannedCycle(
        session_id,
        cycle_id,
        fault,
        OUTCOME_OF[fault] if fault else COMMIT,
        origin if origin != cycle_id else None,
        VALIDATION_FAILED if extra else None,
        counts[1] + 1 if extra else 0,
    )


@exact
def _decide(
    staged: StagedCycle, cycle_id: int, marks: Mapping[str, Decimal], unmarked: str | None
) -> ledger.Decision:
    held = [s for s in staged.held_symbols() if s in marks and s != unmarked]
    return ledger.decide(staged, {s: marks[s] for s in held}, cycle_id=cycle_id)


class Oracle:
    """What the worker must make of a generated stream, tallied cycle by cycle."""

    def __init__(self) -> None:
        self.cycles: list[PlannedCycle] = []
        self.expected: Counter[str] = Counter()
        self.dead_letters = 0
        self.duplicates = 0  # fills sent twice: the worker counts each once
        self.states: dict[str, PortfolioState] = {}

    def open_session(self, session_id: str) -> PortfolioState:
        """The committed state of a new session: empty."""
        state = self.states[session_id] = PortfolioState()
        return state

    def settle(
        self,
        cycle: PlannedCycle,
        staged: StagedCycle,
        marks: Mapping[str, Decimal],
        unmarked: str | None,
    ) -> PortfolioState:
        """Decide ``staged`` on ``marks`` (all but ``unmarked``) and count the cycle; the model
        advances only when the worker must commit it. Returns the session's committed state;
        raises AssertionError when the model disagrees with a COMMIT or VALIDATION_FAILED."""
        decision = _decide(staged, cycle.cycle_id, marks, unmarked)
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
        return self.states[cycle.session_id]

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
