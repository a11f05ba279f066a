"""Fixtures of the fault-injection suite (tests here are marked `faults` and `integration`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import FaultRun, make_run  # noqa: E402


@pytest.fixture
def fault_run(bootstrap_servers: str, topic_prefix: str) -> Iterator[Callable[..., FaultRun]]:
    """fault_run(sessions=, cycles=, ...) -> a FaultRun; workers and Redis stopped after."""
    made: list[FaultRun] = []

    def make(**options: Any) -> FaultRun:
        run = make_run(bootstrap_servers, topic_prefix, **options)
        made.append(run)
        return run

    yield make
    for run in made:
        for process in run.workers.values():
            process.kill()
        run.redis.close()
