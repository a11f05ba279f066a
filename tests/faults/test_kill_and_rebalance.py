"""kill -9 at random moments, and a group that loses and gains members mid-stream."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from harness import LONG, FaultRun


def test_kill_9_at_random_moments_loses_and_doubles_nothing(
    fault_run: Callable[..., FaultRun],
) -> None:
    kills = 20 if LONG else 3
    run = fault_run(sessions=50 if LONG else 20, cycles=20 if LONG else 10)
    rng = random.Random(11)
    run.start_worker("w1")
    run.publish_in_background(rate=200 if LONG else 300)
    for _ in range(kills):
        time.sleep(rng.uniform(0.5, 2.5))
        run.kill_worker("w1")
        run.start_worker("w1")
    outcomes = run.wait_for_all_outcomes(timeout=600 if LONG else 180)
    counts = run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()
    assert run.events["killed"] == kills
    assert counts["COMMIT"] > 0 and sum(counts.values()) == len(run.upstream.cycles)
    print(f"kills survived {kills}, cycles decided {sum(counts.values())}: {dict(counts)}")


def test_three_workers_one_killed_one_added_mid_run(fault_run: Callable[..., FaultRun]) -> None:
    run = fault_run(sessions=40 if LONG else 16, cycles=15 if LONG else 8, partitions=6)
    for instance in ("w1", "w2", "w3"):
        run.start_worker(instance)
    run.publish_in_background(rate=150 if LONG else 200)
    time.sleep(3)
    run.kill_worker("w2")
    time.sleep(2)
    run.start_worker("w4")
    outcomes = run.wait_for_all_outcomes(timeout=600 if LONG else 180)
    counts = run.assert_exactly_once_and_correct(outcomes)
    run.stop_workers()
    assert sum(counts.values()) == len(run.upstream.cycles)
