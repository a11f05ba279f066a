"""EventBuffer: the events of one open cycle, kept as the raw bytes they were read as.

A buffered event costs its value's bytes, an entry in the cycle's set of event ids, and 13
bytes of offsets and flags — no decoded dataclass, no Decimals, no per-event tuple (about
250 bytes for a typical fill with a UUID event id; ``tests/unit/test_cycle_buffer.py``
measures it). The decider decodes the values again, once, when the cycle is decided; a
dead-lettered cycle gives its records back as they were read.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]

_FILL = 1  # flag bits of an event
_INVALID = 2
_WHERE_SHIFT = 2  # the rest: index into ``wheres``


@dataclass(slots=True)
class BufferedRecord:
    """A buffered record as it was read: where, its key and its value."""

    where: TopicPartition
    offset: int
    key: bytes | None
    value: bytes | None
    valid: bool = True  # False: it was dead-lettered as invalid when it was read


@dataclass(slots=True)
class EventBuffer:
    """Raw values back to back in one bytearray, with per-event end, offset and flags.

    ``key`` is the session id's bytes, the key upstream uses; a record keyed otherwise keeps
    its own key (rare: the partition check already passed).
    """

    key: bytes
    raw: bytearray = field(default_factory=bytearray)
    ends: array[int] = field(default_factory=lambda: array("Q"))
    offsets: array[int] = field(default_factory=lambda: array("q"))
    flags: bytearray = field(default_factory=bytearray)
    wheres: list[TopicPartition] = field(default_factory=list)
    other_keys: dict[int, bytes | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def nbytes(self) -> int:
        """What the buffer holds, roughly as the process pays for it."""
        return len(self.raw) + 13 * len(self.offsets)

    def append(
        self,
        where: TopicPartition,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        *,
        is_fill: bool,
        invalid: bool,
    ) -> None:
        try:
            index = self.wheres.index(where)
        except ValueError:
            index = len(self.wheres)
            self.wheres.append(where)
        if key != self.key:
            self.other_keys[len(self.offsets)] = key
        self.raw += value or b""
        self.ends.append(len(self.raw))
        self.offsets.append(offset)
        self.flags.append(
            (index << _WHERE_SHIFT) | (_FILL if is_fill else 0) | (_INVALID if invalid else 0)
        )

    def values(self, *, fills: bool) -> Iterator[tuple[TopicPartition, int, bytes]]:
        """The valid fills (or P&L reports) in the order they were read."""
        start = 0
        for i, end in enumerate(self.ends):
            flag = self.flags[i]
            if not flag & _INVALID and bool(flag & _FILL) is fills:
                where = self.wheres[flag >> _WHERE_SHIFT]
                yield where, self.offsets[i], bytes(self.raw[start:end])
            start = end

    def records(self, first: int = 0, count: int | None = None) -> Iterator[BufferedRecord]:
        """The buffered records from index ``first`` on (``count`` of them, default all),
        valid or not, as they were read (for dead letters)."""
        last = len(self.ends) if count is None else min(len(self.ends), first + count)
        start = self.ends[first - 1] if first > 0 else 0
        for i in range(first, last):
            end = self.ends[i]
            value = bytes(self.raw[start:end]) or None
            key = self.other_keys.get(i, self.key)
            flag = self.flags[i]
            where = self.wheres[flag >> _WHERE_SHIFT]
            yield BufferedRecord(where, self.offsets[i], key, value, not flag & _INVALID)
            start = end

    def first_offsets(self, first: int) -> dict[TopicPartition, int]:
        """Per partition, the lowest offset of the records from index ``first`` on."""
        found: dict[TopicPartition, int] = {}
        for i in range(first, len(self.offsets)):
            where = self.wheres[self.flags[i] >> _WHERE_SHIFT]
            if where not in found or self.offsets[i] < found[where]:
                found[where] = self.offsets[i]
            if len(found) == len(self.wheres):
                break
        return found
