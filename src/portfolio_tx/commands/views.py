"""Read-side renderings of committed state and outcomes (CLI, tail, dashboards)."""

from __future__ import annotations

from typing import Any

from portfolio_tx.ledger import canonical, money2, to_wire
from portfolio_tx.store.port import StateStore
from portfolio_tx.wire.outcomes import CycleOutcome


def state_json(store: StateStore, session_id: str) -> dict[str, Any]:
    """CONTRACT §5's ``state --json`` object; ``last_cycle`` null for an unknown session.

    Every figure is exact except the average entry price, a quotient, shown at the wire's
    18 places (the lots behind it are kept exactly)."""
    snapshot = store.load(session_id)
    state = snapshot.state
    if state.version == 0 and snapshot.last_decided is None:
        return {"session_id": session_id, "last_cycle": None}
    return {
        "session_id": session_id,
        "last_cycle": state.last_cycle,
        "version": state.version,
        "cash": canonical(state.cash),
        "equity": canonical(state.equity),
        "realized_pnl": canonical(state.realized_pnl),
        "fees": canonical(state.fees),
        "transfers": canonical(state.transfers),
        "residual": canonical(state.residual),
        "positions": {
            p.symbol: {
                "quantity": canonical(p.quantity),
                "avg_entry_price": canonical(to_wire(p.avg_entry_price)),
                "mark_price": None if p.mark_price is None else canonical(p.mark_price),
            }
            for p in state.positions()
        },
    }


def state_text(document: dict[str, Any]) -> str:
    """The human form of ``state_json``'s object."""
    if document.get("last_cycle") is None and "cash" not in document:
        return f"{document['session_id']}: no committed state"
    lines = [
        f"session {document['session_id']}  cycle {document['last_cycle']}  "
        f"version {document['version']}",
        f"  cash {document['cash']}  equity {document['equity']}  "
        f"realized {document['realized_pnl']}  fees {document['fees']}",
        f"  transfers {document['transfers']}  residual {document['residual']} "
        "(Σ Δ of the committed cycles: reported minus ledger realized, accepted within ε)",
    ]
    for symbol, p in sorted(document["positions"].items()):
        lines.append(
            f"  {symbol:<12} {p['quantity']:>14} @ {p['avg_entry_price']}  mark {p['mark_price']}"
        )
    return "\n".join(lines)


def outcome_line(outcome: CycleOutcome) -> str:
    """One readable line per outcome (``portfolio-tx tail``)."""
    head = f"{outcome.session_id} cycle {outcome.cycle_id}"
    if outcome.committed:
        held = ", ".join(f"{p.symbol} {canonical(p.quantity)}" for p in outcome.positions)
        return (
            f"COMMIT   {head}: cash {money2(outcome.cash)} total {money2(outcome.total)} "
            f"(Δ {money2(outcome.delta)}, ε {money2(outcome.epsilon)})"
            + (f" [{held}]" if held else "")
        )
    return (
        f"DISCARD  {head}: {outcome.reason} "
        f"(Δ {money2(outcome.delta)}, ε {money2(outcome.epsilon)})"
    )
