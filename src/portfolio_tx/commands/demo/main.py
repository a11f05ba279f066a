"""``portfolio-tx demo``: its flags and its run (the steps are in the package docstring)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from portfolio_tx.commands.demo.processes import (
    linger,
    log_tail,
    start_dashboard,
    start_worker,
    stop_process,
    wait_until_assigned,
)
from portfolio_tx.commands.demo.readers import OutcomeTail, read_dead_letters
from portfolio_tx.commands.demo.report import report
from portfolio_tx.commands.flags import parse_port
from portfolio_tx.config import Settings, parse_positive_float, parse_positive_int
from portfolio_tx.kafka.admin import admin_client, create_topics
from portfolio_tx.kafka.publisher import Publisher
from portfolio_tx.security import redacted_url
from portfolio_tx.sim.publish import publish, state_differences
from portfolio_tx.sim.upstream import SimConfig, generate
from portfolio_tx.store import RedisStateStore
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.topics import TopicNames
from portfolio_tx.worker.build import connect_store


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
    redis_at = redacted_url(settings.redis_url)
    print(f"portfolio-tx demo — Kafka {settings.bootstrap_servers}, Redis {redis_at}")
    print(f"  topics {prefix}portfolio.* ({args.partitions} partitions), Redis namespace {name}")
    create_topics(settings, settings.topics, args.partitions)
    store = connect_store(settings)
    log_path = Path(tempfile.gettempdir()) / f"portfolio-tx-{name}-worker.log"
    worker = start_worker(settings, log_path)
    print(
        f"  worker pid {worker.pid} starting (cycle timeout {args.cycle_timeout:g} s), "
        f"log {log_path}"
    )
    tail = OutcomeTail(settings, args.sessions * args.cycles, quiet=args.quiet)
    dashboard = start_dashboard(settings, args.dashboard_port, log_path)
    try:
        if not wait_until_assigned(worker, log_path, timeout=60):
            print(f"the worker did not start:\n{log_tail(log_path)}", file=sys.stderr)
            return 1
        upstream = generate(config)
        tail.start()
        print(
            f"  publishing {args.sessions} sessions × {args.cycles} cycles, fault rate "
            f"{args.fault_rate:g}, {'flat out' if args.rate <= 0 else f'{args.rate:g}/s'}; "
            "outcomes as the worker publishes them:\n"
        )
        publisher = Publisher(settings, settings.topics, Codec(settings.schema_registry_url))
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
        exit_code = stop_process(worker)
        if tail.is_alive():
            tail.stop()
    code = report(
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
        linger(dashboard, args.dashboard_port)
    if args.cleanup:
        _delete(settings, store)
    return code


def _delete(settings: Settings, store: RedisStateStore) -> None:
    admin = admin_client(settings)
    for future in admin.delete_topics(list(settings.topics.all()), operation_timeout=30).values():
        future.result(timeout=30)
    keys = list(store.client.scan_iter(match=f"{settings.redis_namespace}:*", count=1000))
    if keys:
        store.client.delete(*keys)
    print(f"  deleted the demo's topics and {len(keys)} Redis keys")
