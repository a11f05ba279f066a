"""The worker's own log, as an operator's log shipper receives it with ``--log-format json``."""

from __future__ import annotations

import json
import subprocess
import sys

from pipeline import Pipeline
from test_worker_worked_example import S, publish_worked_example


def test_json_log_is_one_object_a_line_and_every_decision_carries_session_and_cycle(
    pipeline: Pipeline,
) -> None:
    publish_worked_example(pipeline)
    worker = subprocess.Popen(
        [sys.executable, "-m", "portfolio_tx", "worker", "--log-format", "json"],
        env=pipeline.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert len(pipeline.outcomes(expected=6)) == 6
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output

    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    decisions = [
        line
        for line in lines
        if line["message"].startswith(("PORTFOLIO_COMMIT", "PORTFOLIO_DISCARD"))
    ]
    assert [(d["session_id"], d["cycle_id"]) for d in decisions] == [(S, c) for c in range(1, 7)]
    assert [d["message"].split(":")[0] for d in decisions] == [
        "PORTFOLIO_COMMIT",
        "PORTFOLIO_COMMIT",
        "PORTFOLIO_DISCARD",
        "PORTFOLIO_COMMIT",
        "PORTFOLIO_DISCARD",
        "PORTFOLIO_COMMIT",
    ]
    assert decisions[2]["message"].startswith(
        "PORTFOLIO_DISCARD: reason=VALIDATION_FAILED Δ=$-100.00, ε=$10.14"
    )
    assert decisions[0]["message"].startswith(
        "PORTFOLIO_COMMIT: cash=$49975.00, positions=$50500.00, total=$100475.00 (Δ=$0.00, ε=$1.00)"
    )
    assert all(d["level"] == "INFO" and d["ts"].endswith("Z") for d in decisions)
