"""Running the Kafka Streams peer: one JVM, the same topics and the same checks as the others.

The app is bench/kstreams (Java 17, kafka-streams from Maven Central through its pom.xml,
``processing.guarantee=exactly_once_v2``; its class comment says what it implements). It is
built on first use, like the Quix Streams peer's venv: ``mvn package dependency:build-classpath``
gives ``target/kstreams-peer.jar`` and ``target/classpath.txt``; offline (``mvn -o``) when the
local Maven repository already holds everything, else from Maven Central once.

It writes the contract's CycleOutcome (single-object Avro) to its own commits topic, so its
outcomes go through exactly the checks of the Quix Streams row: one outcome per cycle, the
model's decisions, and the sampled sessions' states rebuilt from their last COMMIT outcome
equal to the model's, Decimal for Decimal. Its time runs from the first input record it
processed (after the JVM start and the global marks store's restore, as the Quix peer's runs
from its first record) to the last outcome visible to a read_committed reader.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from check import check_outcome_states, check_outcomes, decode
from harness import ROOT, CpuMeter, OutcomeWatch, Stack, create, run_topics, stack_pids
from scenarios import Result, vm_hwm_mb
from workload import Workload

from portfolio_tx.wire.topics import TopicNames

PROJECT = ROOT / "bench" / "kstreams"
TARGET = PROJECT / "target"
JAR = TARGET / "kstreams-peer.jar"
CLASSPATH = TARGET / "classpath.txt"
MAIN = "bench.KStreamsPeer"
JVM_OPTS = ["-Xms256m", "-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]


def _kafka_streams_version() -> str:
    text = (PROJECT / "pom.xml").read_text()
    return text.split("<kafka.version>", 1)[1].split("<", 1)[0]


def _sources() -> list[Path]:
    return [PROJECT / "pom.xml", *sorted((PROJECT / "src").rglob("*.java"))]


def _built() -> bool:
    if not (JAR.exists() and CLASSPATH.exists()):
        return False
    newest = max(p.stat().st_mtime for p in _sources())
    if JAR.stat().st_mtime < newest or CLASSPATH.stat().st_mtime < newest:
        return False
    return all(Path(entry).exists() for entry in CLASSPATH.read_text().strip().split(":"))


def ensure_jar() -> list[str]:
    """The java command line prefix (classpath and main class), building the app if needed."""
    if not _built():
        goals = ["-q", "-f", str(PROJECT / "pom.xml"), "package", "dependency:build-classpath"]
        offline = subprocess.run(["mvn", "-o", *goals], capture_output=True, text=True,
                                 check=False)
        if offline.returncode != 0:  # first build: resolve from Maven Central
            print("bench: building the Kafka Streams peer (mvn, Maven Central) ...", flush=True)
            subprocess.run(["mvn", *goals], check=True)
        JAR.touch()
        CLASSPATH.touch()
    classpath = f"{JAR}:{CLASSPATH.read_text().strip()}"
    return ["java", *JVM_OPTS, "-cp", classpath, MAIN]


def kstreams_run(stack: Stack, inputs: TopicNames, partitions: int, workload: Workload,
                 name: str, logs: Path, timeout: float | None = None) -> Result:
    command = ensure_jar()
    topics = run_topics(inputs, name)
    create(stack, topics, partitions)
    prefix = inputs.fills.removesuffix("portfolio.fills")
    state_dir = Path(tempfile.mkdtemp(prefix="bench-kstreams-"))
    started_file = state_dir / "started"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    watch = OutcomeWatch(stack, topics.commits, workload.cycles)
    meter = CpuMeter(stack_pids()).start()
    launched = time.time()
    # application.id under the run's prefix: the changelog topics go with the bench's topics
    process = subprocess.Popen(
        [*command, stack.bootstrap, f"{prefix}{name}", topics.fills, topics.pnl, topics.cycles,
         topics.marks, topics.commits, str(state_dir / "state"), str(started_file),
         str(ROOT / "schemas")],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
    )
    meter.add("kstreams", process.pid)
    limit = timeout if timeout is not None else max(240.0, workload.shape.input_events / 200)
    finished = watch.wait(limit, alive=[process])
    meter.sample()
    rss = vm_hwm_mb(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    watch.close()
    problems: list[str] = []
    if not finished:
        problems.append(f"not finished: {len(watch.records)} of {workload.cycles} outcomes; "
                        f"log tail: {log.read_text(errors='replace')[-800:]}")
    start = float(started_file.read_text()) if started_file.exists() else launched
    seconds = (watch.done_at or time.time()) - start
    outcomes = decode(watch.records, topics.commits)
    problems += check_outcomes(workload, outcomes)
    problems += check_outcome_states(workload, outcomes)
    shutil.rmtree(state_dir, ignore_errors=True)
    return Result(f"peer: Kafka Streams {_kafka_streams_version()}", seconds,
                  workload.shape.input_events, workload.cycles, cpu=meter.share(),
                  problems=problems, rss_peak_mb=rss)
