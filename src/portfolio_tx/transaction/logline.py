"""The seed's log line for a decision, two decimals (CONTRACT §2)."""

from __future__ import annotations

from portfolio_tx.ledger import Decision, money2


def decision_line(decision: Decision) -> str:
    """``PORTFOLIO_COMMIT: cash=$…, positions=$…, total=$… (Δ=$…, ε=$…)`` or
    ``PORTFOLIO_DISCARD: reason=… Δ=$…, ε=$…``."""
    if decision.committed:
        return (
            f"PORTFOLIO_COMMIT: cash=${money2(decision.cash)}, "
            f"positions=${money2(decision.positions_value)}, total=${money2(decision.total)} "
            f"(Δ=${money2(decision.delta)}, ε=${money2(decision.epsilon)})"
        )
    return (
        f"PORTFOLIO_DISCARD: reason={decision.reason} "
        f"Δ=${money2(decision.delta)}, ε=${money2(decision.epsilon)}"
    )
