"""The wire records: each schema in ``schemas/*.avsc`` and how it maps to its dataclass.

Schemas are read from the package data and parsed once per process (``record_types``). For
each record this module holds the parsed schemas, the Parsing Canonical Form, the
single-object header (``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint) and a
``Shape`` that turns a dataclass into the dict fastavro writes and back.

Decimals are the contract's decimal(38,18) (``WIRE``), written through ``ledger.to_wire``,
except the two fields that let a state be rebuilt exactly from the commit topic: a lot's
total cost and the state's cash carry the ledger's full scale 36 as decimal(76,36)
(``EXACT``). A value that does not fit raises ``ValueError``, on write and on read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, localcontext
from enum import Enum
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from portfolio_tx.ledger import LEDGER_CONTEXT, OutcomeKind, PnlKind, Side, to_wire
from portfolio_tx.wire.events import CycleMarker, Fill, MarkPrice, PnlEvent
from portfolio_tx.wire.outcomes import (
    CycleOutcome,
    OutcomeLot,
    OutcomeMark,
    OutcomeOffset,
    OutcomePosition,
)

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
AvroRecord = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DecimalType:
    """An Avro ``bytes`` decimal of ``precision`` digits, ``scale`` of them decimals."""

    precision: int
    scale: int
    _factor: Decimal = field(init=False, repr=False, compare=False)
    _bound: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_factor", Decimal(10) ** self.scale)
        # every unscaled integer that needs more than ``precision`` digits is at least this
        object.__setattr__(self, "_bound", 10**self.precision)
        # the fast path of unscaled_bytes needs the integral part of value * 10**scale to
        # leave the ledger's precision some fractional digits
        assert self.precision < LEDGER_CONTEXT.prec

    def quantize(self, value: Decimal) -> Decimal:
        """``value`` at this scale (half-even); ValueError when it needs more digits."""
        if self == WIRE:
            return to_wire(value)
        with localcontext(LEDGER_CONTEXT):
            quantized = value.quantize(Decimal(1).scaleb(-self.scale))
        if len(quantized.as_tuple().digits) > self.precision:
            raise ValueError(f"{value} does not fit decimal({self.precision},{self.scale})")
        return quantized

    def unscaled_bytes(self, value: Decimal) -> bytes:
        """The Avro encoding of ``value``: its unscaled integer, big-endian two's complement
        (what fastavro would compute, without its digit-by-digit loop).

        Fast path: ``value * 10**scale`` in the ledger's context is already an integer when
        ``value`` has at most ``scale`` decimals (every ledger figure on the wire does), so
        no quantize is needed. The product keeps at least 24 fractional digits (precision
        100, at most 76 integral ones): if it reads as an integer, half-even rounding of the
        exact value gives that same integer. Anything else takes the quantizing path.
        """
        scaled = LEDGER_CONTEXT.multiply(value, self._factor)
        number = int(scaled) if scaled.is_finite() else None
        if number is None or number != scaled:
            number = int(self.quantize(value).scaleb(self.scale, LEDGER_CONTEXT))
        elif not -self._bound < number < self._bound:
            raise ValueError(f"{value} does not fit decimal({self.precision},{self.scale})")
        return number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True)

    def unscaled_bytes_reference(self, value: Decimal) -> bytes:
        """``unscaled_bytes`` the slow, obvious way (quantize, then scale): what the fast
        path is tested against."""
        number = int(self.quantize(value).scaleb(self.scale, LEDGER_CONTEXT))
        return number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True)

    def from_unscaled(self, name: str, data: bytes) -> Decimal:
        """The Decimal an Avro decimal's bytes stand for (big-endian two's complement of the
        unscaled integer); ValueError past this type's precision."""
        number = int.from_bytes(data, "big", signed=True)
        if not -self._bound < number < self._bound:
            raise ValueError(f"{name} does not fit decimal({self.precision},{self.scale})")
        return Decimal(number).scaleb(-self.scale, LEDGER_CONTEXT)


WIRE = DecimalType(38, 18)
"""The contract's decimals (CONTRACT §3)."""
EXACT = DecimalType(76, 36)
"""Holds any product of two WIRE decimals exactly: the ledger's lot costs and cash."""


class Shape:
    """How one dataclass maps to its Avro record: decimals, enums, nested arrays.

    ``decimals`` names each decimal field and its type; a None value (an optional field)
    passes through. ``from_avro`` consumes the dict fastavro returned.
    """

    def __init__(
        self,
        cls: type[Any],
        decimals: Mapping[str, DecimalType] | None = None,
        enums: Mapping[str, type[Enum]] | None = None,
        arrays: Mapping[str, Shape] | None = None,
        strings: tuple[str, ...] = (),
    ) -> None:
        self.cls = cls
        self.names = tuple(f.name for f in fields(cls))
        self.decimals = dict(decimals or {})
        self.enums = dict(enums or {})
        self.arrays = dict(arrays or {})
        self.strings = strings  # arrays of strings: tuples in the dataclass

    def to_avro(self, value: Any) -> AvroRecord:
        record = {name: getattr(value, name) for name in self.names}
        for name, kind in self.decimals.items():
            if record[name] is not None:
                record[name] = kind.unscaled_bytes(record[name])
        for name in self.enums:
            record[name] = str(record[name])
        for name, shape in self.arrays.items():
            record[name] = [shape.to_avro(item) for item in record[name]]
        for name in self.strings:
            record[name] = list(record[name])
        return record

    def from_avro(self, record: AvroRecord) -> Any:
        for name, kind in self.decimals.items():
            if record[name] is not None:
                record[name] = kind.from_unscaled(name, record[name])
        for name, enum in self.enums.items():
            record[name] = enum(record[name])
        for name, shape in self.arrays.items():
            record[name] = tuple(shape.from_avro(item) for item in record[name])
        for name in self.strings:
            record[name] = tuple(record[name])
        return self.cls(**record)


