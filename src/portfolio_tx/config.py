"""Settings: read from the environment once, overridden by command-line flags, then frozen.

Every variable, its default and its meaning (the README's configuration table mirrors this):

    KAFKA_BOOTSTRAP_SERVERS   localhost:9092              brokers
    REDIS_URL                 redis://localhost:6379/0    state store
    SCHEMA_REGISTRY_URL       (unset)                     Confluent framing when set
    PTX_TOPIC_PREFIX          (empty)                     prefix for every topic name
    PTX_TOPIC_FILLS ... PTX_TOPIC_DEADLETTER              one topic's full name
    PTX_GROUP_ID              portfolio-tx                consumer group
    PTX_INSTANCE_ID           <hostname>                  stable per worker: transactional.id
    PTX_REDIS_NAMESPACE       ptx                         first part of every Redis key
    PTX_CYCLE_TIMEOUT         30                          seconds a marked cycle may wait
    PTX_MAX_MARK_AGE          300                         seconds before a mark is stale
    PTX_COST_BASIS            fifo                        fifo | average
    PTX_EPSILON               (unset)                     fixed tolerance instead of the rule
    PTX_TRANSACTION_TIMEOUT_MS 10000                      Kafka transaction.timeout.ms
    PTX_BATCH_SIZE            2000                        records per transaction (at most)
    PTX_MAX_CYCLE_EVENTS      100000                      distinct events one cycle may hold
    PTX_MAX_OPEN_CYCLES       64                          unmarked open cycles one session may hold
    PTX_MAX_BUFFERED_MB       256                         buffered events per worker, MiB
    PTX_OPEN_CYCLE_TIMEOUT    300                         seconds an unmarked cycle may stay open

plus the connection security variables (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*,
KAFKA_CONFIG_FILE, REDIS_USERNAME, REDIS_PASSWORD[_FILE], REDIS_SSL_*): see ``security``.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from portfolio_tx.errors import ConfigError
from portfolio_tx.ledger import CostBasis, D
from portfolio_tx.security import (
    KafkaSecurity,
    RedisSecurity,
    kafka_security_from_env,
    redis_security_from_env,
)
from portfolio_tx.wire.topics import TopicNames

_TOPIC_FIELDS = ("fills", "pnl", "cycles", "marks", "commits", "deadletter")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the CLI and the worker are configured with."""

    bootstrap_servers: str = "localhost:9092"
    redis_url: str = "redis://localhost:6379/0"
    schema_registry_url: str | None = None
    topics: TopicNames = field(default_factory=TopicNames)
    group_id: str = "portfolio-tx"
    instance_id: str = field(default_factory=socket.gethostname)
    redis_namespace: str = "ptx"
    cycle_timeout_s: float = 30.0
    max_mark_age_s: float = 300.0
    cost_basis: CostBasis = CostBasis.FIFO
    epsilon: Decimal | None = None
    transaction_timeout_ms: int = 10_000
    batch_size: int = 2000  # fixed costs per transaction: bench/RESULTS.md, finding 3
    max_cycle_events: int = 100_000  # past it: TOO_LARGE (a 50,000-fill cycle is valid)
    max_open_cycles: int = 64  # unmarked, per session; past it a new cycle is TOO_LARGE
    max_buffered_mb: float = 256.0  # per worker; at it the busiest partitions are paused
    open_cycle_timeout_s: float = 300.0  # record time an unmarked cycle may stay open
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    redis_security: RedisSecurity = field(default_factory=RedisSecurity)

    @property
    def transactional_id(self) -> str:
        """Stable per worker instance, so a restarted instance fences its zombie."""
        return f"{self.group_id}-{self.instance_id}"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced (flags given on the command line)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _given(raw: str, name: str | None, what: str) -> str:
    """How an error names the bad value: ``VARIABLE='raw'``, or ``what 'raw'`` for a flag
    (argparse has already said which flag)."""
    return f"{name}={raw!r}" if name else f"{what} {raw!r}"


