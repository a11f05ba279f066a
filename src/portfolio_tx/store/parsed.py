"""The states a store remembers: per session, the last state document it read or wrote and
the state that document stands for, so that a document read back unchanged is not parsed
again (parsing cost more than the rest of a small transaction's read).

An entry is used only when the document read equals the remembered one byte for byte:
another writer, a Redis restored from an older snapshot or a deleted key gives another
document (or none), which is parsed as always. The state remembered for a write is the one
the caller committed, the state the worker keeps in its own cache after a commit. At most
``capacity`` sessions are kept, the least recently used leaving first; 0 keeps none.
"""

from __future__ import annotations

from collections import OrderedDict

from portfolio_tx.ledger import PortfolioState
from portfolio_tx.store.document import load_state


class ParsedStates:
    """Session id → (its state document, the state it parses to), bounded (see above)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._known: OrderedDict[str, tuple[bytes, PortfolioState]] = OrderedDict()

    def state_of(self, session_id: str, doc: bytes | None) -> PortfolioState:
        """The state ``doc`` stands for (an empty state for none)."""
        if doc is None:
            return PortfolioState()
        known = self._known.get(session_id)
        if known is not None and known[0] == doc:
            self._known.move_to_end(session_id)
            return known[1]
        state = load_state(doc)
        self.remember(session_id, doc, state)
        return state

    def remember(self, session_id: str, doc: bytes, state: PortfolioState) -> None:
        """``doc`` is now the session's document, and ``state`` what it stands for."""
        if self._capacity <= 0:
            return
        known = self._known
        known[session_id] = (doc, state)
        known.move_to_end(session_id)
        if len(known) > self._capacity:
            known.popitem(last=False)
