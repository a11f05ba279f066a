"""Issue 14 on the secured stack (`scripts/stack up --secure`): a SASL_SSL broker with ACLs
and a TLS-only Redis with ACL users, started once for this module and stopped after it.

Each principal connects with its own settings (the stack's env.<principal> files); every
CLI output, error text and log line of these tests is kept in TRANSCRIPT, and the last
test greps it (and the stack's logs) for every password.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pipeline import Pipeline
from test_worker_worked_example import WORKED_EXAMPLE_OUTCOMES, publish_worked_example

from portfolio_tx.config import Settings, load_settings
from portfolio_tx.errors import KafkaSetupError, StateStoreError
from portfolio_tx.kafka.admin import check_copartitioned, create_topics
from portfolio_tx.kafka.publisher import Publisher
from portfolio_tx.security import KafkaSecurity, RedisSecurity, SecurityProtocol
from portfolio_tx.wire.events import Fill
from portfolio_tx.worker.build import connect_store

ROOT = Path(__file__).resolve().parents[2]
PRINCIPALS = ("ptx-admin", "ptx-worker", "ptx-reader", "ptx-upstream")
TRANSCRIPT: list[str] = []


@dataclass(frozen=True)
class Secured:
    state: Path
    env: dict[str, str]

    def principal_env(self, principal: str) -> dict[str, str]:
        lines = (self.state / f"env.{principal}").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def settings(self, principal: str, **env: str) -> Settings:
        return load_settings({**self.principal_env(principal), "PTX_CYCLE_TIMEOUT": "3", **env})

    def password(self, principal: str) -> str:
        return (self.state / "secrets" / f"{principal}.password").read_text().strip()


def _stack(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PTX_", "KAFKA_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack"), *args, "--secure"],
        env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def secured() -> Iterator[Secured]:
    """The secured stack: started here when it is not running (a failure, never a skip,
    when it cannot start) and stopped afterwards if this fixture started it."""
    done = _stack("up")
    TRANSCRIPT.append(done.stdout + done.stderr)
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if done.returncode != 0 or "PTX_STACK_SECRETS" not in env:
        logs = _stack("logs").stdout
        pytest.fail(f"scripts/stack up --secure failed:\n{done.stderr}\n{logs}", pytrace=False)
    secured = Secured(Path(env["PTX_STACK_SECRETS"]).parent, env)
    create_topics(secured.settings("ptx-admin"), Settings().topics, partitions=3)
    yield secured
    gc.collect()  # the refused publishers' clients, before their broker goes away
    if env.get("PTX_STACK_STARTED"):
        _stack("down")


def cli(
    secured: Secured, principal: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("PTX_", "KAFKA_", "REDIS_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "portfolio_tx", *args],
        env={**inherited, **secured.principal_env(principal), "PTX_CYCLE_TIMEOUT": "3", **env},
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    TRANSCRIPT.append(done.stdout + done.stderr)
    return done


def refused(done: subprocess.CompletedProcess[str], starts: str) -> str:
    """The one error line of a refused command (librdkafka's log lines may precede it)."""
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("portfolio-tx:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    assert errors[0].startswith(f"portfolio-tx: {starts}"), errors[0]
    return errors[0]


def test_the_worker_decides_the_worked_example_on_the_secured_stack(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = f"desk-{uuid.uuid4().hex[:8]}"
    worker = secured.settings("ptx-worker")
    pipeline = Pipeline(
        worker, connect_store(worker), Publisher(secured.settings("ptx-upstream"), worker.topics)
    )
    publish_worked_example(pipeline, session)
    pipeline.publisher.close()
    stats = pipeline.run_worker(max_cycles=6)
    assert stats.committed == 4, stats.summary()
    mine = [o for o in pipeline.outcomes(expected=6) if o.session_id == session]
    assert [(o.cycle_id, o.outcome, o.reason) for o in mine] == WORKED_EXAMPLE_OUTCOMES
    # the read-only principal sees it all: state, the commit topic, a clean verify
    shown = cli(secured, "ptx-reader", "state", session, "--json")
    assert shown.returncode == 0 and '"equity": "101934.6"' in shown.stdout, shown.stderr
    tailed = cli(secured, "ptx-reader", "tail", "--from-beginning", "--idle-exit", "2")
    assert tailed.returncode == 0 and tailed.stdout.count(session) == 6, tailed.stderr
    verified = cli(secured, "ptx-reader", "verify", "--session", session)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    TRANSCRIPT.append(caplog.text + repr(worker))


def _listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            if width == 8:
                shown = ".".join(str(b) for b in raw[::-1])
            else:  # four little-endian 32-bit words
                words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                shown = str(ipaddress.IPv6Address(b"".join(words)))
            found.append((shown, int(port, 16)))
    return found


def test_the_secured_stack_listens_on_loopback_only(secured: Secured) -> None:
    pids = [int((secured.state / f"{name}.pid").read_text()) for name in ("kafka", "redis")]
    sockets = {pid: _listening(pid) for pid in pids}
    for pid, listening in sockets.items():
        assert listening, f"process {pid} listens on nothing we can see"
        for address, port in listening:
            ip = ipaddress.ip_address(address)
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            assert (mapped or ip).is_loopback, f"process {pid} listens on {address}:{port}"
    ports = {port for listening in sockets.values() for _, port in listening}
    assert {19192, 16390} <= ports, ports


def test_clients_without_credentials_are_refused(secured: Secured) -> None:
    ca = secured.env["KAFKA_SSL_CA_LOCATION"]
    for security in (
        KafkaSecurity(),  # plaintext to the SASL_SSL listener
        KafkaSecurity(protocol=SecurityProtocol.SSL, ca_location=ca),  # TLS, no login
    ):
        anonymous = Settings(
            bootstrap_servers=secured.env["KAFKA_BOOTSTRAP_SERVERS"], kafka_security=security
        )
        with pytest.raises(KafkaSetupError, match="cannot reach Kafka") as caught:
            check_copartitioned(anonymous, anonymous.topics, timeout=3)
        TRANSCRIPT.append(str(caught.value))
    nobody = Settings(
        redis_url=secured.env["REDIS_URL"], redis_security=RedisSecurity(ssl_ca_certs=ca)
    )
    with pytest.raises(StateStoreError, match="Redis authentication failed") as denied:
        connect_store(nobody)
    plain = Settings(redis_url=secured.env["REDIS_URL"].replace("rediss://", "redis://"))
    with pytest.raises(StateStoreError, match="cannot reach Redis"):
        connect_store(plain)
    TRANSCRIPT.append(str(denied.value))


def _fill(session: str) -> Fill:
    from decimal import Decimal

    from portfolio_tx.ledger import Side

    return Fill("e-1", session, 1, "BTC/USDT", Side.BUY, Decimal(1), Decimal(1), Decimal(0), 0)


@pytest.mark.parametrize("principal", ["ptx-worker", "ptx-reader"])
@pytest.mark.parametrize("idempotent", [True, False])
def test_worker_and_reader_cannot_write_input_topics(
    secured: Secured, principal: str, idempotent: bool
) -> None:
    """Refused on the topic; the reader's idempotent producer already on the cluster (it
    has no IdempotentWrite), so the non-idempotent case shows the topic ACL too."""
    settings = secured.settings(principal)
    publisher = Publisher(settings, settings.topics, **{"enable.idempotence": idempotent})
    publisher.publish(_fill("intruder"))
    denied = "not authorised on topic portfolio.fills"
    if principal == "ptx-reader" and idempotent:
        denied = "not authorised on cluster"
    with pytest.raises(KafkaSetupError, match=denied) as caught:
        publisher.flush(timeout=15)
    assert f"as {principal}" in str(caught.value)
    TRANSCRIPT.append(str(caught.value))


def test_redis_users_are_held_to_their_namespace_and_commands(secured: Secured) -> None:
    worker = connect_store(secured.settings("ptx-worker")).client
    worker.set("ptx:probe", "1")
    assert worker.get("ptx:probe") == b"1"
    worker.delete("ptx:probe")
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.get("other:key")
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.flushall()
    reader = connect_store(secured.settings("ptx-reader")).client
    assert reader.get("ptx:nothing") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.set("ptx:probe", "1")


def test_wrong_password_wrong_ca_and_missing_acl_are_one_line_errors(
    secured: Secured, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=someone else", "-keyout", str(tmp_path / "k"), "-out", str(other_ca)],
        check=True, capture_output=True,
    )  # fmt: skip
    wrong = {
        "KAFKA_SASL_PASSWORD_FILE": "",
        "KAFKA_SASL_PASSWORD": "not-" + secured.password("ptx-worker"),
    }
    refused(cli(secured, "ptx-worker", "worker", **wrong), "Kafka authentication failed")
    untrusted = {"KAFKA_SSL_CA_LOCATION": str(other_ca)}
    refused(cli(secured, "ptx-worker", "worker", **untrusted), "TLS verification failed for Kafka")
    elsewhere = cli(secured, "ptx-worker", "topics", "create", PTX_TOPIC_PREFIX="elsewhere.")
    line = refused(elsewhere, "not authorised on topic elsewhere.portfolio.")
    assert "as ptx-worker" in line
    # the read-only principal has no transactional id: it cannot run a worker
    refused(cli(secured, "ptx-reader", "worker"), "not authorised on transactional id")
    wrong_redis = {"REDIS_PASSWORD_FILE": "", "REDIS_PASSWORD": "wrong"}
    refused(cli(secured, "ptx-reader", "state", "s", **wrong_redis), "Redis authentication failed")
    refused(
        cli(secured, "ptx-reader", "state", "s", REDIS_SSL_CA_CERTS=str(other_ca)),
        "TLS verification failed for Redis",
    )


def test_no_password_is_in_any_output_error_or_log(secured: Secured) -> None:
    """Runs last: everything the tests above printed, raised and logged, and the stack's
    own logs, hold none of the principals' passwords."""
    logs = [p.read_text(errors="replace") for p in (secured.state / "logs").glob("*")]
    text = "\n".join(TRANSCRIPT + logs)
    assert len(TRANSCRIPT) >= 10
    for principal in PRINCIPALS:
        assert secured.password(principal) not in text, f"{principal}'s password was printed"
