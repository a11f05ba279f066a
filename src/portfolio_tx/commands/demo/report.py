"""The demo's summary: what the simulator expected beside what the worker did."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from portfolio_tx.commands.demo.readers import OutcomeTail
from portfolio_tx.config import Settings
from portfolio_tx.sim.oracle import COMMIT
from portfolio_tx.sim.publish import Published, outcome_order
from portfolio_tx.sim.upstream import Upstream
from portfolio_tx.wire.topics import TopicNames


def report(
    upstream: Upstream,
    tail: OutcomeTail,
    sent: Published,
    *,
    rate: float,
    dead: int,
    headerless: int,
    differing: dict[str, list[str]],
    exit_code: int | None,
    log_path: Path,
    settings: Settings | None,
) -> int:
    """Print the summary; 0 when everything matched. ``settings`` (unless the demo cleans
    up) adds how to look around afterwards."""
    seen = Counter(o.reason or COMMIT for o in tail.outcomes)
    per_cycle = Counter((o.session_id, o.cycle_id) for o in tail.outcomes)
    given = {(o.session_id, o.cycle_id): o.reason or COMMIT for o in tail.outcomes}
    as_planned = sum(
        1
        for c in upstream.cycles
        if given.get((c.session_id, c.cycle_id)) in (c.outcome, c.early_outcome)
    )
    once = len(per_cycle) == len(upstream.cycles) and all(n == 1 for n in per_cycle.values())
    elapsed = max(tail.last_at - sent.started, 1e-9)
    drained = tail.last_at - sent.started - sent.elapsed_s
    faults = ", ".join(f"{kind} {n}" for kind, n in sorted(upstream.faults_injected().items()))
    checks: list[bool] = []
    raced = False

    def row(label: str, want: int, got: int | None, low: int, high: int) -> str:
        nonlocal raced
        ok = got is not None and low <= got <= high
        checks.append(ok)
        raced = raced or (ok and got != want)
        verdict = "MISMATCH" if not ok else "ok" if got == want else "ok (race, see below)"
        return f"  {label:<22} {want:>9} {got!s:>9}   {verdict}"

    bounds = upstream.bounds()
    lines = ["", "summary", f"  {'':<22} {'expected':>9} {'seen':>9}"]
    for outcome in outcome_order({**upstream.expected, **seen}):
        want = upstream.expected[outcome]
        lines.append(row(outcome, want, seen[outcome], *bounds.get(outcome, (want, want))))
    cycles, sessions = len(upstream.cycles), len(upstream.states)
    lines += [
        row("one outcome per cycle", cycles, len(tail.outcomes), cycles, cycles if once else -1),
        row("  the planned outcome", cycles, as_planned, cycles, cycles),
        row("dead letters", upstream.dead_letters, dead, *upstream.dead_letter_bounds()),
        row("  with source headers", dead, dead - headerless, dead, dead),
        row("Redis state = model", sessions, sessions - len(differing), sessions, sessions),
        row("worker exit on SIGTERM", 0, exit_code, 0, 0),
    ]
    if raced:
        lines.append(
            "  race (tolerated): the worker decides an extra-fill cycle once it holds the marker\n"
            "  and the announced fills (VALIDATION_FAILED) or one fill too many (COUNT_MISMATCH);\n"
            "  events of the cycle that reach it after that are late, hence dead letters"
        )
    lines += [
        f"  faults injected: {faults or 'none'}",
        f"  {sent.records} events published in {sent.elapsed_s:.1f} s"
        + (f" (paced at {rate:g}/s)" if rate > 0 else "")
        + f"; last outcome {drained:.1f} s after the last publish",
        f"  throughput: {sent.records / elapsed:.0f} events/s "
        f"(events published / first publish → last outcome, {elapsed:.1f} s)",
        f"  worker log: {log_path}",
    ]
    for session, problems in sorted(differing.items())[:5]:
        lines.append(f"  {session}: " + "; ".join(problems))
    ok = all(checks)
    lines += [
        "",
        "RESULT: "
        + (
            "every outcome, dead letter and state is what the simulator expected"
            if ok
            else "the worker did NOT do what the simulator expected"
        ),
    ]
    if settings is not None:
        prefix = settings.topics.fills.removesuffix(TopicNames().fills)
        lines += [
            f"  look around: portfolio-tx tail --topic-prefix {prefix} --from-beginning "
            "--idle-exit 2",
            f"               portfolio-tx state s001 --redis-namespace {settings.redis_namespace}",
        ]
    print("\n".join(lines))
    return 0 if ok else 1
