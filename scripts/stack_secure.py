"""The secured local stack: `scripts/stack up --secure` (or PTX_STACK_SECURE=1).

A KRaft broker whose only client listener is SASL_SSL (SCRAM-SHA-512, users created at
storage format) with the StandardAuthorizer and least-privilege ACLs, and a Redis that
speaks TLS only, with ACL users and the default user off. Both bind 127.0.0.1 only.
Everything is made fresh at every start, in the secured state dir (default
<repo>/.stack-secure): a CA and a server certificate (openssl; private keys mode 0600),
one random password per principal (secrets/<principal>.password, mode 0600), the broker's
storage. Nothing of it is ever committed or printed.

Principals (the same name in Kafka and Redis):

  ptx-admin     Kafka super user (topics create, ACLs); Redis: every key and command
  ptx-worker    Kafka: read+describe fills, pnl, cycles, marks, commits; write+describe
                commits, deadletter; read its consumer groups (prefix PTX_GROUP_ID),
                write+describe its transactional ids (same prefix), idempotent write.
                Redis: keys PTX_REDIS_NAMESPACE:* only, read/write/scripting commands
  ptx-reader    Kafka: read+describe every topic, read the groups; no write anywhere.
                Redis: read-only, namespace keys only (dashboards, tail, verify)
  ptx-upstream  Kafka: write+describe fills, pnl, cycles, marks (simulate, tests)

Topic names follow PTX_TOPIC_PREFIX as the project does. `up` prints the connection
settings (no secret) and writes <state>/env.<principal> with that principal's username and
password *file*, for `set -a; . .stack-secure/env.ptx-worker; set +a`.

Environment: PTX_SECURE_KAFKA_PORT (19192; the controller listens on the next port),
PTX_SECURE_REDIS_PORT (16390), PTX_SECURE_STACK_DIR (the state dir).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

PRINCIPALS = ("ptx-admin", "ptx-worker", "ptx-reader", "ptx-upstream")
ADMIN = "ptx-admin"
KAFKA_PORT = int(os.environ.get("PTX_SECURE_KAFKA_PORT") or 19192)
REDIS_PORT = int(os.environ.get("PTX_SECURE_REDIS_PORT") or 16390)
MECHANISM = "SCRAM-SHA-512"
_REPLACED = ("listeners=", "advertised.listeners=", "listener.security", "inter.broker")


class Paths:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.tls = state / "tls"
        self.secrets = state / "secrets"
        self.ca = self.tls / "ca.crt"

    def password_file(self, principal: str) -> Path:
        return self.secrets / f"{principal}.password"

    def password(self, principal: str) -> str:
        return self.password_file(principal).read_text().strip()


def _private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (created 0600, never wider)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _openssl(stack: ModuleType, *args: str) -> None:
    done = subprocess.run(
        ["openssl", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise stack.StackError(f"openssl {args[0]} failed:\n{done.stderr[-1500:]}")


def make_material(stack: ModuleType, paths: Paths) -> None:
    """A fresh CA, a server certificate for 127.0.0.1/localhost, a PKCS#12 keystore for
    the broker and one password per principal."""
    if shutil.which("openssl") is None:
        raise stack.StackError("openssl is needed for the secured stack: apt-get install openssl")
    for d in (paths.tls, paths.secrets):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True, mode=0o700)
    for principal in (*PRINCIPALS, "keystore"):
        _private(paths.password_file(principal), secrets.token_urlsafe(24) + "\n")
    t = paths.tls
    days = "30"
    _openssl(stack, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days,
             "-subj", "/CN=portfolio-tx secured stack CA", "-keyout", str(t / "ca.key"),
             "-out", str(paths.ca), "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _openssl(stack, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", str(t / "server.key"), "-out", str(t / "server.csr"))  # fmt: skip
    (t / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(stack, "x509", "-req", "-in", str(t / "server.csr"), "-CA", str(paths.ca),
             "-CAkey", str(t / "ca.key"), "-CAcreateserial", "-days", days,
             "-extfile", str(t / "server.ext"), "-out", str(t / "server.crt"))  # fmt: skip
    _openssl(stack, "pkcs12", "-export", "-in", str(t / "server.crt"),
             "-inkey", str(t / "server.key"), "-name", "broker",
             "-out", str(t / "broker.p12"),
             "-passout", f"file:{paths.password_file('keystore')}")  # fmt: skip
    for key in t.glob("*.key"):
        key.chmod(0o600)
    (t / "broker.p12").chmod(0o600)


def _jaas(module: str, user: str, password: str, extra: str = "") -> str:
    return f'{module} required username="{user}" password="{password}"{extra};'


def kafka_properties(stack: ModuleType, paths: Paths, ep: Any) -> str:
    base = [
        line for line in stack.kafka_properties(ep).splitlines()
        if not line.startswith(_REPLACED)
    ]  # fmt: skip
    admin_pw = paths.password(ADMIN)
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return (
        "\n".join(base)
        + f"""
