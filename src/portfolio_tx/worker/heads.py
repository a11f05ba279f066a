"""PublishedHeads: per session, the last outcome the commit topic holds (CONTRACT §4).

The commit topic, not Redis, is the record of what was decided. A Redis that went back in
time (restarted from an older snapshot, a replica promoted without the last writes) still
answers, with readiness keys and all, but with states older than their last published
outcome; staging on such a state would silently re-decide cycles on the wrong books. So the
worker keeps, for every session of its assigned partitions, the cycle id and state version
of the last outcome on the commit topic — read from the topic when a partition is assigned,
then advanced by each of its own Kafka commits — and a state read from the store that is
behind it (a lower version or a lower last decided cycle) is repaired from the commit topic
before anything is staged on it. The check is two dict lookups per state read.
"""

from __future__ import annotations

from dataclasses import dataclass

from portfolio_tx.errors import StateStoreError
from portfolio_tx.store.port import SessionSnapshot


@dataclass(frozen=True, slots=True)
class Head:
    """The last published outcome of a session: its cycle id and the state version after it."""

    cycle_id: int
    version: int


class StateBehind(StateStoreError):
    """The store holds sessions older than their last published outcome: repair them first."""

    def __init__(self, partition: int, sessions: dict[str, tuple[SessionSnapshot, Head]]) -> None:
        self.partition = partition
        self.sessions = sessions
        listed = ", ".join(
            f"{s} (stored cycle {_cycle(snap)} v{snap.state.version}, "
            f"published cycle {head.cycle_id} v{head.version})"
            for s, (snap, head) in sorted(sessions.items())[:5]
        )
        more = f" and {len(sessions) - 5} more" if len(sessions) > 5 else ""
        super().__init__(f"partition {partition}: the store is behind for {listed}{more}")


HEAD_HEADER = "ptx-head"
"""A Kafka header on every outcome record the worker produces: ``<cycle id>:<version>``, so
that the heads of a partition are read without decoding a single outcome."""


def head_header(head: Head) -> tuple[str, bytes]:
    return HEAD_HEADER, f"{head.cycle_id}:{head.version}".encode()


Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None


def head_from_headers(headers: Headers) -> Head | None:
    """The head an outcome record's headers carry; None for a record without (an older
    writer's, or another producer's): decode its value instead."""
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    for name, value in pairs:
        if name == HEAD_HEADER and value:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            cycle, _, version = text.partition(":")
            try:
                return Head(int(cycle), int(version))
            except ValueError:
                return None
    return None


def _cycle(snapshot: SessionSnapshot) -> int:
    return -1 if snapshot.last_decided is None else snapshot.last_decided


def is_behind(snapshot: SessionSnapshot, head: Head) -> bool:
    """A stored state older than the published head; one ahead of it (decided in the store,
    not yet published) is not behind: the fence turns it into re-publishing."""
    return _cycle(snapshot) < head.cycle_id or snapshot.state.version < head.version


class PublishedHeads:
    """Heads of the sessions of the partitions read from the commit topic."""

    def __init__(self) -> None:
        self._by_partition: dict[int, dict[str, Head]] = {}

    def known(self, partition: int) -> bool:
        return partition in self._by_partition

    def partition_heads(self, partition: int) -> dict[str, Head]:
        return self._by_partition.get(partition, {})

    def learn(self, partition: int, heads: dict[str, Head]) -> None:
        """What the commit topic holds for ``partition`` (read from its beginning)."""
        self._by_partition[partition] = dict(heads)

    def advance(self, partition: int, session_id: str, head: Head) -> None:
        """An outcome of this worker's is now committed on the topic."""
        known = self._by_partition.get(partition)
        if known is None:
            return
        current = known.get(session_id)
        if current is None or head.cycle_id >= current.cycle_id:
            known[session_id] = head

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._by_partition.pop(partition, None)

    def check(self, partition: int, session_id: str, snapshot: SessionSnapshot) -> None:
        """Raise StateBehind when ``snapshot`` is older than the session's published head."""
        head = self._by_partition.get(partition, {}).get(session_id)
        if head is not None and is_behind(snapshot, head):
            raise StateBehind(partition, {session_id: (snapshot, head)})
