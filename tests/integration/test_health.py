"""portfolio-tx check: 0 while a worker runs and is ready, 1 once it is gone."""

from __future__ import annotations

import signal
import time

from pipeline import Pipeline


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