# Secured: the client listener is SASL_SSL only; the controller listener (loopback, used
# by this combined node itself) takes SASL PLAIN as the admin principal.
listeners=SASL_SSL://127.0.0.1:{ep.port},CONTROLLER://127.0.0.1:{ep.controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{ep.port}
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms={MECHANISM}
sasl.mechanism.inter.broker.protocol={MECHANISM}
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config={
            _jaas(plain, ADMIN, admin_pw, f' user_{ADMIN}="{admin_pw}"')
        }
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={_jaas(scram, ADMIN, admin_pw)}
ssl.keystore.type=PKCS12
ssl.keystore.location={paths.tls / "broker.p12"}
ssl.keystore.password={paths.password("keystore")}
ssl.truststore.type=PEM
ssl.truststore.location={paths.ca}
ssl.client.auth=requested
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{ADMIN}
"""
    )


def admin_client_properties(paths: Paths, bootstrap: str) -> str:
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return f"""bootstrap.servers={bootstrap}
security.protocol=SASL_SSL
sasl.mechanism={MECHANISM}
sasl.jaas.config={_jaas(scram, ADMIN, paths.password(ADMIN))}
ssl.truststore.type=PEM
ssl.truststore.location={paths.ca}
"""


def acl_lines() -> list[str]:
    """`principal TYPE PATTERN name OPERATION` for every grant (see the module docstring)."""
    prefix = os.environ.get("PTX_TOPIC_PREFIX", "")
    group = os.environ.get("PTX_GROUP_ID") or "portfolio-tx"
    topic = {n: f"{prefix}portfolio.{n}" for n in
             ("fills", "pnl", "cycles", "marks", "commits", "deadletter")}  # fmt: skip
    inputs = [topic[n] for n in ("fills", "pnl", "cycles", "marks")]
    grants: list[tuple[str, str, str, str, list[str]]] = [
        ("ptx-worker", "TOPIC", "LITERAL", t, ["READ", "DESCRIBE"])
        for t in [*inputs, topic["commits"]]
    ]
    grants += [("ptx-worker", "TOPIC", "LITERAL", topic[n], ["WRITE", "DESCRIBE"])
               for n in ("commits", "deadletter")]  # fmt: skip
    grants += [
        ("ptx-worker", "TRANSACTIONAL_ID", "PREFIXED", group, ["WRITE", "DESCRIBE"]),
        ("ptx-worker", "CLUSTER", "LITERAL", "kafka-cluster", ["IDEMPOTENT_WRITE"]),
    ]
    grants += [(p, "GROUP", "PREFIXED", group, ["READ", "DESCRIBE"])
               for p in ("ptx-worker", "ptx-reader")]  # fmt: skip
    grants += [("ptx-reader", "TOPIC", "LITERAL", t, ["READ", "DESCRIBE"])
               for t in topic.values()]  # fmt: skip
    grants += [("ptx-upstream", "TOPIC", "LITERAL", t, ["WRITE", "DESCRIBE"]) for t in inputs]
    return [f"User:{p} {kind} {pattern} {name} {op}"
            for p, kind, pattern, name, ops in grants for op in ops]  # fmt: skip


def redis_acl(paths: Paths) -> str:
    ns = os.environ.get("PTX_REDIS_NAMESPACE") or "ptx"
    pw = {p: paths.password(p) for p in PRINCIPALS}
    keys = f"resetkeys ~{ns}:* resetchannels"
    return (
        "user default off\n"
        f"user ptx-admin on >{pw['ptx-admin']} ~* &* +@all\n"
        f"user ptx-worker on >{pw['ptx-worker']} {keys} -@all +@connection +@read +@write "
        "+@scripting +@transaction -@dangerous +info\n"
        f"user ptx-reader on >{pw['ptx-reader']} {keys} -@all +@connection +@read "
        "-@dangerous +evalsha +script|load\n"
    )


def _tls_context(paths: Paths) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(paths.ca))


def kafka_answers(stack: ModuleType, paths: Paths, port: int) -> bool:
    """True when the SASL_SSL listener completes a TLS handshake and answers ApiVersions
    (allowed before authentication)."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
            _tls_context(paths).wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            body = stack._kafka_request(sock, 18, 0, 1, b"")
            return bool(body[:2] == b"\0\0")
    except (OSError, ConnectionError, ssl.SSLError):
        return False


