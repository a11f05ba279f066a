"""Redis flushed, Redis restarted empty, the broker restarted: the end state is a fault-free
run's, with one outcome per cycle."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
from harness import LONG, FaultRun

ROOT = Path(__file__).resolve().parents[2]


def _stack(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"scripts/stack {' '.join(args)} failed:\n{done.stderr}"


def test_redis_flushall_mid_run_is_restored_from_the_commit_topic(
    fault_run: Callable[..., FaultRun],
) -> None:
    run = fault_run(sessions=30 if LONG else 12, cycles=12 if LONG else 8)
    run.start_worker("w1")
    run.publish_in_background(rate=250)
    time.sleep(3)
    redis.Redis.from_url(run.redis.url).flushall()
    outcomes = run.wait_for_all_outcomes(timeout=300 if LONG else 180)
    run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()


def test_redis_stopped_and_restarted_empty_mid_run(fault_run: Callable[..., FaultRun]) -> None:
    run = fault_run(sessions=30 if LONG else 12, cycles=12 if LONG else 8)
    run.start_worker("w1")
    run.publish_in_background(rate=250)
    time.sleep(3)
    run.redis.stop()
    time.sleep(2)
    run.redis.start()
    outcomes = run.wait_for_all_outcomes(timeout=300 if LONG else 180)
    run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()


def test_broker_stopped_and_restarted_the_worker_reconnects_without_restart(
    fault_run: Callable[..., FaultRun],
) -> None:
    run = fault_run(sessions=30 if LONG else 12, cycles=12 if LONG else 8)
    run.start_worker("w1")
    publisher = run.publish_in_background(rate=250)
    publisher.join(timeout=120)  # the simulator itself is no subject of this test
    time.sleep(1)
    worker = run.workers["w1"]
    _stack("stop-kafka")
    time.sleep(3)
    _stack("start-kafka")
    outcomes = run.wait_for_all_outcomes(timeout=300 if LONG else 180)
    assert run.workers["w1"] is worker and worker.poll() is None  # never restarted
    run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()
