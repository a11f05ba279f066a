"""Running the Quix Streams peer: its own venv, one process, the same topics and checks.

quixstreams pins an older confluent-kafka than ours, so it lives in ``bench/.venv-quix``
(created on first use, gitignored) with our package installed there without dependencies
(plus fastavro) so that it reads and writes our Avro and calls our ledger.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from check import check_outcome_states, check_outcomes, decode
from harness import ROOT, CpuMeter, OutcomeWatch, Stack, create, run_topics, stack_pids
from scenarios import Result, vm_hwm_mb
from workload import Workload

from portfolio_tx.wire.topics import TopicNames

VENV = ROOT / "bench" / ".venv-quix"
QUIX = "quixstreams==3.28.1"


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    # our package's runtime dependencies, but Quix's own confluent-kafka
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ours = [d for d in project["dependencies"] if not d.startswith("confluent-kafka")]
    wanted = "\n".join([QUIX, *ours])
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, QUIX, *ours], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    stamp.write_text(wanted)
    return python


def peer_run(stack: Stack, inputs: TopicNames, partitions: int, workload: Workload,
             name: str, logs: Path, timeout: float | None = None, patches: str = "") -> Result:
    """``patches``: those of bench/patches.py that touch the codec or the ledger, which the
    peer shares with the worker (``wirebytes``, ``fastwire``)."""
    python = ensure_venv()
    topics = run_topics(inputs, name)
    create(stack, topics, partitions)
    prefix = inputs.fills.removesuffix("portfolio.fills")
    state_dir = Path(tempfile.mkdtemp(prefix="bench-quix-"))
    started_file = state_dir / "started"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    watch = OutcomeWatch(stack, topics.commits, workload.cycles)
    meter = CpuMeter(stack_pids()).start()
    process = subprocess.Popen(
        [str(python), str(ROOT / "bench" / "quix_app.py"), stack.bootstrap,
         f"{prefix}{name}.group", topics.fills, topics.pnl, topics.cycles, topics.marks,
         topics.commits, str(state_dir / "state"), str(started_file)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "BENCH_PEER_PATCHES": patches},
    )
    meter.add("quix", process.pid)
    limit = timeout if timeout is not None else max(240.0, workload.shape.input_events / 200)
    finished = watch.wait(limit, alive=[process])
    meter.sample()
    rss = vm_hwm_mb(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
    watch.close()
    problems: list[str] = []
    if not finished:
        problems.append(f"not finished: {len(watch.records)} of {workload.cycles} outcomes; "
                        f"log tail: {log.read_text(errors='replace')[-800:]}")
    start = float(started_file.read_text()) if started_file.exists() else meter._t0
    seconds = (watch.done_at or time.time()) - start
    outcomes = decode(watch.records, topics.commits)
    problems += check_outcomes(workload, outcomes)
    problems += check_outcome_states(workload, outcomes)
    shutil.rmtree(state_dir, ignore_errors=True)
    return Result(f"peer: Quix Streams {QUIX.split('==')[1]}", seconds,
                  workload.shape.input_events, workload.cycles, cpu=meter.share(),
                  problems=problems, rss_peak_mb=rss)
