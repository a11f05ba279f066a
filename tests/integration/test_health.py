"""portfolio-tx check: 0 while a worker runs and is ready, 1 once it is gone."""

from __future__ import annotations

import signal
import time

from pipeline import Pipeline

from portfolio_tx.worker.health import beat, heartbeat_key


def test_check_says_alive_while_the_worker_runs_and_not_after(pipeline: Pipeline) -> None:
    assert pipeline.cli("check").returncode == 1  # nothing running yet
    worker = pipeline.spawn_worker()
    try:
        deadline = time.monotonic() + 60
        shown = pipeline.cli("check")
        while shown.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            shown = pipeline.cli("check")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "alive and ready: 3 partitions" in shown.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    time.sleep(6)  # the heartbeat goes stale after 5 s
    after = pipeline.cli("check")
    assert after.returncode == 1
    assert "stuck" in after.stdout or "not running" in after.stdout


def test_alive_without_partitions_passes_the_liveness_probe_not_the_readiness_one(
    pipeline: Pipeline,
) -> None:
    # a worker that holds no partition (more workers than partitions) beats "not ready"
    key = heartbeat_key(pipeline.settings.redis_namespace, "standby-1")
    beat(pipeline.store.client, key, ready=False, partitions=0, decided=0)
    readiness = pipeline.cli("check", "--instance-id", "standby-1")
    liveness = pipeline.cli("check", "--instance-id", "standby-1", "--alive")
    assert readiness.returncode == 1, readiness.stdout + readiness.stderr
    assert "not ready" in readiness.stdout
    assert liveness.returncode == 0, liveness.stdout + liveness.stderr
    pipeline.store.client.delete(key)
    gone = pipeline.cli("check", "--instance-id", "standby-1", "--alive")
    assert gone.returncode == 1 and "not running" in gone.stdout
