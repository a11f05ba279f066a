"""Fixtures of the fault-injection suite (tests here are marked `faults` and `integration`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import FaultRun, runs_on  # noqa: E402


@pytest.fixture
def fault_run(bootstrap_servers: str, topic_prefix: str) -> Iterator[Callable[..., FaultRun]]:
    """fault_run(sessions=, cycles=, ...) -> a FaultRun on the stack's broker."""
    yield from runs_on(bootstrap_servers, topic_prefix)
