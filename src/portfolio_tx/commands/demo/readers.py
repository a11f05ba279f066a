"""What the demo reads back while it runs: the outcomes as they are published, and the
dead letters once the stream is in."""

from __future__ import annotations

import subprocess
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from portfolio_tx.commands.views import outcome_line
from portfolio_tx.config import Settings
from portfolio_tx.errors import DecodeError
from portfolio_tx.kafka.clients import make_reader
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.wire.outcomes import CycleOutcome

DLQ_HEADERS = ("source.topic", "source.partition", "source.offset", "error")


class OutcomeTail(threading.Thread):
    """Follows the commit topic in the background, printing each outcome as it arrives."""

    def __init__(self, settings: Settings, expected: int, *, quiet: bool) -> None:
        super().__init__(name="outcome-tail", daemon=True)
        self.outcomes: list[CycleOutcome] = []
        self.last_at = 0.0
        self._settings, self._expected, self._quiet = settings, expected, quiet
        self._halt = threading.Event()

    def run(self) -> None:
        log = CommitLog.open(self._settings, "demo-tail")
        width = len(str(self._expected))
        try:
            for read in log.follow():
                if self._halt.is_set():
                    return
                if isinstance(read, DecodeError):
                    print(f"  undecodable outcome: {read}", flush=True)
                elif read is not None:
                    self.outcomes.append(read)
                    self.last_at = time.monotonic()
                    if not self._quiet:
                        print(f"  {len(self.outcomes):>{width}}  {outcome_line(read)}", flush=True)
        finally:
            log.close()

    def wait_for(self, count: int, timeout: float, worker: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < count and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # an outcome too many would show up now

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def read_dead_letters(settings: Settings, expected: int, timeout: float = 15.0) -> tuple[int, int]:
    """(records on the dead-letter topic, how many of them lack a source/error header)."""
    topic = settings.topics.deadletter
    consumer = make_reader(settings, "demo-dead-letters")
    count = incomplete = 0
    deadline, quiet_until = time.monotonic() + timeout, time.monotonic() + 2.0
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while time.monotonic() < deadline and (count < expected or time.monotonic() < quiet_until):
            for message in consumer.consume(200, timeout=0.2):
                if message.error() is None:
                    count += 1
                    names = {header[0] for header in message.headers() or []}
                    incomplete += not names.issuperset(DLQ_HEADERS)
                    quiet_until = time.monotonic() + 1.0
    finally:
        consumer.close()
    return count, incomplete
