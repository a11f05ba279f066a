"""``portfolio-tx simulate``: publish the synthetic upstream of ``portfolio_tx.sim.upstream``.

``publish`` sends a planned stream through a ``Publisher`` (at ``rate`` records per second,
0 = as fast as possible) and is what the demo and the tests reuse; ``summary`` renders what
was sent and what the worker must make of it; ``state_differences`` compares a session's
committed state with the simulator's model of it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from portfolio_tx.config import (
    Settings,
    parse_cost_basis,
    parse_positive_float,
    parse_positive_int,
)
from portfolio_tx.errors import ConfigError
from portfolio_tx.kafka.admin import check_copartitioned
from portfolio_tx.kafka.publisher import Publisher
from portfolio_tx.ledger import PortfolioState
from portfolio_tx.sim.oracle import COMMIT, Fault
from portfolio_tx.sim.upstream import Planned, SimConfig, Upstream, generate
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.topics import TopicNames


@dataclass(frozen=True, slots=True)
class Published:
    """What ``publish`` sent: records (``raw`` of them malformed bytes) and when."""

    records: int
    raw: int
    started: float  # time.monotonic() of the first send
    elapsed_s: float

    @property
    def per_second(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def publish(
    planned: Iterable[Planned],
    publisher: Publisher,
    topics: TopicNames,
    *,
    rate: float = 0.0,
    on_started: Callable[[float], None] | None = None,
) -> Published:
    """Send every planned record in order and flush; ``rate`` > 0 paces the sends."""
    started = time.monotonic()
    if on_started is not None:
        on_started(started)
    records = raw = 0
    for item in planned:
        if rate > 0:
            delay = started + records / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if item.record is not None:
            publisher.publish(item.record)
        else:
            publisher.raw(getattr(topics, item.topic), item.key, item.raw)
            raw += 1
        records += 1
    publisher.flush()
    return Published(records, raw, started, time.monotonic() - started)


def outcome_order(expected: dict[str, int]) -> list[str]:
    """COMMIT first, then the discard reasons alphabetically."""
    return sorted(expected, key=lambda outcome: (outcome != COMMIT, outcome))


def summary(upstream: Upstream, sent: Published) -> str:
    config = upstream.config
    injected = sorted(upstream.faults_injected().items())
    faults = ", ".join(f"{kind} {n}" for kind, n in injected) or "none"
    corrections = sum(1 for c in upstream.cycles if c.correction_of is not None)
    lines = [
        f"simulated {len(upstream.cycles)} cycles ({config.sessions} sessions × {config.cycles}),"
        f" seed {config.seed}, sessions {config.session_prefix}001…",
        f"published {sent.records} records ({sent.raw} of them malformed) in "
        f"{sent.elapsed_s:.2f} s ({sent.per_second:.0f}/s)",
        f"faults injected: {faults}; corrections republished: {corrections}",
        "expected outcomes:",
        *(
            f"  {outcome:<18} {upstream.expected[outcome]:>6}"
            for outcome in outcome_order(dict(upstream.expected))
        ),
        f"expected dead letters: {upstream.dead_letters}; duplicates to skip: "
        f"{upstream.duplicates}",
    ]
    early = sum(1 for c in upstream.cycles if c.early_outcome)
    if early:
        most = upstream.dead_letter_bounds()[1]
        lines.append(
            f"  (the {early} extra-fill cycles may be decided before their extra fill "
            f"arrives:\n   VALIDATION_FAILED instead, late events dead-lettered, up to "
            f"{most} in all)"
        )
    return "\n".join(lines)


def state_differences(expected: PortfolioState, actual: PortfolioState) -> list[str]:
    """What differs between two committed states (empty when they are the same)."""
    names = ("cash", "equity", "realized_pnl", "fees", "last_cycle", "version")
    found = [
        f"{name}: expected {getattr(expected, name)}, got {getattr(actual, name)}"
        for name in names
        if getattr(expected, name) != getattr(actual, name)
    ]
    for name in ("lots", "marks"):
        want, got = dict(getattr(expected, name)), dict(getattr(actual, name))
        if want != got:
            found.append(f"{name}: expected {want}, got {got}")
    return found


# -- the command ---------------------------------------------------------------------------


def parse_faults(text: str) -> tuple[Fault, ...]:
    try:
        return tuple(Fault(name.strip()) for name in text.split(",") if name.strip())
    except ValueError as exc:
        raise ConfigError(f"{exc}; choose from {', '.join(f.value for f in Fault)}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the simulated upstream")
    group.add_argument(
        "--sessions", type=parse_positive_int, default=20, help="trading sessions (20)"
    )
    group.add_argument(
        "--cycles", type=parse_positive_int, default=10, help="cycles per session (10)"
    )
    group.add_argument("--symbols", type=parse_positive_int, default=5, help="symbols traded (5)")
    group.add_argument(
        "--fills-per-cycle",
        type=parse_positive_int,
        default=4,
        help="at most this many fills per cycle, 1..N (4)",
    )
    group.add_argument(
        "--fault-rate", type=float, default=0.1, help="share of cycles with an injected fault (0.1)"
    )
    group.add_argument(
        "--faults",
        type=parse_faults,
        default=tuple(Fault),
        help="comma-separated fault kinds, taken round-robin (all): "
        + ", ".join(f.value for f in Fault),
    )
    group.add_argument("--seed", type=int, help="random seed (default: from the clock)")
    group.add_argument(
        "--rate", type=float, default=0.0, help="records per second, 0 = as fast as possible (0)"
    )
    group.add_argument(
        "--cost-basis", type=parse_cost_basis, help="fifo|average, as the worker's [PTX_COST_BASIS]"
    )
    group.add_argument(
        "--max-mark-age",
        type=parse_positive_float,
        help="seconds, as the worker's, for the stale marks [PTX_MAX_MARK_AGE]",
    )
    group.add_argument(
        "--session-prefix", help="session ids are PREFIX001…; default sim-HHMMSS- (a fresh set)"
    )
    group.add_argument("--start-ms", type=int, help="first timestamp, epoch ms (default: now)")
    group.add_argument(
        "--no-corrections",
        dest="corrections",
        action="store_false",
        help="do not republish discarded cycles under the next cycle id",
    )
    group.add_argument("--json", action="store_true", help="print the summary as JSON")


def config_from(args: argparse.Namespace, settings: Settings) -> SimConfig:
    """The SimConfig the flags ask for; worker-facing values default to ``settings``."""
    now = time.time()
    return SimConfig(
        sessions=args.sessions,
        cycles=args.cycles,
        symbols=args.symbols,
        fills_per_cycle=args.fills_per_cycle,
        fault_rate=args.fault_rate,
        faults=args.faults,
        seed=args.seed if args.seed is not None else int(now * 1000) % 1_000_000,
        cost_basis=settings.cost_basis,
        max_mark_age_s=settings.max_mark_age_s,
        start_ms=args.start_ms if args.start_ms is not None else int(now * 1000),
        session_prefix=args.session_prefix or time.strftime("sim-%H%M%S-", time.localtime(now)),
        corrections=args.corrections,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.rate < 0:
        raise ConfigError(f"--rate {args.rate} must not be negative")
    config = config_from(args, settings)
    check_copartitioned(settings, settings.topics)
    publisher = Publisher(settings, settings.topics, Codec(settings.schema_registry_url))
    upstream = generate(config)
    try:
        sent = publish(upstream, publisher, settings.topics, rate=args.rate)
    finally:
        publisher.close()
    if args.json:
        print(
            json.dumps(
                {
                    "cycles": len(upstream.cycles),
                    "records": sent.records,
                    "malformed": sent.raw,
                    "elapsed_s": round(sent.elapsed_s, 3),
                    "expected": dict(upstream.expected),
                    "dead_letters": upstream.dead_letters,
                    "dead_letters_at_most": upstream.dead_letter_bounds()[1],
                    "duplicates": upstream.duplicates,
                    "seed": config.seed,
                    "session_prefix": config.session_prefix,
                }
            )
        )
    else:
        print(summary(upstream, sent))
    return 0
