"""``portfolio-tx demo`` (what ``make run`` runs): the whole pipeline on a simulated stream.

1. creates a fresh topic set ``demo-<timestamp>.portfolio.*`` (and a Redis namespace, group
   and transactional id of that name): a rerun never meets an earlier run's marks (the marks
   topic is compacted, never emptied), decided cycles or outcomes, and a worker running on
   the default topics is left alone;
2. starts ``portfolio-tx worker`` as a subprocess with a short cycle timeout (3 s), so the
   cycles that never complete are discarded quickly;
3. publishes a simulated upstream with faults (``portfolio_tx.sim.upstream``), paced so a person
   can follow it, and prints every outcome as the worker publishes it;
4. compares what happened with what the simulator expected: outcomes per reason, one
   outcome per cycle, dead letters, every session's Redis state against the model;
5. stops the worker with SIGTERM and checks that it exits 0.

Returns 0 only if everything matched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka.admin import AdminClient

from portfolio_tx.commands.flags import parse_port
from portfolio_tx.commands.views import outcome_line
from portfolio_tx.config import Settings, parse_positive_float, parse_positive_int
from portfolio_tx.errors import DecodeError
from portfolio_tx.kafka.admin import create_topics
from portfolio_tx.kafka.clients import make_consumer
from portfolio_tx.kafka.publisher import Publisher
from portfolio_tx.sim.publish import Published, outcome_order, publish, state_differences
from portfolio_tx.sim.upstream import COMMIT, SimConfig, Upstream, generate
from portfolio_tx.store import RedisStateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleOutcome
from portfolio_tx.wire.topics import TopicNames
from portfolio_tx.worker.build import connect_store

DLQ_HEADERS = ("source.topic", "source.partition", "source.offset", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the demo")
    group.add_argument(
        "--sessions", type=parse_positive_int, default=30, help="trading sessions (30)"
    )
    group.add_argument(
        "--cycles", type=parse_positive_int, default=10, help="cycles per session (10)"
    )
    group.add_argument("--fault-rate", type=float, default=0.15, help="faulty cycles (0.15)")
    group.add_argument("--seed", type=int, default=2026, help="simulator seed (2026)")
    group.add_argument(
        "--rate", type=float, default=400.0, help="records published per second, 0 = flat out (400)"
    )
    group.add_argument(
        "--partitions", type=parse_positive_int, default=3, help="partitions per topic (3)"
    )
    group.add_argument(
        "--cycle-timeout",
        type=parse_positive_float,
        default=3.0,
        help="the worker's cycle timeout in seconds (3)",
    )
    group.add_argument("--quiet", action="store_true", help="no live outcome lines")
    group.add_argument(
        "--dashboard-port",
        type=parse_port,
        default=8765,
        help="serve the live dashboard of the demo here, 0 = none (8765)",
    )
    group.add_argument(
        "--cleanup",
        action="store_true",
        help="delete the demo's topics and Redis keys at the end (kept by default, to look around)",
    )


def _reader(settings: Settings, topic: str) -> Any:
    """A read_committed consumer assigned to every partition of ``topic`` from the start."""
    consumer = make_consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"portfolio-tx-demo-reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    return consumer


class OutcomeTail(threading.Thread):
    """Follows the commit topic in the background, printing each outcome as it arrives."""

    def __init__(self, settings: Settings, expected: int, *, quiet: bool) -> None:
        super().__init__(name="outcome-tail", daemon=True)
        self.outcomes: list[CycleOutcome] = []
        self.last_at = 0.0
        self._settings, self._expected, self._quiet = settings, expected, quiet
        self._halt = threading.Event()

    def run(self) -> None:
        topic = self._settings.topics.commits
        consumer, codec = _reader(self._settings, topic), Codec(self._settings.schema_registry_url)
        width = len(str(self._expected))
        try:
            while not self._halt.is_set():
                for message in consumer.consume(200, timeout=0.2):
                    if message.error() is not None:
                        continue
                    try:
                        outcome = codec.decode(
                            message.value(),
                            topic=topic,
                            partition=message.partition(),
                            offset=message.offset(),
                            expected=CycleOutcome,
                        )
                    except DecodeError as exc:
                        print(f"  undecodable outcome: {exc}", flush=True)
                        continue
                    self.outcomes.append(outcome)
                    self.last_at = time.monotonic()
                    if not self._quiet:
                        line = outcome_line(outcome)
                        print(f"  {len(self.outcomes):>{width}}  {line}", flush=True)
        finally:
            consumer.close()

    def wait_for(self, count: int, timeout: float, worker: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < count and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # an outcome too many would show up now

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def read_dead_letters(settings: Settings, expected: int, timeout: float = 15.0) -> tuple[int, int]:
    """(records on the dead-letter topic, how many of them lack a source/error header)."""
    consumer = _reader(settings, settings.topics.deadletter)
    count = incomplete = 0
    deadline, quiet_until = time.monotonic() + timeout, time.monotonic() + 2.0
    try:
        while time.monotonic() < deadline and (count < expected or time.monotonic() < quiet_until):
            for message in consumer.consume(200, timeout=0.2):
                if message.error() is None:
                    count += 1
                    names = {name for name, _ in message.headers() or []}
                    incomplete += not names.issuperset(DLQ_HEADERS)
                    quiet_until = time.monotonic() + 1.0
    finally:
        consumer.close()
    return count, incomplete


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "PTX_TOPIC_PREFIX": settings.topics.fills.removesuffix(TopicNames().fills),
        "PTX_GROUP_ID": settings.group_id,
        "PTX_INSTANCE_ID": settings.instance_id,
        "PTX_REDIS_NAMESPACE": settings.redis_namespace,
        "PTX_CYCLE_TIMEOUT": str(settings.cycle_timeout_s),
        "PTX_MAX_MARK_AGE": str(settings.max_mark_age_s),
        "PTX_COST_BASIS": settings.cost_basis.value,
    }
    if settings.schema_registry_url:
        env["SCHEMA_REGISTRY_URL"] = settings.schema_registry_url
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "portfolio_tx", "worker", "--log-level", "INFO"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait_until_assigned(worker: subprocess.Popen[bytes], log_path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if "assigned [" in log_path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def _stop_worker(worker: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, wait up to 30 s; the exit code, or None if it had to be killed."""
    if worker.poll() is not None:
        return worker.returncode
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return None


