"""A Redis that goes back in time: restarted from an older RDB snapshot (the same loss as a
replica promoted after asynchronous replication). Its readiness keys survive, so nothing
says "lost"; the worker must still notice that sessions are older than their outcomes on
the commit topic and repair them before staging anything on them (issue 9, defect 2).

The expected figures are a fault-free run's: every outcome (verdict, previous equity, total,
Δ, the state after it) and every final state equal the recomputation over the same input
topics, and every final state's books balance exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from harness import LONG, FaultRun

from portfolio_tx.audit.verify import committed_outcomes


def _wait_for_outcomes(run: FaultRun, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        run.assert_alive()
        seen = len({(o.session_id, o.cycle_id) for o in committed_outcomes(run.settings)})
        if seen >= count:
            return seen
        assert time.monotonic() < deadline, f"only {seen} of {count} outcomes after {timeout}s"
        time.sleep(0.3)


@pytest.mark.parametrize("kill_worker_after_restart", [False, True], ids=["live", "kill-9"])
def test_redis_restarted_from_an_older_snapshot_is_repaired_before_the_next_decision(
    fault_run: Callable[..., FaultRun], kill_worker_after_restart: bool
) -> None:
    run = fault_run(sessions=30 if LONG else 10, cycles=20 if LONG else 10)
    total = run.upstream.config.sessions * run.upstream.config.cycles  # planned, at least
    client = redis.Redis.from_url(run.redis.url)
    run.start_worker("w1")
    run.publish_in_background(rate=300 if LONG else 250)
    _wait_for_outcomes(run, total * 4 // 10, timeout=180)
    client.set("probe", "before")
    client.save()  # the snapshot the restart goes back to
    saved_keys = client.dbsize()
    saved_at = _wait_for_outcomes(run, total * 4 // 10, timeout=5)
    client.set("probe", "after")
    lost_from = _wait_for_outcomes(run, saved_at + max(10, total // 5), timeout=180)
    run.redis.stop()  # SIGKILL: SHUTDOWN NOSAVE, the writes after SAVE are gone
    run.redis.start()  # loads the older dump.rdb from its directory
    assert client.get("probe") == b"before", "Redis did not go back to the snapshot"
    ready = client.keys(f"{run.settings.redis_namespace}:ready:*")
    assert len(ready) == 4, f"the snapshot should keep the readiness keys: {ready}, {saved_keys=}"
    if kill_worker_after_restart:
        run.kill_worker("w1")
        run.start_worker("w1")
    outcomes = run.wait_for_all_outcomes(timeout=600 if LONG else 180)
    run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()
    log = "\n".join(path.read_text(errors="replace") for path in run.logs.values())
    assert "repaired" in log, "the worker never said it repaired a session"
    print(f"snapshot after ~{saved_at} outcomes, restart after ~{lost_from}, {total} cycles")
