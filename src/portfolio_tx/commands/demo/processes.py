"""The demo's subprocesses: the worker and the live dashboard, on the demo's topics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from portfolio_tx.config import Settings
from portfolio_tx.wire.topics import TopicNames


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
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


def wait_until_assigned(worker: subprocess.Popen[bytes], log_path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if "assigned [" in log_path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def stop_process(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, wait up to 30 s; the exit code, or None if it had to be killed."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def log_tail(log_path: Path, lines: int = 15) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def start_dashboard(
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


def linger(dashboard: subprocess.Popen[bytes], port: int) -> None:
    """Keep the dashboard up for a person at a terminal until Enter; stop it otherwise."""
    if sys.stdin.isatty() and dashboard.poll() is None:
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input(f"\n  the dashboard stays at http://127.0.0.1:{port}/ — press Enter to stop it ")
    stop_process(dashboard)
