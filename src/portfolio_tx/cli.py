"""``portfolio-tx``: argument parsing and wiring; the only place that configures logging.

Every PortfolioTxError ends the command with one line on stderr saying what is wrong and
how to fix it, and a non-zero exit; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from portfolio_tx.config import Settings, load_settings, parse_cost_basis, parse_epsilon
from portfolio_tx.errors import PortfolioTxError

log = logging.getLogger("portfolio_tx.cli")

EXIT_ERROR = 2


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connections (override the environment)")
    group.add_argument("--bootstrap-servers", help="Kafka brokers [KAFKA_BOOTSTRAP_SERVERS]")
    group.add_argument("--redis-url", help="state store [REDIS_URL]")
    group.add_argument("--schema-registry-url", help="Confluent framing [SCHEMA_REGISTRY_URL]")
    group.add_argument("--topic-prefix", help="prefix of every topic name [PTX_TOPIC_PREFIX]")
    group.add_argument("--group-id", help="consumer group [PTX_GROUP_ID]")
    group.add_argument("--redis-namespace", help="first part of Redis keys [PTX_REDIS_NAMESPACE]")
    group.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (INFO)")
    group.add_argument("--log-format", choices=("text", "json"), default="text")


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance-id", help="stable per worker [PTX_INSTANCE_ID]")
    parser.add_argument("--cycle-timeout", type=float, help="seconds [PTX_CYCLE_TIMEOUT]")
    parser.add_argument("--max-mark-age", type=float, help="seconds [PTX_MAX_MARK_AGE]")
    parser.add_argument("--cost-basis", type=parse_cost_basis, help="fifo|average [PTX_COST_BASIS]")
    parser.add_argument("--epsilon", type=parse_epsilon, help="fixed tolerance [PTX_EPSILON]")
    parser.add_argument("--batch-size", type=int, help="records per poll [PTX_BATCH_SIZE]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portfolio-tx",
        description="Trading cycles staged from Kafka, validated with marks, committed once.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="run the worker until SIGTERM/SIGINT")
    _settings_flags(worker)
    _worker_flags(worker)

    topics = commands.add_parser("topics", help="manage the topics")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    create = topic_commands.add_parser("create", help="create the six topics (idempotent)")
    _settings_flags(create)
    create.add_argument("--partitions", type=int, default=6, help="co-partitioned count (6)")
    create.add_argument("--marks-partitions", type=int, help="marks topic (same as --partitions)")

    state = commands.add_parser("state", help="print a session's committed state")
    _settings_flags(state)
    state.add_argument("session")
    state.add_argument("--json", action="store_true", help="one JSON object (CONTRACT §5)")

    tail = commands.add_parser("tail", help="follow the commit topic, one line per outcome")
    _settings_flags(tail)
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, help="stop after this many outcomes")
    tail.add_argument("--idle-exit", type=float, help="stop after this many idle seconds")

    from portfolio_tx import demo, simulate

    sim = commands.add_parser("simulate", help="publish a realistic synthetic upstream stream")
    _settings_flags(sim)
    simulate.add_arguments(sim)

    run_demo = commands.add_parser("demo", help="the make-run demo: stack, worker, stream, tail")
    _settings_flags(run_demo)
    demo.add_arguments(run_demo)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    overrides: dict[str, Any] = {
        "bootstrap_servers": args.bootstrap_servers,
        "redis_url": args.redis_url,
        "schema_registry_url": args.schema_registry_url,
        "group_id": args.group_id,
        "redis_namespace": args.redis_namespace,
    }
    for name in ("instance_id", "cost_basis", "epsilon", "batch_size"):
        overrides[name] = getattr(args, name, None)
    overrides["cycle_timeout_s"] = getattr(args, "cycle_timeout", None)
    overrides["max_mark_age_s"] = getattr(args, "max_mark_age", None)
    if args.topic_prefix is not None:
        from portfolio_tx.kafka.admin import TopicNames

        overrides["topics"] = TopicNames.with_prefix(args.topic_prefix)
    return settings.with_overrides(**overrides)


def configure_logging(level: str, form: str) -> None:
    from portfolio_tx.logs import configure

    configure(level, form)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(args.log_level, args.log_format)
        settings = settings_from(args)
        return _dispatch(args, settings)
    except PortfolioTxError as exc:
        print(f"portfolio-tx: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "worker":
        from portfolio_tx.worker.build import build_worker

        worker = build_worker(settings)
        worker.install_signal_handlers()
        worker.run()
        return 0
    if args.command == "topics":
        from portfolio_tx.kafka.admin import create_topics

        created = create_topics(
            settings.bootstrap_servers, settings.topics, args.partitions, args.marks_partitions
        )
        for topic in settings.topics.all():
            print(f"{topic}: {'created' if topic in created else 'exists'}")
        return 0
    if args.command == "state":
        from portfolio_tx.views import state_json, state_text
        from portfolio_tx.worker.build import connect_store

        document = state_json(connect_store(settings), args.session)
        print(json.dumps(document) if args.json else state_text(document))
        return 0
    if args.command == "tail":
        from portfolio_tx.tail import follow

        follow(
            settings, from_beginning=args.from_beginning, limit=args.max, idle_exit=args.idle_exit
        )
        return 0
    if args.command == "simulate":
        from portfolio_tx import simulate

        return simulate.run(args, settings)
    if args.command == "demo":
        from portfolio_tx import demo

        return demo.run(args, settings)
    raise AssertionError(args.command)
