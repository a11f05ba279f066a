"""Fixtures shared by every test: the real stack, unique names, topic and Redis factories.

The stack is the real one: a Kafka broker (KRaft) and a Redis, provided once per session by
`scripts/stack up` (which reuses whatever already answers at KAFKA_BOOTSTRAP_SERVERS /
REDIS_URL, else starts them). Nothing here skips: a stack that cannot be had fails the tests
that need it, with the script's output and the tail of the services' logs.

Tests under tests/integration and tests/faults, and any test that uses the `stack` fixture,
are marked `integration` at collection; tests under tests/faults are also marked `faults`.
Tests marked `redis_cluster` run twice, against the single Redis and against a Redis Cluster
(three masters, three replicas) that the session starts itself with
`scripts/stack start-redis-cluster` (and stops afterwards when it started it); a cluster
that cannot start fails those tests, never skips them.

Each test gets its own names (`topic_prefix`, `unique_name`), creates its own topics
(`create_topics`) and keys (`redis_client` under `redis_prefix`), and those are removed after.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import redis

ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = ROOT / "scripts" / "stack"
TESTS = Path(__file__).resolve().parent
STACK_DIRS = {"integration", "faults"}
# First `up` on a fresh machine installs redis-server and resolves Kafka's jars.
STACK_UP_TIMEOUT_S = 900
TOPIC_READY_TIMEOUT_S = 30.0
LOG_LINES_ON_FAILURE = 40
MAX_FAILURES_WITH_LOGS = 3


@dataclass(frozen=True)
class Stack:
    """Where the session's Kafka and Redis answer, and what `scripts/stack up` started."""

    bootstrap_servers: str
    redis_url: str
    started: tuple[str, ...]

    @staticmethod
    def logs(lines: int = 80) -> str:
        return stack_logs(lines)