def _wire(*names: str) -> dict[str, DecimalType]:
    return dict.fromkeys(names, WIRE)


_OUTCOME_MONEY = _wire(
    "cash",
    "positions_value",
    "total",
    "previous_equity",
    "expected_equity",
    "delta",
    "epsilon",
    "realized_pnl",
    "fees",
)
_SHAPES: Mapping[str, Shape] = {
    "fill.avsc": Shape(Fill, _wire("quantity", "price", "fee"), {"side": Side}),
    "pnl_event.avsc": Shape(PnlEvent, _wire("amount"), {"kind": PnlKind}),
    "cycle_marker.avsc": Shape(CycleMarker),
    "mark_price.avsc": Shape(MarkPrice, _wire("price")),
    "cycle_outcome.avsc": Shape(
        CycleOutcome,
        {
            **_OUTCOME_MONEY,
            "state_cash": EXACT,
            "transfers": EXACT,
            "residual": EXACT,
            "state_realized_pnl": EXACT,
        },
        {"outcome": OutcomeKind},
        arrays={
            "positions": Shape(OutcomePosition, _wire("quantity", "avg_entry_price", "mark_price")),
            "lots": Shape(OutcomeLot, {"quantity": WIRE, "cost": EXACT}),
            "marks": Shape(OutcomeMark, _wire("price")),
            "read_through": Shape(OutcomeOffset),
        },
        strings=("event_ids",),
    ),
}


@dataclass(frozen=True, slots=True)
class RecordType:
    """One wire record: its class, schema text, parsed schemas and single-object header.

    ``read_schema`` is the schema in its ``reading_form`` (timestamps as longs, decimals as
    bytes); both have the same canonical form and fingerprint. ``earlier``
    maps the single-object fingerprint of each earlier version of the schema
    (``schemas/earlier/<name>.<n>.avsc``) to that version, parsed for reading: records an
    older writer left on a topic are read with Avro schema resolution (new fields take
    their defaults).
    """

    cls: type[Any]
    full_name: str
    schema_text: str
    write_schema: Any
    read_schema: Any
    canonical_form: str
    header: bytes
    shape: Shape
    earlier: Mapping[bytes, Any] = field(default_factory=dict)


def reading_form(node: Any) -> Any:
    """A copy of a schema to read with: timestamps are plain longs (``ts`` reads back as
    an int) and decimals plain bytes, turned into Decimals by ``Shape.from_avro`` with int
    arithmetic (fastavro's decimal reader costs more than the rest of a Fill)."""
    if isinstance(node, list):
        return [reading_form(item) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {key: reading_form(value) for key, value in node.items()}
    kind = str(copy.get("logicalType", ""))
    if kind.startswith(("timestamp-", "local-timestamp-")) or kind == "decimal":
        del copy["logicalType"]
    return copy


def full_name(schema: Mapping[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


@cache
def record_types() -> tuple[RecordType, ...]:
    """Every wire record, its schema parsed once per process."""
    folder = resources.files("portfolio_tx.wire") / "schemas"
    types = []
    for filename, shape in _SHAPES.items():
        text = (folder / filename).read_text(encoding="utf-8")
        schema = json.loads(text)
        write_schema = fastavro.parse_schema(schema)
        canonical = to_parsing_canonical_form(write_schema)
        header = SINGLE_OBJECT_MAGIC + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        read_schema = fastavro.parse_schema(reading_form(schema))
        types.append(
            RecordType(
                shape.cls,
                full_name(schema),
                text,
                write_schema,
                read_schema,
                canonical,
                header,
                shape,
                MappingProxyType(_earlier_versions(folder / "earlier", filename)),
            )
        )
    return tuple(types)


def _earlier_versions(folder: Traversable, filename: str) -> dict[bytes, Any]:
    stem = filename.removesuffix(".avsc")
    found: dict[bytes, Any] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        if not (entry.name.startswith(f"{stem}.") and entry.name.endswith(".avsc")):
            continue
        schema = json.loads(entry.read_text(encoding="utf-8"))
        canonical = to_parsing_canonical_form(fastavro.parse_schema(schema))
        found[bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))] = fastavro.parse_schema(
            reading_form(schema)
        )
    return found


def record_type(cls: type[Any]) -> RecordType:
    """The wire record of ``cls``; raises ``KeyError`` for a class that is not one."""
    for candidate in record_types():
        if candidate.cls is cls:
            return candidate
    raise KeyError(cls)