def _log_tail(log_path: Path, lines: int = 15) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def run(args: argparse.Namespace, settings: Settings) -> int:
    prefix = args.topic_prefix or time.strftime("demo-%Y%m%d-%H%M%S.")
    name = prefix.rstrip(".")
    settings = replace(
        settings,
        topics=TopicNames.with_prefix(prefix),
        group_id=args.group_id or name,
        instance_id=f"{name}-worker",
        redis_namespace=args.redis_namespace or name,
        cycle_timeout_s=args.cycle_timeout,
    )
    config = SimConfig(
        sessions=args.sessions,
        cycles=args.cycles,
        fault_rate=args.fault_rate,
        seed=args.seed,
        cost_basis=settings.cost_basis,
        max_mark_age_s=settings.max_mark_age_s,
        start_ms=int(time.time() * 1000),
        session_prefix="s",
    )
    print(f"portfolio-tx demo — Kafka {settings.bootstrap_servers}, Redis {settings.redis_url}")
    print(f"  topics {prefix}portfolio.* ({args.partitions} partitions), Redis namespace {name}")
    create_topics(settings.bootstrap_servers, settings.topics, args.partitions)
    store = connect_store(settings)
    log_path = Path(tempfile.gettempdir()) / f"portfolio-tx-{name}-worker.log"
    worker = _start_worker(settings, log_path)
    print(
        f"  worker pid {worker.pid} starting (cycle timeout {args.cycle_timeout:g} s), "
        f"log {log_path}"
    )
    tail = OutcomeTail(settings, args.sessions * args.cycles, quiet=args.quiet)
    dashboard = _start_dashboard(settings, args.dashboard_port, log_path)
    try:
        if not _wait_until_assigned(worker, log_path, timeout=60):
            print(f"the worker did not start:\n{_log_tail(log_path)}", file=sys.stderr)
            return 1
        upstream = generate(config)
        tail.start()
        print(
            f"  publishing {args.sessions} sessions × {args.cycles} cycles, fault rate "
            f"{args.fault_rate:g}, {'flat out' if args.rate <= 0 else f'{args.rate:g}/s'}; "
            "outcomes as the worker publishes them:\n"
        )
        publisher = Publisher(
            settings.bootstrap_servers, settings.topics, Codec(settings.schema_registry_url)
        )
        try:
            sent = publish(upstream, publisher, settings.topics, rate=args.rate)
        finally:
            publisher.close()
        tail.wait_for(len(upstream.cycles), timeout=60 + 2 * args.cycle_timeout, worker=worker)
        dead, headerless = read_dead_letters(settings, upstream.dead_letters)
        differing = {
            s: d
            for s in upstream.session_ids
            if (d := state_differences(upstream.states[s], store.load(s).state))
        }
    finally:
        exit_code = _stop_worker(worker)
        if tail.is_alive():
            tail.stop()
    code = _report(
        upstream,
        tail,
        sent,
        rate=args.rate,
        dead=dead,
        headerless=headerless,
        differing=differing,
        exit_code=exit_code,
        log_path=log_path,
        settings=None if args.cleanup else settings,
    )
    if dashboard is not None:
        _linger(dashboard, args.dashboard_port)
    if args.cleanup:
        _delete(settings, store)
    return code


def _start_dashboard(
    settings: Settings, port: int, log_path: Path
) -> subprocess.Popen[bytes] | None:
    """``portfolio-tx dashboard`` on the demo's topics, so a person can watch it live."""
    if port <= 0:
        return None
    prefix = settings.topics.fills.removesuffix(TopicNames().fills)
    with log_path.with_suffix(".dashboard.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portfolio_tx",
                "dashboard",
                "--port",
                str(port),
                "--topic-prefix",
                prefix,
                "--bootstrap-servers",
                settings.bootstrap_servers,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    print(f"  live dashboard: http://127.0.0.1:{port}/  (open it now)")
    return process


def _linger(dashboard: subprocess.Popen[bytes], port: int) -> None:
    """Keep the dashboard up for a person at a terminal until Enter; stop it otherwise."""
    if sys.stdin.isatty() and dashboard.poll() is None:
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input(f"\n  the dashboard stays at http://127.0.0.1:{port}/ — press Enter to stop it ")
    _stop_worker(dashboard)


def _delete(settings: Settings, store: RedisStateStore) -> None:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    for future in admin.delete_topics(list(settings.topics.all()), operation_timeout=30).values():
        future.result(timeout=30)
    keys = list(store.client.scan_iter(match=f"{settings.redis_namespace}:*", count=1000))
    if keys:
        store.client.delete(*keys)
    print(f"  deleted the demo's topics and {len(keys)} Redis keys")


def _report(
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
