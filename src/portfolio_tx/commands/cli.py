"""``portfolio-tx``: argument parsing and wiring; the only place that configures logging.

Every PortfolioTxError ends the command with one line on stderr saying what is wrong and
how to fix it, and exit code 2 (argparse's own errors exit 2 too); no traceback. A Kafka or
Redis error that escaped its adapter untranslated gets the same treatment here, the last
chokepoint. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from portfolio_tx.commands.flags import (
    LOCALHOST,
    OneLineParser,
    RunOptions,
    add_dashboard_flags,
    load_run_options,
    parse_port,
)
from portfolio_tx.config import (
    Settings,
    load_settings,
    parse_cost_basis,
    parse_epsilon,
    parse_positive_float,
    parse_positive_int,
)
from portfolio_tx.errors import PortfolioTxError
from portfolio_tx.logs import FORMATS, LEVELS, configure

log = logging.getLogger("portfolio_tx.commands.cli")

EXIT_ERROR = 2


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connections (override the environment)")
    group.add_argument("--bootstrap-servers", help="Kafka brokers [KAFKA_BOOTSTRAP_SERVERS]")
    group.add_argument("--redis-url", help="state store [REDIS_URL]")
    group.add_argument("--schema-registry-url", help="Confluent framing [SCHEMA_REGISTRY_URL]")
    group.add_argument("--topic-prefix", help="prefix of every topic name [PTX_TOPIC_PREFIX]")
    group.add_argument("--group-id", help="consumer group [PTX_GROUP_ID]")
    group.add_argument("--redis-namespace", help="first part of Redis keys [PTX_REDIS_NAMESPACE]")
    logs = parser.add_argument_group("logging")
    logs.add_argument("--log-level", type=str.upper, choices=LEVELS, help="[PTX_LOG_LEVEL] (INFO)")
    logs.add_argument(
        "--log-format", choices=FORMATS, help="text, or one JSON object a line [PTX_LOG_FORMAT]"
    )


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance-id", help="stable per worker [PTX_INSTANCE_ID]")
    # the settings' flags take the parsers their variables are read with (config.py)
    parser.add_argument(
        "--cycle-timeout", type=parse_positive_float, help="seconds [PTX_CYCLE_TIMEOUT]"
    )
    parser.add_argument(
        "--max-mark-age", type=parse_positive_float, help="seconds [PTX_MAX_MARK_AGE]"
    )
    parser.add_argument("--cost-basis", type=parse_cost_basis, help="fifo|average [PTX_COST_BASIS]")
    parser.add_argument("--epsilon", type=parse_epsilon, help="fixed tolerance [PTX_EPSILON]")
    parser.add_argument(
        "--batch-size", type=parse_positive_int, help="records per poll [PTX_BATCH_SIZE]"
    )
    limits = parser.add_argument_group("limits (a cycle past one is TOO_LARGE)")
    limits.add_argument(
        "--max-cycle-events",
        type=parse_positive_int,
        help="events per cycle [PTX_MAX_CYCLE_EVENTS] (100000)",
    )
    limits.add_argument(
        "--max-open-cycles",
        type=parse_positive_int,
        help="unmarked open cycles per session [PTX_MAX_OPEN_CYCLES] (64)",
    )
    limits.add_argument(
        "--max-buffered-mb",
        type=parse_positive_float,
        help="buffered MiB per worker [PTX_MAX_BUFFERED_MB] (256)",
    )
    limits.add_argument(
        "--open-cycle-timeout",
        type=parse_positive_float,
        help="seconds an unmarked cycle may stay open [PTX_OPEN_CYCLE_TIMEOUT] (300)",
    )
    parser.add_argument(
        "--metrics-port",
        type=parse_port,
        help="serve Prometheus metrics on this port, 0 = off [PTX_METRICS_PORT] (0)",
    )
    parser.add_argument(
        "--metrics-host",
        help=f"address the metrics endpoint binds [PTX_METRICS_HOST] ({LOCALHOST})",
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; with ``command``, the flags of the commands whose module
    brings its own only for that one (the others' modules, and what they import, are not
    loaded: a command starts, or refuses a bad value, without importing all of them)."""
    parser = OneLineParser(
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
    create.add_argument(
        "--partitions", type=parse_positive_int, default=6, help="co-partitioned count (6)"
    )
    create.add_argument(
        "--marks-partitions", type=parse_positive_int, help="marks topic (same as --partitions)"
    )
    create.add_argument(
        "--replication-factor", type=parse_positive_int, default=1, help="copies per partition (1)"
    )

    state = commands.add_parser("state", help="print a session's committed state")
    _settings_flags(state)
    state.add_argument("session")
    state.add_argument("--json", action="store_true", help="one JSON object (CONTRACT §5)")

    tail = commands.add_parser("tail", help="follow the commit topic, one line per outcome")
    _settings_flags(tail)
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, help="stop after this many outcomes")
    tail.add_argument("--idle-exit", type=float, help="stop after this many idle seconds")

    dashboard = commands.add_parser(
        "dashboard", help="a live web page of the commit topic (equity, positions, discards)"
    )
    _settings_flags(dashboard)
    add_dashboard_flags(dashboard)

    for name, (module, summary) in _COMMAND_MODULES.items():
        sub = commands.add_parser(name, help=summary)
        _settings_flags(sub)
        if command is None or command == name:
            importlib.import_module(module).add_arguments(sub)
    return parser


