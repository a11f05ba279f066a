"""What an operator sees when the worker or the dashboard cannot start: one line on stderr
that says what is wrong and how to fix it, a non-zero exit, and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from pipeline import Pipeline

UNREACHABLE_BROKER_LIMIT_S = 15.0


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portfolio_tx", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(done: subprocess.CompletedProcess[str], *says: str) -> str:
    """The single stderr line of a failed command, checked to contain every phrase."""
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr}"
    for phrase in says:
        assert phrase in lines[0], lines[0]
    return lines[0]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PTX_", "KAFKA_", "REDIS_"))}
    return {**env, **extra}


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else is already listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_unreachable_broker_says_where_it_looked_and_which_variable_to_set() -> None:
    started = time.monotonic()
    done = run("worker", env=base_env(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"))
    elapsed = time.monotonic() - started
    one_line_error(done, "cannot reach Kafka at 127.0.0.1:1", "KAFKA_BOOTSTRAP_SERVERS")
    assert elapsed < UNREACHABLE_BROKER_LIMIT_S


def test_unreachable_redis_says_where_it_looked_and_which_variable_to_set(
    pipeline: Pipeline,
) -> None:
    done = run("worker", env=pipeline.env(REDIS_URL="redis://127.0.0.1:1/0"))
    one_line_error(done, "cannot reach Redis at redis://127.0.0.1:1/0", "REDIS_URL")


def test_missing_topics_are_named_with_the_command_that_creates_them(
    bootstrap_servers: str, redis_url: str, topic_prefix: str
) -> None:
    env = base_env(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
        REDIS_URL=redis_url,
        PTX_TOPIC_PREFIX=topic_prefix,
    )
    line = one_line_error(run("worker", env=env), "do not exist", "portfolio-tx topics create")
    assert f"{topic_prefix}portfolio.fills" in line


def test_topics_not_co_partitioned_are_refused_with_each_partition_count(
    bootstrap_servers: str,
    redis_url: str,
    topic_prefix: str,
    create_topics: Callable[..., tuple[str, ...]],
) -> None:
    names = [f"{topic_prefix}portfolio.{t}" for t in ("fills", "cycles", "commits", "deadletter")]
    create_topics(*names, partitions=3)
    create_topics(f"{topic_prefix}portfolio.pnl", partitions=2)
    create_topics(f"{topic_prefix}portfolio.marks", partitions=1)
    env = base_env(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
        REDIS_URL=redis_url,
        PTX_TOPIC_PREFIX=topic_prefix,
    )
    line = one_line_error(run("worker", env=env), "not co-partitioned", "--partitions")
    assert f"{topic_prefix}portfolio.pnl has 2" in line


@pytest.mark.parametrize(
    ("variable", "raw", "says"),
    [
        ("PTX_CYCLE_TIMEOUT", "abc", "PTX_CYCLE_TIMEOUT='abc' is not a number"),
        ("PTX_COST_BASIS", "lifo", "PTX_COST_BASIS='lifo' is not one of fifo, average"),
        ("PTX_METRICS_PORT", "http", "PTX_METRICS_PORT='http' is not a port number"),
        ("PTX_LOG_FORMAT", "yaml", "PTX_LOG_FORMAT='yaml' is not one of text, json"),
    ],
)
def test_a_malformed_environment_value_is_named_with_what_it_got(
    variable: str, raw: str, says: str
) -> None:
    one_line_error(run("worker", env=base_env(**{variable: raw})), says)


@pytest.mark.parametrize(
    ("flag", "raw", "says"),
    [
        ("--cost-basis", "lifo", "not one of fifo, average"),
        ("--metrics-port", "70000", "not a port number"),
        ("--cycle-timeout", "soon", "'soon' is not a number above 0"),
    ],
)
def test_a_malformed_flag_is_one_usage_line_pointing_at_help(
    flag: str, raw: str, says: str
) -> None:
    done = run("worker", flag, raw, env=base_env())
    line = one_line_error(done, flag, says, "see portfolio-tx worker --help")
    assert done.returncode == 2, line


def test_a_metrics_port_in_use_asks_for_another_port(pipeline: Pipeline, busy_port: int) -> None:
    done = run("worker", "--metrics-port", str(busy_port), env=pipeline.env())
    one_line_error(done, f"cannot serve metrics on 127.0.0.1:{busy_port}", "--metrics-port")


def test_dashboard_without_a_commit_topic_says_how_to_create_it(
    bootstrap_servers: str, topic_prefix: str
) -> None:
    env = base_env(KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers, PTX_TOPIC_PREFIX=topic_prefix)
    one_line_error(
        run("dashboard", "--port", "0", env=env),
        f"topic {topic_prefix}portfolio.commits does not exist",
        "portfolio-tx topics create",
    )


def test_dashboard_with_an_unreachable_broker_prints_none_of_librdkafkas_own_lines() -> None:
    done = run("dashboard", "--port", "0", env=base_env(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"))
    one_line_error(done, "cannot reach Kafka at 127.0.0.1:1", "KAFKA_BOOTSTRAP_SERVERS")


def test_dashboard_on_a_port_in_use_asks_for_another_port(busy_port: int) -> None:
    done = run("dashboard", "--port", str(busy_port), env=base_env())
    one_line_error(done, f"cannot serve the dashboard on 127.0.0.1:{busy_port}", "--port")
