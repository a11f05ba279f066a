"""What one transaction has staged, and its savepoints (nested transactions).

``Staging`` holds the journal of ops and the StagedCycle they give; every stage either
applies completely or raises and stages nothing. A ``Savepoint`` remembers a point of the
journal: rolling it back (explicitly, or by an exception leaving its ``with`` block) returns
the journal, the staged cycle and the lot-defined symbols to exactly that point, so only what
was staged inside it is undone. Savepoints nest to any depth; ending one ends those opened
inside it. Nothing here validates or writes: only the outermost commit does.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from portfolio_tx.errors import TransactionStateError
from portfolio_tx.ledger import CostBasis, PortfolioState, StagedCycle, open_cycle
from portfolio_tx.ledger.journal import LOT_EDITS, Fill, Op, replay, step, step_fills


@dataclass(frozen=True, slots=True)
class Mark:
    """A point of the journal: its length and what was staged there."""

    length: int
    staged: StagedCycle
    lot_defined: frozenset[str]


class Staging:
    """The journal of one transaction and the staged cycle it gives."""

    def __init__(self, base: PortfolioState, basis: CostBasis) -> None:
        self.base = base
        self.basis = basis
        self.ops: list[Op] = []
        self.lot_defined: frozenset[str] = frozenset()
        self.staged = open_cycle(base, basis)

    def apply(self, op: Op) -> None:
        """Stage ``op``; on ValidationError nothing is staged.

        A symbol's first lot edit makes it lot-defined; when legs have moved it already, the
        journal is replayed so that its lots come from the lot edits only.
        """
        lot_defined = self.lot_defined
        staged = self.staged
        if isinstance(op, LOT_EDITS) and op.symbol not in lot_defined:
            lot_defined = lot_defined | {op.symbol}
            if any(getattr(earlier, "symbol", None) == op.symbol for earlier in self.ops):
                staged = replay(self.base, self.basis, [*self.ops, op])
                self._advance(op, staged, lot_defined)
                return
        self._advance(op, step(staged, op, lot_defined), lot_defined)

    def apply_fills(self, fills: list[Fill]) -> None:
        """Stage a run of fills, as ``apply`` would one by one; on ValidationError nothing of
        the run is staged."""
        self.staged = step_fills(self.staged, fills, self.lot_defined)
        self.ops.extend(fills)

    def _advance(self, op: Op, staged: StagedCycle, lot_defined: frozenset[str]) -> None:
        self.ops.append(op)
        self.staged = staged
        self.lot_defined = lot_defined

    def mark(self) -> Mark:
        return Mark(len(self.ops), self.staged, self.lot_defined)

    def restore(self, mark: Mark) -> None:
        del self.ops[mark.length :]
        self.staged = mark.staged
        self.lot_defined = mark.lot_defined


class Savepoint:
    """A nested transaction inside a PortfolioTransaction (``with tx.savepoint():``).

    Leaving the block normally keeps what was staged inside it, in the enclosing level; an
    exception leaving it undoes only that and is re-raised; ``rollback()`` undoes it at once
    and ends the savepoint (later stages in the block belong to the enclosing level).
    """

    def __init__(self, staging: Staging, stack: list[Savepoint]) -> None:
        self._staging = staging
        self._stack = stack
        self._mark = staging.mark()
        self.depth = len(stack) + 1
        stack.append(self)

    @property
    def active(self) -> bool:
        return self in self._stack

    def rollback(self) -> None:
        """Undo everything staged since this savepoint; ends it and those inside it."""
        self._end()
        self._staging.restore(self._mark)

    def release(self) -> None:
        """Keep what was staged inside; ends this savepoint and those inside it."""
        self._end()

    def _end(self) -> None:
        if not self.active:
            raise TransactionStateError(f"savepoint at depth {self.depth} has already ended")
        del self._stack[self._stack.index(self) :]

    def __enter__(self) -> Savepoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.active:
            return
        if exc_type is None:
            self.release()
        else:
            self.rollback()