def redis_answers(paths: Paths, port: int) -> bool:
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
            _tls_context(paths).wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            user, pw = ADMIN.encode(), paths.password(ADMIN).encode()
            auth = b"*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(user),
                user,
                len(pw),
                pw,
            )
            sock.sendall(auth + b"*1\r\n$4\r\nPING\r\n")
            f = sock.makefile("rb")
            return f.readline().startswith(b"+OK") and f.readline().startswith(b"+PONG")
    except OSError:
        return False


class _Endpoint:
    """What stack.kafka_properties needs of an endpoint."""

    def __init__(self, port: int) -> None:
        self.port, self.controller_port = port, port + 1


def _format(stack: ModuleType, paths: Paths, jars: Path, props: Path) -> None:
    """Format fresh storage with the SCRAM users (their passwords never reach a log)."""
    shutil.rmtree(stack.kafka_dir() / "data", ignore_errors=True)
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    fmt = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)]
    for principal in PRINCIPALS:
        fmt += [
            "--add-scram",
            f"{MECHANISM}=[name={principal},password={paths.password(principal)}]",
        ]
    done = subprocess.run(stack.kafka_java_argv(jars, fmt), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    if done.returncode != 0:
        raise stack.StackError(f"kafka-storage format failed (exit {done.returncode})")


def _start_redis(stack: ModuleType, paths: Paths) -> int:
    acl = paths.secrets / "users.acl"
    _private(acl, redis_acl(paths))
    data = paths.state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    t = paths.tls
    argv = [
        stack.redis_binary(), "--port", "0", "--tls-port", str(REDIS_PORT),
        "--bind", "127.0.0.1", "--protected-mode", "yes", "--daemonize", "no",
        "--tls-cert-file", str(t / "server.crt"), "--tls-key-file", str(t / "server.key"),
        "--tls-ca-cert-file", str(paths.ca), "--tls-auth-clients", "optional",
        "--aclfile", str(acl), "--dir", str(data), "--save", "", "--appendonly", "no",
        "--logfile", str(stack.LOGS / "redis.log"),
    ]  # fmt: skip
    return int(stack.spawn_on_port("redis", REDIS_PORT, argv, stack.LOGS / "redis.out"))


def _create_acls(stack: ModuleType, paths: Paths, jars: Path, bootstrap: str) -> None:
    props = paths.secrets / "admin.properties"
    _private(props, admin_client_properties(paths, bootstrap))
    acls = paths.state / "acls.txt"
    acls.write_text("\n".join(acl_lines()) + "\n")
    source = Path(__file__).resolve().parent / "StackAcls.java"
    argv = stack.kafka_java_argv(jars, [str(source), str(props), str(acls)])
    for attempt in range(3):
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode == 0:
            stack.say(f"kafka: {done.stdout.strip()}")
            return
        time.sleep(2 * (attempt + 1))
    raise stack.StackError(f"creating the ACLs failed:\n{done.stdout[-800:]}{done.stderr[-1500:]}")


def _wait(stack: ModuleType, paths: Paths, pids: dict[str, int]) -> None:
    deadline = time.monotonic() + stack.TIMEOUT
    pending = set(pids)
    while pending:
        if "kafka" in pending and kafka_answers(stack, paths, KAFKA_PORT):
            pending.discard("kafka")
        if "redis" in pending and redis_answers(paths, REDIS_PORT):
            pending.discard("redis")
        for name in pending:
            if not stack.alive(pids[name]):
                raise stack.StackError(f"{name} exited during start-up\n{stack.log_tails(60)}")
        if pending and time.monotonic() > deadline:
            raise stack.StackError(
                f"not ready: {', '.join(sorted(pending))}\n{stack.log_tails(60)}"
            )
        time.sleep(0.25)


def connection_env(paths: Paths) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{KAFKA_PORT}",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": MECHANISM,
        "KAFKA_SSL_CA_LOCATION": str(paths.ca),
        "REDIS_URL": f"rediss://127.0.0.1:{REDIS_PORT}/0",
        "REDIS_SSL_CA_CERTS": str(paths.ca),
        "PTX_STACK_SECRETS": str(paths.secrets),
    }


