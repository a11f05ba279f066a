"""The dashboard's live side: a thread that follows the commit topic into the board, and the
fan-out of every new outcome to the connected browsers.

``CommitFeed`` reads every partition of the commit topic ``read_committed`` from the
beginning (a group-less reader: nothing is committed, every start replays the topic), so the
board shows exactly the decided cycles, aborted transactions never. ``LiveBoard`` holds the board
behind one lock: a browser's snapshot and its subscription are taken together, so it sees
every outcome exactly once, either in the snapshot or as an event after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING

from portfolio_tx.config import Settings
from portfolio_tx.dashboard.board import Board, Json
from portfolio_tx.errors import DecodeError, KafkaSetupError
from portfolio_tx.kafka.commitlog import CommitLog
from portfolio_tx.logs import LIBRDKAFKA_LOGGER
from portfolio_tx.wire.outcomes import CycleOutcome

log = logging.getLogger("portfolio_tx.dashboard")

SUBSCRIBER_BUFFER = 1000  # events a slow browser may lag behind before it is dropped


@dataclass(eq=False, slots=True)
class Subscription:
    """One connected browser: events arrive on ``queue``; None means "reconnect"."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Json | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_BUFFER + 1)
    )
    dropped: bool = False

    def offer(self, event: Json | None) -> None:
        """Runs on the event loop. A full queue ends the stream; the browser reconnects and
        starts again from a fresh snapshot rather than silently missing outcomes."""
        if self.dropped:
            return
        if event is not None and self.queue.qsize() < SUBSCRIBER_BUFFER:
            self.queue.put_nowait(event)
            return
        self.dropped = True
        self.queue.put_nowait(None)


class LiveBoard:
    """The board and its subscribers; ``apply`` may be called from any thread."""

    def __init__(self, board: Board) -> None:
        self._board = board
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()

    def apply(self, outcome: CycleOutcome) -> Json | None:
        with self._lock:
            event = self._board.apply(outcome)
            if event is not None:
                for subscriber in self._subscribers:
                    _deliver(subscriber, event)
            return event

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> tuple[Subscription, Json]:
        """A new subscription and the snapshot it starts from."""
        subscription = Subscription(loop)
        with self._lock:
            self._subscribers.add(subscription)
            return subscription, self._board.snapshot()

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def snapshot(self) -> Json:
        with self._lock:
            return self._board.snapshot()

    def close(self) -> None:
        """Tell every browser's stream to end (the server is shutting down)."""
        with self._lock:
            for subscriber in self._subscribers:
                _deliver(subscriber, None)


def _deliver(subscriber: Subscription, event: Json | None) -> None:
    with contextlib.suppress(RuntimeError):  # its event loop has closed: server gone
        subscriber.loop.call_soon_threadsafe(subscriber.offer, event)


class _ClientLog:
    """librdkafka's log lines into Python logging, until muted.

    They are queued by librdkafka and delivered when the client is polled or closed; after a
    failed start they only repeat the error ``start`` reports in one line, so they are muted
    before the client is closed."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(LIBRDKAFKA_LOGGER)
        self.muted = False

    def log(self, level: int, msg: str, *args: object) -> None:
        if not self.muted:
            self._logger.log(level, msg, *args)


class CommitFeed:
    """Follows the commit topic into a LiveBoard on a daemon thread."""

    def __init__(self, settings: Settings, live: LiveBoard) -> None:
        self._client_log = _ClientLog()
        self._live = live
        self._log = CommitLog.open(settings, "dashboard", logger=self._client_log)
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-feed", daemon=True)
        self._partitions: list[int] = []
        self.applied = 0

    def start(self) -> None:
        """Assign every partition of the commit topic from the beginning and start reading.

        Raises KafkaSetupError (broker unreachable, topic missing) with the fix.
        """
        try:
            self._partitions = self._log.partitions()
        except KafkaSetupError:
            self._client_log.muted = True
            self.close()
            raise
        log.info("following %s (%d partitions)", self._log.topic, len(self._partitions))
        self._thread.start()

    def _run(self) -> None:
        for read in self._log.follow([(p, OFFSET_BEGINNING) for p in self._partitions]):
            if self._stop.is_set():
                return
            if read is None:
                continue
            if isinstance(read, DecodeError):
                log.warning("skipping a record: %s", read)
            elif self._live.apply(read) is not None:
                self.applied += 1

    def close(self) -> None:
        """Stop the thread and close the consumer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._log.close()
