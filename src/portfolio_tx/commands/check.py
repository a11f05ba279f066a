"""``portfolio-tx check``: exit 0 if the worker is alive and ready, else 1 (one line why).

``--alive`` asks only whether the worker's loop turns (a liveness probe): a worker that
holds no partitions (more workers than partitions) is alive but never ready, and
restarting it would not help.
"""

from __future__ import annotations

import argparse

from portfolio_tx.config import Settings, parse_positive_float
from portfolio_tx.worker.build import connect_store
from portfolio_tx.worker.health import check, heartbeat_key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance-id", help="the worker to check [PTX_INSTANCE_ID]")
    parser.add_argument("--max-age", type=parse_positive_float, default=5.0, help="seconds (5)")
    parser.add_argument(
        "--alive", action="store_true", help="exit 0 when alive, ready or not (liveness)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    instance = args.instance_id or settings.instance_id
    store = connect_store(settings)
    health = check(
        store.client, heartbeat_key(settings.redis_namespace, instance), max_age_s=args.max_age
    )
    print(f"{instance}: {health.detail}")
    return 0 if health.alive and (health.ready or args.alive) else 1