def _write_env_files(paths: Paths) -> None:
    common = connection_env(paths)
    for principal in PRINCIPALS:
        redis_user = "ptx-reader" if principal == "ptx-upstream" else principal
        env = {
            **common,
            "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD_FILE": str(paths.password_file(principal)),
            "REDIS_USERNAME": redis_user,
            "REDIS_PASSWORD_FILE": str(paths.password_file(redis_user)),
        }
        text = "".join(f"{k}={v}\n" for k, v in env.items())
        (paths.state / f"env.{principal}").write_text(text)


def up(stack: ModuleType) -> int:
    paths = Paths(stack.STATE)
    with stack.state_lock():
        kafka = stack.running_pid("kafka", stack.KAFKA_MARKER)
        redis = stack.running_pid("redis", stack.REDIS_MARKER)
        started: list[str] = []
        if not (kafka and redis and paths.ca.exists()):
            for name in ("kafka", "redis"):
                stack.stop_service(name)
            for port in (KAFKA_PORT, KAFKA_PORT + 1, REDIS_PORT):
                if stack.port_open("127.0.0.1", port):
                    raise stack.StackError(f"port 127.0.0.1:{port} is taken: not ours to reuse")
            stack.LOGS.mkdir(parents=True, exist_ok=True)
            make_material(stack, paths)
            jars = stack.kafka_jars()
            stack.kafka_dir().mkdir(parents=True, exist_ok=True)
            props = stack.kafka_dir() / "server.properties"
            _private(props, kafka_properties(stack, paths, _Endpoint(KAFKA_PORT)))
            _format(stack, paths, jars, props)
            pids: dict[str, int] = {}
            try:
                pids["redis"] = _start_redis(stack, paths)
                argv = stack.kafka_java_argv(jars, ["kafka.Kafka", str(props)])
                pids["kafka"] = stack.spawn_on_port("kafka", KAFKA_PORT, argv,
                                                    stack.LOGS / "kafka.out")  # fmt: skip
                _wait(stack, paths, pids)
                _create_acls(stack, paths, jars, f"127.0.0.1:{KAFKA_PORT}")
            except BaseException:
                for name in pids:
                    stack.stop_service(name)
                raise
            _write_env_files(paths)
            started = ["kafka", "redis"]
            stack.say(f"secured stack started: SASL_SSL 127.0.0.1:{KAFKA_PORT}, "
                      f"Redis TLS 127.0.0.1:{REDIS_PORT}, state {paths.state}")  # fmt: skip
        else:
            stack.say("secured stack already running")
        lines = [f"{k}={v}" for k, v in connection_env(paths).items()]
        print("\n".join([*lines, f"PTX_STACK_STARTED={','.join(started)}"]), flush=True)
    return 0


def status(stack: ModuleType) -> int:
    paths = Paths(stack.STATE)
    ok = True
    for name, ready in (
        ("kafka", paths.ca.exists() and kafka_answers(stack, paths, KAFKA_PORT)),
        ("redis", paths.ca.exists() and redis_answers(paths, REDIS_PORT)),
    ):
        ok = ok and ready
        print(f"{name:6} {'ready' if ready else 'down':8} secured, state {paths.state}")
    return 0 if ok else 3