# Commands whose module brings its own flags: add_arguments(parser) and run(args, settings).
_COMMAND_MODULES = {
    "simulate": ("portfolio_tx.sim.publish", "publish a realistic synthetic upstream stream"),
    "demo": ("portfolio_tx.commands.demo.main", "the make-run demo: stack, worker, stream, tail"),
    "verify": ("portfolio_tx.audit.verify", "recompute from the input topics, diff Redis"),
    "replay": ("portfolio_tx.audit.replay", "reprocess the input topics into another namespace"),
    "check": ("portfolio_tx.commands.check", "exit 0 if the worker is alive and ready, else 1"),
}


def settings_from(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    overrides: dict[str, Any] = {
        "bootstrap_servers": args.bootstrap_servers,
        "redis_url": args.redis_url,
        "schema_registry_url": args.schema_registry_url,
        "group_id": args.group_id,
        "redis_namespace": args.redis_namespace,
    }
    for name in (
        "instance_id",
        "cost_basis",
        "epsilon",
        "batch_size",
        "max_cycle_events",
        "max_open_cycles",
        "max_buffered_mb",
    ):
        overrides[name] = getattr(args, name, None)
    overrides["open_cycle_timeout_s"] = getattr(args, "open_cycle_timeout", None)
    overrides["cycle_timeout_s"] = getattr(args, "cycle_timeout", None)
    overrides["max_mark_age_s"] = getattr(args, "max_mark_age", None)
    if args.topic_prefix is not None:
        from portfolio_tx.wire.topics import TopicNames

        overrides["topics"] = TopicNames.with_prefix(args.topic_prefix)
    return settings.with_overrides(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every value is parsed (flags, then the environment) before any
    connection is made, and a bad one ends the command with one line and EXIT_ERROR."""
    words = list(sys.argv[1:] if argv is None else argv)
    # the first word is the command (the top-level parser takes no option but --help)
    named = words[0] if words and not words[0].startswith("-") else None
    try:
        args = build_parser(named).parse_args(words)
        options = load_run_options(flags=args)
        settings = settings_from(args)
        configure(options.log_level, options.log_format)
        return _dispatch(args, settings, options)
    except PortfolioTxError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - only dependency errors are turned into a line
        line = _dependency_error(exc)
        if line is None:
            raise
        return _fail(line)


def _fail(line: str) -> int:
    print(f"portfolio-tx: {line}", file=sys.stderr)
    return EXIT_ERROR


def _dependency_error(exc: Exception) -> str | None:
    """One line for a Kafka or Redis error no adapter translated; None for anything else."""
    from confluent_kafka import KafkaException
    from redis import RedisError

    if isinstance(exc, KafkaException):
        from portfolio_tx.kafka.refusals import one_line

        return one_line(exc)
    if isinstance(exc, RedisError):
        return f"Redis error: {exc} — check REDIS_URL and that Redis is running"
    return None


def _dispatch(args: argparse.Namespace, settings: Settings, options: RunOptions) -> int:
    if args.command == "worker":
        return _run_worker(settings, options)
    if args.command == "dashboard":
        from portfolio_tx.dashboard.server import serve

        where: dict[str, Any] = {"host": options.dashboard_host, "port": options.dashboard_port}
        return serve(settings, **where, history=args.history, token=options.dashboard_token)
    if args.command == "topics":
        from portfolio_tx.kafka.admin import create_topics

        created = create_topics(
            settings,
            settings.topics,
            args.partitions,
            args.marks_partitions,
            replication_factor=args.replication_factor,
        )
        for topic in settings.topics.all():
            print(f"{topic}: {'created' if topic in created else 'exists'}")
        return 0
    if args.command == "state":
        from portfolio_tx.commands.views import state_json, state_text
        from portfolio_tx.worker.build import connect_store

        document = state_json(connect_store(settings), args.session)
        print(json.dumps(document) if args.json else state_text(document))
        return 0
    if args.command == "tail":
        from portfolio_tx.commands.tail import follow

        follow(
            settings, from_beginning=args.from_beginning, limit=args.max, idle_exit=args.idle_exit
        )
        return 0
    if args.command in _COMMAND_MODULES:
        module = importlib.import_module(_COMMAND_MODULES[args.command][0])
        code: int = module.run(args, settings)
        return code
    raise AssertionError(args.command)


def _run_worker(settings: Settings, options: RunOptions) -> int:
    from portfolio_tx.worker.build import build_worker

    worker = build_worker(settings)
    metrics = None
    if options.metrics_port:
        from portfolio_tx.worker.metrics import serve_metrics

        metrics = serve_metrics(worker.stats, options.metrics_port, options.metrics_host)
        log.info("metrics at %s", metrics.url)
    worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        if metrics is not None:
            metrics.close()
    return 0
