"""CommitLog: the one reader of the commit topic, shared by every part that reads outcomes.

``follow`` is the one loop: the worker's restore and its check of a cycle in doubt, ``tail``,
the demo, the dashboard, ``verify`` and ``replay`` all read through it, ``read_committed``
(a reader sees an outcome only once its transaction committed). Reading to the end of a
partition waits for open transactions: a dead instance's holds the end back until it times
out, so ``wait_s`` bounds a read with the transaction timeout.

A record that is not an outcome is yielded as its DecodeError (a follower reports it, a
reader to the end skips it); an empty poll is yielded as None, so a follower checks its own
stop condition between polls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from portfolio_tx.config import Settings
from portfolio_tx.errors import DecodeError, KafkaSetupError
from portfolio_tx.kafka.clients import UNREACHABLE_FIX, kafka_errors, make_reader
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.outcomes import CycleOutcome

log = logging.getLogger("portfolio_tx.kafka")

_METADATA_TIMEOUT_S = 10.0


class CommitLog:
    def __init__(
        self, consumer: Consumer, topic: str, codec: Codec, wait_s: float, *, where: str = ""
    ) -> None:
        self._where = where or "the configured bootstrap servers"
        self._consumer = consumer
        self._topic = topic
        self._codec = codec
        self._wait_s = wait_s

    @classmethod
    def open(
        cls,
        settings: Settings,
        purpose: str,
        *,
        codec: Codec | None = None,
        wait_s: float = 60.0,
        **extra: Any,
    ) -> CommitLog:
        """A reader of ``settings``' commit topic named for ``purpose`` (``extra``: more
        client settings). Raises KafkaSetupError."""
        return cls(
            make_reader(settings, purpose, **extra),
            settings.topics.commits,
            codec if codec is not None else Codec(settings.schema_registry_url),
            wait_s,
            where=settings.bootstrap_servers,
        )

    @property
    def topic(self) -> str:
        return self._topic

    def partitions(self) -> list[int]:
        """The commit topic's partitions. Raises KafkaSetupError with the fix when the broker
        cannot be reached or the topic does not exist."""
        with kafka_errors(f"cannot reach Kafka at {self._where}", fix=UNREACHABLE_FIX):
            metadata = self._consumer.list_topics(self._topic, timeout=_METADATA_TIMEOUT_S)
        found = metadata.topics.get(self._topic)
        if found is None or found.error is not None or not found.partitions:
            raise KafkaSetupError(
                f"topic {self._topic} does not exist — run portfolio-tx topics create "
                "(and check PTX_TOPIC_PREFIX / PTX_TOPIC_COMMITS)"
            )
        return sorted(found.partitions)

    def records(
        self, starts: Iterable[tuple[int, int]] | None = None, *, to_end: bool = False
    ) -> Iterator[Message | None]:
        """The one loop: each committed record from ``starts`` ((partition, offset) pairs;
        every partition from the beginning when None), undecoded; None after an empty poll.

        With ``to_end``, returns once every partition reached its end, and raises
        KafkaSetupError when no record arrives for ``wait_s`` before that.
        """
        if starts is None:
            starts = [(p, OFFSET_BEGINNING) for p in self.partitions()]
        assigned = [TopicPartition(self._topic, p, o) for p, o in starts]
        if to_end:  # a partition with nothing to read is not waited for (a first restore)
            assigned = [tp for tp in assigned if not self._nothing_after(tp)]
        pending = {tp.partition for tp in assigned}
        if not pending:
            return
        self._consumer.assign(assigned)
        deadline = time.monotonic() + self._wait_s
        try:
            while True:
                messages = self._consumer.consume(1000, timeout=0.2)
                if not messages:
                    if to_end and time.monotonic() > deadline:
                        raise KafkaSetupError(
                            f"could not read {self._topic}{sorted(pending)} to its end "
                            f"within {self._wait_s:.0f}s"
                        )
                    yield None
                    continue
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("%s: %s", self._topic, error)
                        elif to_end:
                            pending.discard(message.partition() or 0)
                            if not pending:
                                return
                        continue
                    deadline = time.monotonic() + self._wait_s
                    yield message
        finally:
            self._consumer.unassign()

    def _nothing_after(self, start: TopicPartition) -> bool:
        """True when the partition holds no record at or after ``start`` (its high watermark
        is at its beginning, or at or before the start offset); one metadata round trip
        instead of a poll that waits for the end. False when the broker cannot say."""
        try:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self._topic, start.partition), timeout=self._wait_s, cached=False
            )
        except KafkaException:
            return False
        if low < 0 or high < 0:  # not known
            return False
        return high <= low or (start.offset >= 0 and start.offset >= high)

    def follow(
        self, starts: Iterable[tuple[int, int]] | None = None, *, to_end: bool = False
    ) -> Iterator[CycleOutcome | DecodeError | None]:
        """``records`` decoded: each outcome, or why a record is not one; None when idle."""
        for message in self.records(starts, to_end=to_end):
            yield None if message is None else self._decode(message)

    def outcomes(self) -> Iterator[CycleOutcome]:
        """Every committed outcome, every partition from the beginning to its end; records
        that are not outcomes skipped."""
        for read in self.follow(to_end=True):
            if isinstance(read, CycleOutcome):
                yield read

    def contains(self, partition: int, session_id: str, cycle_id: int, since_ms: int) -> bool:
        """True when a committed outcome of ``session_id``/``cycle_id`` is on ``partition``
        at or after ``since_ms``. Raises KafkaSetupError if the end is not reached in time."""
        found = self._consumer.offsets_for_times(
            [TopicPartition(self._topic, partition, max(since_ms, 0))], timeout=self._wait_s
        )
        start = found[0].offset
        if start < 0:  # nothing was written at or after since_ms
            return False
        key = session_id.encode()
        for message in self.records([(partition, start)], to_end=True):
            if message is None or message.key() != key:
                continue
            outcome = self.decode(message)
            if outcome is not None and (outcome.session_id, outcome.cycle_id) == (
                session_id,
                cycle_id,
            ):
                return True
        return False

    def read_partition(self, partition: int) -> Iterator[tuple[bytes, CycleOutcome]]:
        """Every committed outcome of ``partition`` from the beginning to its end, in order,
        with its record's value. Raises KafkaSetupError (see ``records``)."""
        for message in self.messages(partition):
            outcome = self.decode(message)
            if outcome is not None:
                value = message.value()
                assert value is not None
                yield value, outcome

    def messages(self, partition: int) -> Iterator[Message]:
        """Every committed record of ``partition`` from the beginning to its end, undecoded
        (headers are read without decoding; ``decode`` when a record needs it)."""
        for message in self.records([(partition, OFFSET_BEGINNING)], to_end=True):
            if message is not None:
                yield message

    def decode(self, message: Message) -> CycleOutcome | None:
        """The record's outcome; None for a record that is not one."""
        outcome = self._decode(message)
        return outcome if isinstance(outcome, CycleOutcome) else None

    def _decode(self, message: Message) -> CycleOutcome | DecodeError:
        try:
            return self._codec.decode(
                message.value(),
                topic=self._topic,
                partition=message.partition(),
                offset=message.offset(),
                expected=CycleOutcome,
            )
        except DecodeError as exc:
            return exc

    def close(self) -> None:
        self._consumer.close()
