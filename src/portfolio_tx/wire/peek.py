"""Whose cycle a fill or a P&L report is, read from its first bytes without decoding it.

Both schemas begin with ``event_id``, ``session_id``, ``cycle_id`` (string, string, long):
after the single-object header a record's body starts with two length-prefixed strings and
a zigzag varint. The worker reads this much of the records that arrive for a cycle it has
refused already (a flood past its limit): they are dead-lettered whole with the cycle's
reason whatever the rest of them holds, and a full decode cost most of the time of each.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from portfolio_tx.wire.records import RecordType

PEEKED_FIELDS = ("event_id", "session_id", "cycle_id")
_HEADER_LENGTH = 10  # C3 01 and the 8-byte fingerprint


def peekable_headers(types: Iterable[RecordType]) -> frozenset[bytes]:
    """The single-object headers of the record types whose schema starts with the fields
    ``session_and_cycle`` reads (current versions only: an earlier writer may differ)."""
    return frozenset(
        rt.header
        for rt in types
        if tuple(_field_names(rt.write_schema)[: len(PEEKED_FIELDS)]) == PEEKED_FIELDS
    )


def session_and_cycle(value: bytes | None, headers: frozenset[bytes]) -> tuple[str, int] | None:
    """(session id, cycle id) of a single-object record with one of ``headers``, or None
    when it has another header or its first fields are not well formed."""
    if value is None or value[:_HEADER_LENGTH] not in headers:
        return None
    try:
        length, at = _long(value, _HEADER_LENGTH)
        if length < 0:
            return None
        length, at = _long(value, at + length)
        end = at + length
        if length < 0 or end > len(value):
            return None
        session = value[at:end].decode()
        cycle_id, _ = _long(value, end)
    except (IndexError, UnicodeDecodeError):
        return None
    return session, cycle_id


def _long(data: bytes, at: int) -> tuple[int, int]:
    """The zigzag varint at ``at`` and the position after it (IndexError if cut short)."""
    raw = shift = 0
    while True:
        byte = data[at]
        at += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1), at
        shift += 7
        if shift > 63:
            raise IndexError("varint longer than 10 bytes")


def _field_names(schema: Any) -> list[str]:
    return [f["name"] for f in schema.get("fields", [])] if isinstance(schema, dict) else []
