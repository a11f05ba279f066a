"""The compiled Avro encoder writes, byte for byte, what fastavro's generic writer writes
from the same record (the reference), for random records of every wire type; values one of
them rejects, both reject."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from decimal import Decimal
from enum import Enum
from io import BytesIO
from typing import Any, Union, get_args, get_origin, get_type_hints

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.records import record_types

CODEC = Codec()

# decimals with more and fewer places than the scale, ties, and some past the precision
MONEY = st.builds(
    lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
    st.lists(st.integers(0, 9), min_size=1, max_size=45),
    st.integers(-40, 5),
    st.booleans(),
)
TEXT = st.text(max_size=12)


def _avro_type(node: Any) -> Any:
    """The non-null branch of a nullable union, else the type itself."""
    if isinstance(node, list):
        return next(branch for branch in node if branch != "null")
    return node


def _strategy(hint: Any, avro: Any) -> st.SearchStrategy[Any]:
    origin = get_origin(hint)
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return st.none() | _strategy(inner, _avro_type(avro))
    if origin is tuple:
        items = avro["items"] if isinstance(avro, dict) else avro
        return st.lists(_strategy(get_args(hint)[0], items), max_size=3).map(tuple)
    if hint is Decimal:
        return MONEY
    if hint is str:
        return TEXT
    if hint is int:
        kind = avro["type"] if isinstance(avro, dict) else avro
        if kind == "int":
            return st.integers(-(2**31), 2**31 - 1)
        return st.integers(-(2**63), 2**63 - 1) | st.integers(0, 300)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return st.sampled_from(list(hint))
    if is_dataclass(hint):
        return _records(hint, avro)
    raise TypeError(f"no strategy for {hint!r}")


def _records(cls: Any, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    hints = get_type_hints(cls)
    avro = {f["name"]: _avro_type(f["type"]) for f in schema["fields"]}
    return st.builds(cls, **{f.name: _strategy(hints[f.name], avro[f.name]) for f in fields(cls)})


def _fastavro_body(record: Any) -> bytes:
    """The Avro body of ``record`` the generic way (a dict per record, fastavro's writer):
    what the compiled encoder is tested against."""
    record_type = next(rt for rt in TYPES if rt.cls is type(record))
    out = BytesIO()
    fastavro.schemaless_writer(out, record_type.write_schema, record_type.shape.to_avro(record))
    return out.getvalue()


def _written(write: Any, record: Any) -> bytes | str:
    try:
        return bytes(write(record))
    except Exception:  # the reference raises ValueError, TypeError, ArithmeticError...
        return "rejected"


TYPES = record_types()


@pytest.mark.parametrize("rt", TYPES, ids=[rt.full_name for rt in TYPES])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_compiled_encoder_writes_what_fastavro_writes(rt: Any, data: st.DataObject) -> None:
    record = data.draw(_records(rt.cls, json.loads(rt.schema_text)))
    fast = _written(lambda r: CODEC.encode(r, "t")[len(rt.header) :], record)
    assert fast == _written(_fastavro_body, record)


def test_a_known_encoding_by_hand() -> None:
    # MarkPrice("BTC", 1.5, 3): "BTC" = len 3 (zig-zag 06) + 425443; 1.5 at scale 18 is
    # 0x14d1120d7b160000, 8 bytes (zig-zag 10); ts 3 = 06
    from portfolio_tx.wire.events import MarkPrice

    body = CODEC.encode(MarkPrice("BTC", Decimal("1.5"), 3), "t")[10:]
    assert body == bytes.fromhex("06425443" + "10" + "14d1120d7b160000" + "06")


def _plain(value: Any) -> Any:
    """A decoded record as fastavro's dicts have it: lists, enum values, no dataclasses."""
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


@pytest.mark.parametrize("rt", TYPES, ids=[rt.full_name for rt in TYPES])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_decimals_read_as_bytes_equal_fastavros_reader(rt: Any, data: st.DataObject) -> None:
    """The codec reads decimals as bytes and converts them itself; fastavro's own decimal
    logical type (timestamps as longs) is the reference, value for value."""
    import io

    import fastavro

    from portfolio_tx.wire.records import reading_form

    record = data.draw(_records(rt.cls, json.loads(rt.schema_text)))
    try:
        value = CODEC.encode(record, "t")
    except Exception:
        return  # not a valid record: the encoder tests cover the rejection
    decoded = CODEC.decode(value, topic="t", partition=0, offset=0)
    logical = json.loads(rt.schema_text)

    def timestamps_only(node: Any) -> Any:
        if isinstance(node, dict) and node.get("logicalType") == "decimal":
            return node
        if isinstance(node, dict) and node.get("logicalType"):
            return reading_form(node)
        if isinstance(node, dict):
            return {k: timestamps_only(v) for k, v in node.items()}
        if isinstance(node, list):
            return [timestamps_only(item) for item in node]
        return node

    reference = fastavro.schemaless_reader(
        io.BytesIO(value[len(rt.header) :]), fastavro.parse_schema(timestamps_only(logical))
    )
    assert _plain(decoded) == reference