def run_stack(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run scripts/stack with the interpreter running pytest (it needs only the stdlib)."""
    return subprocess.run(
        [sys.executable, str(STACK_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def stack_logs(lines: int = 80) -> str:
    try:
        done = run_stack("logs", "-n", str(lines), timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(scripts/stack logs failed: {exc})"
    return done.stdout + done.stderr


def parse_env_lines(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z_]+", key):
            found[key] = value.strip()
    return found


# --------------------------------------------------------------------------- collection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        except (ValueError, IndexError):
            top = ""
        if top in STACK_DIRS or "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
        if top == "faults":
            item.add_marker(pytest.mark.faults)


_failures_with_logs = 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of the Kafka and Redis logs to a failed integration test's report."""
    global _failures_with_logs
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed or item.get_closest_marker("integration") is None:
        return
    _failures_with_logs += 1
    if _failures_with_logs <= MAX_FAILURES_WITH_LOGS:
        report.sections.append(("scripts/stack logs", stack_logs(LOG_LINES_ON_FAILURE)))
    elif _failures_with_logs == MAX_FAILURES_WITH_LOGS + 1:
        report.sections.append(
            ("scripts/stack logs", "(more failures: run `scripts/stack logs` for the logs)")
        )


# --------------------------------------------------------------------------- the stack


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The session's Kafka and Redis; starts them (once) when nothing answers."""
    try:
        done = run_stack("up", timeout=STACK_UP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"scripts/stack up did not finish in {STACK_UP_TIMEOUT_S}s\n{stack_logs()}",
            pytrace=False,
        )
    env = parse_env_lines(done.stdout)
    if done.returncode != 0 or not {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"} <= env.keys():
        in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        pytest.fail(
            f"the stack could not be started{' (CI: a failure, never a skip)' if in_ci else ''}: "
            f"scripts/stack up exited {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\n--- logs\n{stack_logs()}",
            pytrace=False,
        )
    started = tuple(s for s in env.get("PTX_STACK_STARTED", "").split(",") if s)
    return Stack(env["KAFKA_BOOTSTRAP_SERVERS"], env["REDIS_URL"], started)


@pytest.fixture(scope="session")
def bootstrap_servers(stack: Stack) -> str:
    return stack.bootstrap_servers


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`redis_cluster`-marked tests that use Redis: once per kind of Redis."""
    marked = metafunc.definition.get_closest_marker("redis_cluster") is not None
    if marked and "redis_url" in metafunc.fixturenames:
        metafunc.parametrize("redis_url", ["redis", "cluster"], indirect=True)


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """The REDIS_URL (`redis+cluster://...`) of the Redis Cluster from scripts/stack."""
    try:
        done = run_stack("start-redis-cluster", timeout=STACK_UP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/stack start-redis-cluster did not finish", pytrace=False)
    env = parse_env_lines(done.stdout)
    if done.returncode != 0 or "REDIS_URL" not in env:
        pytest.fail(
            f"the Redis Cluster could not be started: scripts/stack start-redis-cluster "
            f"exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}",
            pytrace=False,
        )
    yield env["REDIS_URL"]
    if env.get("PTX_STACK_STARTED") and os.environ.get("PTX_KEEP_REDIS_CLUSTER") != "1":
        run_stack("stop-redis-cluster", timeout=120)


@pytest.fixture(scope="session")
def redis_url(stack: Stack, request: pytest.FixtureRequest) -> str:
    """The stack's Redis; for a `redis_cluster`-marked test, also the Redis Cluster's."""
    if getattr(request, "param", "redis") == "cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    return stack.redis_url


# --------------------------------------------------------------------------- names


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """`ptx-<test name>-<10 hex>.`: a prefix no other test (or run) shares."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:48].strip("-")
    return f"ptx-{base}-{uuid.uuid4().hex[:10]}."


@pytest.fixture
def unique_name(topic_prefix: str) -> Callable[[str], str]:
    """unique_name("fills") -> "<topic_prefix>fills": same kind, same name within one test.

    Use it for topics, consumer groups and transactional ids alike.
    """

    def make(kind: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", kind):
            raise ValueError(f"name part {kind!r} is not a legal Kafka topic name part")
        return f"{topic_prefix}{kind}"

    return make


# --------------------------------------------------------------------------- kafka topics


@pytest.fixture
def admin_client(bootstrap_servers: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap_servers})


@pytest.fixture
def create_topics(admin_client: Any) -> Iterator[Callable[..., tuple[str, ...]]]:
    """create_topics(*names, partitions=1, config=None) -> names, deleted after the test.

    Returns once every partition of every topic has a leader in the broker's metadata.
    """
    from confluent_kafka.admin import NewTopic

    created: list[str] = []

    def create(
        *names: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> tuple[str, ...]:
        new = [
            NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
            for name in names
        ]
        for name, future in admin_client.create_topics(new, operation_timeout=30).items():
            future.result(timeout=TOPIC_READY_TIMEOUT_S)
            created.append(name)
        deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
        while True:
            meta = admin_client.list_topics(timeout=10)
            ready = all(
                name in meta.topics
                and meta.topics[name].error is None
                and len(meta.topics[name].partitions) == partitions
                and all(p.leader >= 0 for p in meta.topics[name].partitions.values())
                for name in names
            )
            if ready:
                return names
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics {names} have no leaders after {TOPIC_READY_TIMEOUT_S}s")
            time.sleep(0.1)

    yield create

    if created:
        for future in admin_client.delete_topics(created, operation_timeout=30).values():
            # A topic the test already deleted itself is fine.
            with contextlib.suppress(Exception):
                future.result(timeout=30)


# --------------------------------------------------------------------------- redis


@pytest.fixture
def redis_prefix(topic_prefix: str) -> str:
    """A key prefix of this test's own, e.g. `ptx-test-name-0123456789:`."""
    return topic_prefix.rstrip(".") + ":"


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A Redis client; every key under `redis_prefix` is deleted after the test."""
    from portfolio_tx.store.cluster import client_from_url

    client: Any = client_from_url(redis_url)
    try:
        yield client
    finally:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{redis_prefix}*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        client.close()
