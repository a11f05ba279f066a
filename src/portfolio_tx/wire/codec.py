"""Avro values on the wire: single-object encoding, or Confluent Schema Registry framing.

    single-object   C3 01 | CRC-64-AVRO fingerprint of the Parsing Canonical Form, 8 bytes
                    little-endian | Avro binary body
    registry        00 | schema id, 4 bytes big-endian | Avro binary body

A ``Codec`` writes single-object encoding, or registry framing when it has a schema registry
(the schema is registered under ``<topic>-value`` on first use). It reads both framings
whatever its configuration. Schemas and their mapping to the dataclasses live in ``records``;
the codec looks them up by fingerprint or schema id in precomputed tables.

With the compiled core installed (``wire.native``), records of the current schemas are
encoded and decoded in it; records of earlier schema versions, and every record when it is
missing or ``PTX_NATIVE=0``, take the pure path (``wire.encoder``, fastavro).

Decimals are written quantized to scale 18 (``ledger.to_wire``) and read back as the
``Decimal`` the wire holds (scale 18; equal to the original when it had at most 18 places).
Timestamps stay ``int`` epoch milliseconds both ways.

Every failure to decode, whatever raised it inside fastavro, becomes one ``DecodeError``
naming topic, partition, offset and the reason. An encode failure raises ``EncodeError``
(a ``DecodeError`` naming the topic). A schema registry that cannot be reached raises
``KafkaSetupError``: that is no fault of the record, so it must not dead-letter it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from io import BytesIO
from typing import Any, NamedTuple, TypeVar, overload

import fastavro
from fastavro.schema import to_parsing_canonical_form

from portfolio_tx.errors import DecodeError, EncodeError, KafkaSetupError
from portfolio_tx.wire.encoder import compile_encoder
from portfolio_tx.wire.events import Event
from portfolio_tx.wire.native import record_codec
from portfolio_tx.wire.records import (
    SINGLE_OBJECT_MAGIC,
    RecordType,
    full_name,
    reading_form,
    record_types,
)
from portfolio_tx.wire.registry import call_registry, registry_client

REGISTRY_MAGIC = 0x00
_SINGLE_OBJECT_HEADER_LENGTH = 10
_REGISTRY_HEADER_LENGTH = 5

_E = TypeVar("_E")


class _Rejected(Exception):
    """A reason to reject a record, raised inside the decoder and translated once."""


class _Reader(NamedTuple):
    record_type: RecordType
    writer_schema: Any
    reader_schema: Any  # None when the writer schema is ours


def _encoder(record_type: RecordType) -> Callable[[Any], bytes]:
    return compile_encoder(json.loads(record_type.schema_text), record_type.shape)


class Codec:
    """Encodes the wire records and decodes them, both framings.

    ``registry_url`` (``SCHEMA_REGISTRY_URL``) switches encoding to registry framing;
    ``registry`` injects a ready ``SchemaRegistryClient`` instead. Not thread-safe: give
    each thread its own Codec.
    """

    def __init__(self, registry_url: str | None = None, *, registry: Any = None) -> None:
        self.registry_url = registry_url
        self._registry = registry
        if registry is None and registry_url:
            self._registry = registry_client(registry_url)
        types = record_types()
        self._by_class = {rt.cls: rt for rt in types}
        # the compiled core (wire.native) when it is installed, else the pure-Python path
        self._native = {rt.cls: record_codec(rt) for rt in types}
        self._encoders = {
            rt.cls: native.encode if (native := self._native[rt.cls]) else _encoder(rt)
            for rt in types
        }
        self._by_name = {rt.full_name: rt for rt in types}
        self._by_fingerprint = {rt.header[2:]: _Reader(rt, rt.read_schema, None) for rt in types}
        for rt in types:
            for earlier, writer in rt.earlier.items():
                self._by_fingerprint[earlier] = _Reader(rt, writer, rt.read_schema)
        self._by_canonical = {rt.canonical_form: rt for rt in types}
        self._by_schema_id: dict[int, _Reader] = {}
        self._registry_headers: dict[tuple[str, type[Any]], bytes] = {}
        self._wanted: dict[tuple[type[Any], tuple[str, ...]], list[int]] = {}

    @property
    def uses_registry(self) -> bool:
        return self._registry is not None

    def encode(self, record: Event, topic: str) -> bytes:
        """The wire bytes of ``record`` as a value for ``topic``.

        Raises ``EncodeError`` when the record does not fit its schema (a decimal beyond
        precision 38 at scale 18, a wrong type, an unknown enum symbol) and
        ``KafkaSetupError`` when the schema registry cannot register the schema.
        """
        return self.encode_values(type(record), record, topic)

    def encode_values(self, cls: type[Any], values: Any, topic: str) -> bytes:
        """``encode`` for a record of class ``cls`` given as ``values``: a ``cls`` instance,
        or a plain tuple of its fields in schema order, nested records likewise (the
        worker's outcome, ``outcomes.outcome_values``: no object per row)."""
        record_type = self._by_class.get(cls)
        if record_type is None:
            raise EncodeError(f"{cls.__name__} is not a wire record", topic=topic)
        header = (
            record_type.header if self._registry is None else self._registered(record_type, topic)
        )
        try:
            body = self._encoders[cls](values)
        except Exception as exc:  # ValueError, TypeError, KeyError (enum), ArithmeticError
            raise EncodeError(f"{cls.__name__}: {exc}", topic=topic) from exc
        return header + body

    @overload
    def decode(
        self,
        value: bytes | None,
        *,
        topic: str,
        partition: int | None,
        offset: int | None,
        expected: type[_E],
    ) -> _E: ...

    @overload
    def decode(
        self,
        value: bytes | None,
        *,
        topic: str,
        partition: int | None,
        offset: int | None,
        expected: None = None,
    ) -> Event: ...

    def decode(
        self,
        value: bytes | None,
        *,
        topic: str,
        partition: int | None,
        offset: int | None,
        expected: type[Any] | None = None,
    ) -> Any:
        """The record in ``value``, read at ``topic[partition]@offset``.

        ``expected`` is the record class the topic carries; any other record is rejected.
        Raises ``DecodeError`` naming where and why for every bad value (None or empty, bad
        magic, unknown fingerprint or schema id, truncated body, trailing bytes, unknown
        enum symbol, wrong record for the topic); ``KafkaSetupError`` when the registry
        holding a schema id cannot be reached.
        """
        try:
            event = self._decode(value)
            if expected is not None and not isinstance(event, expected):
                raise _Rejected(f"expected {expected.__name__}, got {type(event).__name__}")
            return event
        except KafkaSetupError:
            raise
        except _Rejected as exc:
            raise DecodeError(str(exc), topic=topic, partition=partition, offset=offset) from None
        except Exception as exc:  # hostile bytes make fastavro raise almost anything
            reason = f"malformed body ({type(exc).__name__}: {exc})"
            raise DecodeError(reason, topic=topic, partition=partition, offset=offset) from exc

    def fields_of(
        self,
        records: list[tuple[tuple[str, int], int, bytes]],
        expected: type[Any],
        names: tuple[str, ...],
    ) -> list[tuple[Any, ...]]:
        """The ``names`` fields of the ``expected`` record in each ``((topic, partition),
        offset, value)``, as tuples, in order: what ``decode`` gives, without making the
        records (the compiled core reads them all in one call when each value carries the
        record's own single-object header). Raises DecodeError as ``decode`` does."""
        native = self._native.get(expected)
        record_type = self._by_class[expected]
        if native is not None:
            wanted = self._wanted.get((expected, names))
            if wanted is None:
                order = [f["name"] for f in json.loads(record_type.schema_text)["fields"]]
                wanted = self._wanted[(expected, names)] = [order.index(n) for n in names]
            try:
                rows: list[tuple[Any, ...]] = native.rows(
                    [value for _, _, value in records], record_type.header, wanted
                )
                return rows
            except Exception:  # noqa: S110 - another framing, or a bad value: one by one
                pass
        decode = self.decode
        return [
            tuple(getattr(decode(value, topic=t, partition=p, offset=o, expected=expected), n)
                  for n in names)
            for (t, p), o, value in records
        ]

    def _decode(self, value: bytes | None) -> Event:
        if not value:
            raise _Rejected("empty value" if value is not None else "no value (tombstone)")
        if value[:2] == SINGLE_OBJECT_MAGIC:
            if len(value) < _SINGLE_OBJECT_HEADER_LENGTH:
                raise _Rejected(f"single-object header truncated ({len(value)} bytes)")
            reader = self._by_fingerprint.get(value[2:_SINGLE_OBJECT_HEADER_LENGTH])
            if reader is None:
                raise _Rejected(f"unknown schema fingerprint {value[2:10].hex()}")
            body_at = _SINGLE_OBJECT_HEADER_LENGTH
        elif value[0] == REGISTRY_MAGIC:
            if len(value) < _REGISTRY_HEADER_LENGTH:
                raise _Rejected(f"registry header truncated ({len(value)} bytes)")
            schema_id = int.from_bytes(value[1:_REGISTRY_HEADER_LENGTH], "big")
            reader = self._by_schema_id.get(schema_id) or self._fetch(schema_id)
            body_at = _REGISTRY_HEADER_LENGTH
        else:
            raise _Rejected(f"unknown magic bytes {value[:2].hex()}")
        native = self._native[reader.record_type.cls] if reader.reader_schema is None else None
        if native is not None:
            decoded, end = native.decode(value, body_at)
            if end != len(value):
                raise _Rejected(f"{len(value) - end} bytes after the end of the record")
            compiled: Event = decoded
            return compiled
        stream = BytesIO(value)
        stream.seek(body_at)
        record = fastavro.schemaless_reader(stream, reader.writer_schema, reader.reader_schema)
        if stream.tell() != len(value):
            raise _Rejected(f"{len(value) - stream.tell()} bytes after the end of the record")
        if not isinstance(record, dict):
            raise _Rejected(f"body is not a record ({type(record).__name__})")
        event: Event = reader.record_type.shape.from_avro(record)
        return event

    def _registered(self, record_type: RecordType, topic: str) -> bytes:
        """The registry header for ``record_type`` on ``topic``, registering it once."""
        key = (topic, record_type.cls)
        header = self._registry_headers.get(key)
        if header is None:
            from confluent_kafka.schema_registry import Schema

            subject = f"{topic}-value"
            schema = Schema(record_type.schema_text, "AVRO")
            schema_id = self._call_registry(
                lambda: self._registry.register_schema(subject, schema), f"register {subject}"
            )
            header = bytes([REGISTRY_MAGIC]) + int(schema_id).to_bytes(4, "big")
            self._registry_headers[key] = header
            self._by_schema_id[int(schema_id)] = _Reader(record_type, record_type.read_schema, None)
        return header

    def _fetch(self, schema_id: int) -> _Reader:
        """The reader for a registry schema id: ours when the canonical form matches."""
        if self._registry is None:
            raise _Rejected(
                f"registry-framed value (schema id {schema_id}) but no schema registry is "
                "configured (set SCHEMA_REGISTRY_URL)"
            )
        from confluent_kafka.schema_registry import SchemaRegistryError

        try:
            schema = self._call_registry(
                lambda: self._registry.get_schema(schema_id), f"fetch schema id {schema_id}"
            )
        except KafkaSetupError as exc:
            cause = exc.__cause__
            if isinstance(cause, SchemaRegistryError) and cause.http_status_code == 404:
                raise _Rejected(f"schema id {schema_id} is not in the registry") from None
            raise
        parsed = json.loads(schema.schema_str)
        writer = fastavro.parse_schema(reading_form(parsed))
        ours = self._by_canonical.get(to_parsing_canonical_form(writer))
        if ours is not None:
            reader = _Reader(ours, ours.read_schema, None)
        else:
            name = full_name(parsed) if isinstance(parsed, dict) else repr(parsed)
            target = self._by_name.get(name)
            if target is None:
                raise _Rejected(f"schema id {schema_id} is {name}, not a portfolio-tx record")
            reader = _Reader(target, writer, target.read_schema)
        self._by_schema_id[schema_id] = reader
        return reader

    def _call_registry(self, call: Callable[[], _E], what: str) -> _E:
        return call_registry(call, self.registry_url or "the injected client", what)