def parse_positive_int(raw: str, name: str | None = None) -> int:
    """A whole number > 0; ConfigError naming ``name`` (the variable) otherwise."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{_given(raw, name, 'value')} is not a whole number above 0")
    return value


def parse_positive_float(raw: str, name: str | None = None) -> float:
    """A finite number > 0 (seconds, MiB); ConfigError naming ``name`` otherwise."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{_given(raw, name, 'value')} is not a number above 0")
    return value


def parse_cost_basis(raw: str, name: str | None = None) -> CostBasis:
    try:
        return CostBasis(raw.strip().lower())
    except ValueError as exc:
        choices = ", ".join(b.value for b in CostBasis)
        raise ConfigError(f"{_given(raw, name, 'cost basis')} is not one of {choices}") from exc


def parse_epsilon(raw: str, name: str | None = None) -> Decimal:
    """The fixed tolerance: a decimal >= 0, parsed here once and carried as this Decimal
    through ``Settings.epsilon`` to ``ledger.epsilon_for``."""
    try:
        value = D(raw)
    except ValueError as exc:
        raise ConfigError(f"{_given(raw, name, 'epsilon')} is not a decimal number") from exc
    if value < 0:
        raise ConfigError(f"{_given(raw, name, 'epsilon')} must not be negative")
    return value


# The typed variables: name -> (Settings field, parser). load_settings reads exactly these
# beside the plain strings, and tests/integration/test_cli_errors.py feeds each a bad value.
TYPED_VARIABLES: Mapping[str, tuple[str, Callable[[str, str], Any]]] = {
    "PTX_CYCLE_TIMEOUT": ("cycle_timeout_s", parse_positive_float),
    "PTX_MAX_MARK_AGE": ("max_mark_age_s", parse_positive_float),
    "PTX_COST_BASIS": ("cost_basis", parse_cost_basis),
    "PTX_EPSILON": ("epsilon", parse_epsilon),
    "PTX_TRANSACTION_TIMEOUT_MS": ("transaction_timeout_ms", parse_positive_int),
    "PTX_BATCH_SIZE": ("batch_size", parse_positive_int),
    "PTX_MAX_CYCLE_EVENTS": ("max_cycle_events", parse_positive_int),
    "PTX_MAX_OPEN_CYCLES": ("max_open_cycles", parse_positive_int),
    "PTX_MAX_BUFFERED_MB": ("max_buffered_mb", parse_positive_float),
    "PTX_OPEN_CYCLE_TIMEOUT": ("open_cycle_timeout_s", parse_positive_float),
}


def topics_from_env(env: Mapping[str, str]) -> TopicNames:
    names = TopicNames.with_prefix(env.get("PTX_TOPIC_PREFIX", ""))
    explicit = {
        name: env[f"PTX_TOPIC_{name.upper()}"]
        for name in _TOPIC_FIELDS
        if env.get(f"PTX_TOPIC_{name.upper()}")
    }
    return replace(names, **explicit)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: the process environment) once.

    Raises ConfigError naming the variable when a value is malformed.
    """
    env = os.environ if env is None else env
    defaults = Settings()
    typed = {
        field_name: parse(raw, name)
        for name, (field_name, parse) in TYPED_VARIABLES.items()
        if (raw := env.get(name, "").strip())
    }
    return replace(
        defaults,
        bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or defaults.bootstrap_servers,
        redis_url=env.get("REDIS_URL") or defaults.redis_url,
        schema_registry_url=env.get("SCHEMA_REGISTRY_URL") or None,
        topics=topics_from_env(env),
        group_id=env.get("PTX_GROUP_ID") or defaults.group_id,
        instance_id=env.get("PTX_INSTANCE_ID") or defaults.instance_id,
        redis_namespace=env.get("PTX_REDIS_NAMESPACE") or defaults.redis_namespace,
        kafka_security=kafka_security_from_env(env),
        redis_security=redis_security_from_env(env),
        **typed,
    )
