"""``portfolio-tx replay``: reprocess the input topics into a separate Redis namespace.

A what-if (another epsilon or cost basis) and a rebuild tool. It never touches the live
commit topic or the live namespace. From the beginning every session starts empty; from a
timestamp or from offsets, each session starts from its last COMMIT on the commit topic
whose marker came before that point.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import TextIO

from confluent_kafka import TopicPartition

from portfolio_tx.audit.progress import ProgressBar
from portfolio_tx.audit.recompute import StartOffsets, recompute
from portfolio_tx.audit.verify import committed_outcomes
from portfolio_tx.config import Settings, parse_cost_basis, parse_epsilon
from portfolio_tx.errors import ConfigError
from portfolio_tx.kafka.clients import make_reader
from portfolio_tx.ledger import PortfolioState
from portfolio_tx.store import RedisStateStore
from portfolio_tx.wire.outcomes import state_from_outcome
from portfolio_tx.worker.build import connect_store


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    namespace: str
    records: int
    sessions: int
    committed: int
    discarded: dict[str, int]
    dead_letters: int
    seconds: float

    def lines(self) -> list[str]:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.discarded.items())) or "none"
        return [
            f"replay into {self.namespace!r}: {self.records} records, {self.sessions} sessions "
            f"in {self.seconds:.1f}s",
            f"  committed {self.committed}, discarded {sum(self.discarded.values())} ({reasons}), "
            f"dead letters {self.dead_letters}",
        ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--from-beginning", action="store_true", help="(the default)")
    where.add_argument("--from-timestamp", type=int, metavar="EPOCH_MS")
    where.add_argument(
        "--from-offsets",
        type=parse_offsets,
        metavar="P:O,P:O",
        help="per-partition start offsets of every input",
    )
    parser.add_argument("--into", required=True, metavar="NAME", help="Redis namespace to fill")
    # the CLI puts these two in the Settings replay() is given (cli.settings_from)
    parser.add_argument("--epsilon", type=parse_epsilon, help="tolerance for the what-if")
    parser.add_argument("--cost-basis", type=parse_cost_basis, help="fifo | average")


def parse_offsets(raw: str) -> dict[int, int]:
    try:
        pairs = [item.split(":") for item in raw.split(",") if item]
        return {int(p): int(o) for p, o in pairs}
    except ValueError as exc:
        raise ConfigError(f"{raw!r} is not PARTITION:OFFSET,...") from exc


def run(args: argparse.Namespace, settings: Settings) -> int:
    summary = replay(
        settings,
        args.into,
        from_timestamp=args.from_timestamp,
        from_offsets=args.from_offsets or None,
    )
    for line in summary.lines():
        print(line)
    return 0


def replay(
    settings: Settings,
    into: str,
    *,
    from_timestamp: int | None = None,
    from_offsets: dict[int, int] | None = None,
    out: TextIO | None = None,
) -> ReplaySummary:
    """Decide the input topics again into namespace ``into`` with ``settings``: the what-if's
    epsilon and cost basis are ``settings.epsilon`` / ``settings.cost_basis``."""
    if into == settings.redis_namespace:
        raise ConfigError(f"--into {into!r} is the live namespace; pick another name")
    started = time.monotonic()
    live = connect_store(settings)
    target = RedisStateStore(live.client, namespace=into)
    for key in live.client.scan_iter(match=f"{into}:*", count=1000):
        live.client.delete(key)
    what_if = replace(settings, redis_namespace=into)
    start = _start_offsets(settings, from_timestamp, from_offsets)
    if start is not None:
        _seed(
            settings,
            target,
            _start_time(settings, start) if from_timestamp is None else from_timestamp,
        )
    bar = ProgressBar(f"replaying into {into}")
    result = recompute(what_if, target, start=start, progress=bar.update)
    bar.done()
    return ReplaySummary(
        into,
        result.records,
        len(result.sessions),
        result.stats.committed,
        dict(Counter(result.stats.discarded)),
        len(result.dead_letters),
        time.monotonic() - started,
    )


def _start_offsets(
    settings: Settings, from_timestamp: int | None, from_offsets: dict[int, int] | None
) -> StartOffsets | None:
    topics = (settings.topics.fills, settings.topics.pnl, settings.topics.cycles)
    if from_offsets is not None:
        return {(t, p): o for t in topics for p, o in from_offsets.items()}
    if from_timestamp is None:
        return None
    consumer = make_reader(settings, "replay")
    try:
        wanted = [
            TopicPartition(t, p, from_timestamp)
            for t in topics
            for p in consumer.list_topics(t, timeout=10).topics[t].partitions
        ]
        found = consumer.offsets_for_times(wanted, timeout=10)
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}


def _start_time(settings: Settings, start: StartOffsets) -> int:
    """The earliest Kafka timestamp among the records at the start offsets."""
    consumer = make_reader(settings, "replay")
    earliest = sys.maxsize
    try:
        for (topic, partition), offset in start.items():
            consumer.assign([TopicPartition(topic, partition, offset)])
            message = consumer.poll(5)
            if message is not None and message.error() is None:
                earliest = min(earliest, message.timestamp()[1])
    finally:
        consumer.close()
    return earliest


def _seed(settings: Settings, target: RedisStateStore, before_ms: int) -> None:
    """Each session's last COMMIT (and last decided cycle) among markers before ``before_ms``."""
    states: dict[str, PortfolioState] = {}
    decided: dict[str, int] = {}
    for outcome in committed_outcomes(settings):
        if outcome.ts >= before_ms:
            continue
        decided[outcome.session_id] = max(decided.get(outcome.session_id, -1), outcome.cycle_id)
        if outcome.committed:
            states[outcome.session_id] = state_from_outcome(outcome)
    for session_id, last in decided.items():
        target.restore(session_id, states.get(session_id, PortfolioState()), last)
