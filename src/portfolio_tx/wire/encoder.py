"""Avro binary encoding of the wire records, compiled once per schema: the hot path's encoder.

``Codec.encode`` used to build a dict per record (and per nested position, lot and mark),
convert every decimal, and hand the dict to fastavro's generic writer. ``compile_encoder``
turns a record schema and its ``Shape`` into one closure per field that reads the dataclass
attribute and appends its Avro binary form to a bytearray: zig-zag varints for int and
long, length-prefixed UTF-8 and bytes, the decimal's unscaled two's complement
(``DecimalType.unscaled_bytes``), a branch index for ``["null", X]`` unions, blocks for
arrays. The output is byte for byte what ``fastavro.schemaless_writer`` writes from the
same record (tests/unit/test_avro_encoder.py holds the two equal on random records of every
wire type); fastavro stays the reference and the reader.

Only what the project's schemas use is supported (records, enums, strings, int, long,
bytes decimals, arrays, null unions); anything else raises ``TypeError`` when compiling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from portfolio_tx.wire.records import DecimalType, Shape

Write = Callable[[bytearray, Any], None]

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _varint(out: bytearray, n: int) -> None:
    """Zig-zag varint of a long already range-checked."""
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _long(out: bytearray, n: int) -> None:
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise ValueError(f"{n!r} is not an Avro long")
    _varint(out, n)


def _int(out: bytearray, n: int) -> None:
    if not _INT_MIN <= n <= _INT_MAX:
        raise ValueError(f"{n!r} is not an Avro int")
    _varint(out, n)


def _string(out: bytearray, text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{text!r} is not a string")
    data = text.encode()
    _varint(out, len(data))
    out += data


def _decimal(kind: DecimalType) -> Write:
    unscaled = kind.unscaled_bytes

    def write(out: bytearray, value: Any) -> None:
        data = unscaled(value)
        _varint(out, len(data))
        out += data

    return write


def _enum(symbols: list[str]) -> Write:
    index = {symbol: i for i, symbol in enumerate(symbols)}

    def write(out: bytearray, value: Any) -> None:
        name = value.value if isinstance(value, Enum) else value
        _varint(out, index[name])  # KeyError: not a symbol of the enum

    return write


def _nullable(branch: int, inner: Write) -> Write:
    def write(out: bytearray, value: Any) -> None:
        if value is None:
            _varint(out, 1 - branch)
        else:
            _varint(out, branch)
            inner(out, value)

    return write


def _array(item: Write) -> Write:
    def write(out: bytearray, values: Any) -> None:
        if values:
            _varint(out, len(values))
            for value in values:
                item(out, value)
        out.append(0)

    return write


def _record(fields: list[tuple[str, Write]]) -> Write:
    def write(out: bytearray, value: Any) -> None:
        if type(value) is tuple:  # the fields in schema order (``outcomes.outcome_values``)
            if len(value) != len(fields):
                raise ValueError(
                    f"a record of {len(fields)} fields given as a tuple of {len(value)}"
                )
            for (_, field_write), item in zip(fields, value, strict=True):
                field_write(out, item)
            return
        for name, field_write in fields:
            field_write(out, getattr(value, name))

    return write


def _compile(schema: Any, shape: Shape | None, field: str | None, names: dict[str, Write]) -> Write:
    if isinstance(schema, str):
        if schema in names:
            return names[schema]
        simple: dict[str, Write] = {"string": _string, "long": _long, "int": _int}
        if schema in simple:
            return simple[schema]
        raise TypeError(f"unsupported Avro type {schema!r}")
    if isinstance(schema, list):
        if len(schema) == 2 and "null" in schema:
            branch = 1 - schema.index("null")
            return _nullable(branch, _compile(schema[branch], shape, field, names))
        raise TypeError(f"unsupported union {schema!r}")
    kind = schema["type"]
    if kind == "bytes" and schema.get("logicalType") == "decimal":
        decimal = shape.decimals.get(field) if shape is not None and field else None
        return _decimal(decimal or DecimalType(schema["precision"], schema.get("scale", 0)))
    if kind == "long":
        return _long
    if kind == "enum":
        names[schema["name"]] = written = _enum(schema["symbols"])
        return written
    if kind == "array":
        nested = shape.arrays.get(field) if shape is not None and field else None
        return _array(_compile(schema["items"], nested, None, names))
    if kind == "record":
        fields = [
            (f["name"], _compile(f["type"], shape, f["name"], names)) for f in schema["fields"]
        ]
        names[schema["name"]] = written = _record(fields)
        return written
    if isinstance(kind, (str, list, dict)):
        return _compile(kind, shape, field, names)
    raise TypeError(f"unsupported Avro type {schema!r}")


def compile_encoder(schema: Mapping[str, Any], shape: Shape) -> Callable[[Any], bytes]:
    """The Avro binary body of a ``shape.cls`` record under ``schema`` (a record schema as
    JSON), without header."""
    write = _compile(dict(schema), shape, None, {})

    def encode(value: Any) -> bytes:
        out = bytearray()
        write(out, value)
        return bytes(out)

    return encode
