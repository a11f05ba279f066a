"""The compiled core's Python side: the wire records' plans for ``portfolio_tx_native``.

``portfolio_tx_native`` (the Rust crate in ``native/``, built by ``make install``) holds one
``RecordCodec`` per wire record that encodes the record to its Avro body and decodes a body
back to the record, decimals as exact scaled integers (no float). It is byte for byte and
digit for digit what the pure-Python path does (``wire.encoder``, then fastavro and
``Shape.from_avro``): tests/unit/test_native_differential.py holds the two equal on random
records. The pure path stays the reference and the fallback: ``record_codec`` returns None
when the extension is not installed or ``PTX_NATIVE=0`` is set, and the codec then uses
``wire.encoder`` and fastavro as before.

A plan is the record schema walked once with its ``Shape``, as nested tuples the crate
compiles: ``("long",)``, ``("int",)``, ``("string",)``, ``("decimal", precision, scale,
field)``, ``("enum", symbols, members)``, ``("nullable", branch, plan)``, ``("array",
plan)``, ``("record", cls, ((field, plan), ...), direct)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from enum import Enum
from typing import Any, Protocol

from portfolio_tx.wire.records import DecimalType, RecordType, Shape

Plan = tuple[Any, ...]


class RecordCodec(Protocol):
    """What ``portfolio_tx_native.RecordCodec`` offers (see native/src/lib.rs)."""

    def encode(self, record: Any) -> bytes: ...

    def decode(self, value: bytes, start: int) -> Any: ...

    def rows(self, values: list[bytes], header: bytes, wanted: list[int]) -> Any: ...


def native_module() -> Any:
    """The extension module, or None when it is not installed."""
    try:
        import portfolio_tx_native
    except ImportError:
        return None
    return portfolio_tx_native


def enabled() -> bool:
    """Whether the codec takes the compiled path: installed, and not ``PTX_NATIVE=0``."""
    return os.environ.get("PTX_NATIVE", "1") != "0" and native_module() is not None


def _enum_plan(symbols: list[str], enum: type[Enum] | None) -> Plan:
    members: list[Any] = []
    for symbol in symbols:
        try:
            members.append(symbol if enum is None else enum(symbol))
        except ValueError:
            members.append(symbol)  # not a member: the dataclass check rejects it
    return ("enum", list(symbols), members)


def plan(
    schema: Any,
    shape: Shape | None,
    field: str | None = None,
    names: dict[str, Plan] | None = None,
) -> Plan:
    """The plan of ``schema`` (parsed JSON) for ``shape``'s class; ``field`` is the record
    field it is the type of. Raises ``TypeError`` for a type the crate does not support."""
    names = {} if names is None else names
    if isinstance(schema, str):
        if schema in names:
            return names[schema]
        if schema in ("string", "long", "int"):
            return (schema,)
        raise TypeError(f"unsupported Avro type {schema!r}")
    if isinstance(schema, list):
        if len(schema) == 2 and "null" in schema:
            branch = 1 - schema.index("null")
            return ("nullable", branch, plan(schema[branch], shape, field, names))
        raise TypeError(f"unsupported union {schema!r}")
    kind = schema["type"]
    if kind == "bytes" and schema.get("logicalType") == "decimal":
        decimal = shape.decimals.get(field) if shape is not None and field else None
        decimal = decimal or DecimalType(schema["precision"], schema.get("scale", 0))
        return ("decimal", decimal.precision, decimal.scale, field or "")
    if kind == "long":
        return ("long",)
    if kind == "enum":
        enum = shape.enums.get(field) if shape is not None and field else None
        names[schema["name"]] = planned = _enum_plan(schema["symbols"], enum)
        return planned
    if kind == "array":
        nested = shape.arrays.get(field) if shape is not None and field else None
        return ("array", plan(schema["items"], nested, None, names))
    if kind == "record":
        if shape is None:
            raise TypeError(f"record {schema['name']!r} has no dataclass")
        fields = tuple(
            (f["name"], plan(f["type"], shape, f["name"], names)) for f in schema["fields"]
        )
        direct = _stores_only(shape.cls, tuple(name for name, _ in fields))
        names[schema["name"]] = planned = ("record", shape.cls, fields, direct)
        return planned
    if isinstance(kind, (str, list, dict)):
        return plan(kind, shape, field, names)
    raise TypeError(f"unsupported Avro type {schema!r}")


def _stores_only(cls: type[Any], names: tuple[str, ...]) -> bool:
    """Whether ``cls``'s ``__init__`` does nothing but store exactly ``names``: a dataclass
    with those fields, all in ``__init__``, and no ``__post_init__``. The crate then makes
    the record without calling it (``object.__new__`` and ``object.__setattr__``)."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return False
    fields = dataclasses.fields(cls)
    return all(f.init for f in fields) and sorted(f.name for f in fields) == sorted(names)


def record_codec(record_type: RecordType) -> RecordCodec | None:
    """The compiled codec of ``record_type``, or None when the compiled path is off."""
    if not enabled():
        return None
    codec: RecordCodec = native_module().RecordCodec(
        plan(json.loads(record_type.schema_text), record_type.shape)
    )
    return codec
