"""The compiled core (``native/``, through ``wire.native``) equals the pure-Python reference
digit for digit and byte for byte: decimals at the wire's and the exact scale (negative
values, ties, more places than the scale, magnitudes at the precision's edge, non-finite
values), every wire record encoded (None in the optional fields) and decoded, and hostile
bytes rejected where the reference rejects them.

``make install`` builds the extension, so its absence is a failure here, not a skip: the
fallback keeps the library working without it, but CI must run the compiled path."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_avro_encoder import _records

from portfolio_tx.errors import DecodeError, EncodeError
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.encoder import _decimal
from portfolio_tx.wire.native import enabled, native_module
from portfolio_tx.wire.records import EXACT, WIRE, DecimalType, record_types


def _pure_codec() -> Codec:
    """A codec on the pure-Python path (``PTX_NATIVE=0`` while it is built)."""
    previous = os.environ.get("PTX_NATIVE")
    os.environ["PTX_NATIVE"] = "0"
    try:
        return Codec()
    finally:
        if previous is None:
            del os.environ["PTX_NATIVE"]
        else:
            os.environ["PTX_NATIVE"] = previous


NATIVE = native_module()
PURE = _pure_codec()
FAST = Codec()
TYPES = record_types()
TYPE_IDS = [rt.full_name for rt in TYPES]


def test_the_compiled_core_is_installed_and_selected() -> None:
    assert NATIVE is not None, "portfolio_tx_native is missing: run `make install` (needs cargo)"
    if os.environ.get("PTX_NATIVE", "1") != "0":
        assert enabled()
        assert all(FAST._native.values())  # every wire record takes the compiled path
    assert not any(PURE._native.values())


@dataclass(frozen=True, slots=True)
class _Priced:
    price: Any


def _one_decimal(kind: DecimalType) -> Any:
    assert NATIVE is not None
    field = ("decimal", kind.precision, kind.scale, "price")
    # direct=False: the record is made by calling the class (the wire records are not)
    return NATIVE.RecordCodec(("record", _Priced, (("price", field),), False))


_COMPILED = {WIRE: _one_decimal(WIRE), EXACT: _one_decimal(EXACT)}

# up to 100 significant digits (the ledger's precision), exponents across both scales
DECIMALS = st.builds(
    lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
    st.lists(st.integers(0, 9), min_size=1, max_size=100),
    st.integers(-110, 40),
    st.booleans(),
)
EDGES = [
    Decimal("1E+20") - Decimal("1E-18"),  # the largest WIRE value
    Decimal("-1E+20") + Decimal("1E-18"),
    Decimal("1E+20"),  # one past it
    Decimal("99999999999999999999.9999999999999999995"),  # rounds up past the precision
    Decimal("0.0000000000000000005"),  # a tie at scale 18, rounds to even (0)
    Decimal("0.0000000000000000015"),  # a tie, rounds to even (2)
    Decimal("-0.0000000000000000025"),
    Decimal("-0"),
    Decimal("-0E-50"),
    Decimal("1E+39"),
    Decimal("9" * 76) / Decimal(10**36),
    -(Decimal(2) ** 200) / Decimal(10**18),
    Decimal("-128E-18"),  # a negative power of two: one byte more than the minimum
    Decimal("NaN"),
    Decimal("-Infinity"),
]


def _pure_bytes(kind: DecimalType, value: Any) -> bytes | str:
    out = bytearray()
    try:
        _decimal(kind)(out, value)
    except Exception:  # ValueError past the precision, ArithmeticError for NaN, TypeError
        return "rejected"
    return bytes(out)


def _native_bytes(kind: DecimalType, value: Any) -> bytes | str:
    try:
        return bytes(_COMPILED[kind].encode(_Priced(value)))
    except Exception:
        return "rejected"


@pytest.mark.parametrize("kind", [WIRE, EXACT], ids=["decimal(38,18)", "decimal(76,36)"])
@settings(max_examples=600, deadline=None)
@given(value=DECIMALS | st.sampled_from(EDGES) | st.integers(-(10**40), 10**40))
def test_compiled_decimals_are_written_digit_for_digit_as_the_python_reference(
    kind: DecimalType, value: Any
) -> None:
    written = _native_bytes(kind, value)
    assert written == _pure_bytes(kind, value)
    if isinstance(written, bytes) and isinstance(value, Decimal):
        assert written[1:] == kind.unscaled_bytes_reference(value)
        decoded, end = _COMPILED[kind].decode(written, 0)
        assert end == len(written)
        reference = kind.from_unscaled("price", written[1:])
        assert decoded.price.as_tuple() == reference.as_tuple()  # digits and exponent


def test_non_decimals_are_rejected_like_the_reference() -> None:
    for value in (1.5, "1.5", None, object()):
        assert _native_bytes(WIRE, value) == _pure_bytes(WIRE, value) == "rejected"


@pytest.mark.parametrize("rt", TYPES, ids=TYPE_IDS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_encoder_writes_byte_for_byte_what_the_python_encoder_writes(
    rt: Any, data: st.DataObject
) -> None:
    record = data.draw(_records(rt.cls, json.loads(rt.schema_text)))
    assert _written(FAST, rt.cls, record) == _written(PURE, rt.cls, record)


def _written(codec: Codec, cls: Any, given: Any) -> bytes | str:
    """``codec``'s bytes for ``given`` (a ``cls`` record or its tuples), or "rejected"."""
    try:
        return codec.encode_values(cls, given, "t")
    except Exception:
        return "rejected"


def _record_schema(schema: Any) -> Any:
    """The record schema inside a field's type (itself, an array's items, a union's branch),
    or None."""
    if isinstance(schema, list):
        found = [_record_schema(branch) for branch in schema]
        return next((f for f in found if f is not None), None)
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            return schema
        if schema.get("type") == "array":
            return _record_schema(schema["items"])
    return None


def _positional(value: Any, schema: Any) -> Any:
    """A wire record as a plain tuple of its fields in schema order (nested records too), as
    the worker's outcome is given to ``Codec.encode_values``."""
    record = _record_schema(schema)
    if record is None or value is None:
        return value
    if isinstance(value, tuple):  # an array of records
        return tuple(_positional(item, record) for item in value)
    return tuple(_positional(getattr(value, f["name"]), f["type"]) for f in record["fields"])


@pytest.mark.parametrize("rt", TYPES, ids=TYPE_IDS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_record_given_as_tuples_is_written_as_the_record_itself(
    rt: Any, data: st.DataObject
) -> None:
    record = data.draw(_records(rt.cls, json.loads(rt.schema_text)))
    values = _positional(record, json.loads(rt.schema_text))
    assert type(values) is tuple
    expected = _written(PURE, rt.cls, record)  # the attribute path, itself held to fastavro
    assert _written(FAST, rt.cls, values) == expected
    assert _written(PURE, rt.cls, values) == expected


@pytest.mark.parametrize("codec", [FAST, PURE], ids=["compiled", "python"])
def test_a_tuple_of_the_wrong_length_is_refused(codec: Codec) -> None:
    from portfolio_tx.wire.events import MarkPrice

    assert codec.encode_values(MarkPrice, ("BTC", Decimal("1.5"), 3), "t") == codec.encode(
        MarkPrice("BTC", Decimal("1.5"), 3), "t"
    )
    with pytest.raises(EncodeError, match="3 fields given as a tuple of 2"):
        codec.encode_values(MarkPrice, ("BTC", Decimal("1.5")), "t")


@pytest.mark.parametrize("rt", TYPES, ids=TYPE_IDS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fields_read_in_one_call_are_the_decoded_records_fields(
    rt: Any, data: st.DataObject
) -> None:
    every = [f["name"] for f in json.loads(rt.schema_text)["fields"]]
    names = (every[-1], every[0], every[len(every) // 2])  # out of order, some left out
    values = [_encodable(rt, data) for _ in range(data.draw(st.integers(0, 4)))]
    records = [(("t", 0), offset, value) for offset, value in enumerate(values)]
    expected = [
        tuple(getattr(PURE.decode(v, topic="t", partition=0, offset=0), n) for n in names)
        for v in values
    ]
    wanted = [every.index(n) for n in names]
    compiled = FAST._native[rt.cls].rows(values, rt.header, wanted)  # not the fallback
    assert repr(compiled) == repr(expected)  # digit for digit
    assert repr(FAST.fields_of(records, rt.cls, names)) == repr(expected)
    assert repr(PURE.fields_of(records, rt.cls, names)) == repr(expected)


def test_fields_of_values_the_core_cannot_read_come_from_decode() -> None:
    from portfolio_tx.ledger import Side
    from portfolio_tx.wire.events import Fill

    fill = Fill("e1", "s", 1, "BTC", Side.BUY, Decimal("1.5"), Decimal(2), Decimal(0), 7)
    value = FAST.encode(fill, "t")
    names = ("symbol", "quantity")
    with_registry = Codec(registry_url="mock://fields-of")
    framed = with_registry.encode(fill, "fills")
    records = [(("t", 0), 0, value), (("t", 0), 1, framed)]  # another framing: one by one
    assert with_registry.fields_of(records, Fill, names) == [("BTC", Decimal("1.5"))] * 2
    damaged = [(("t", 0), 0, value), (("t", 5), 9, value + b"\x00")]
    with pytest.raises(DecodeError, match="bytes after the end") as caught:
        FAST.fields_of(damaged, Fill, names)
    assert (caught.value.partition, caught.value.offset) == (5, 9)  # where, as decode says


def _encodable(rt: Any, data: st.DataObject) -> bytes:
    """A random record of ``rt`` that the Python reference encodes, as its bytes."""
    record = data.draw(_records(rt.cls, json.loads(rt.schema_text)))
    try:
        return PURE.encode(record, "t")
    except Exception:
        assume(False)
        raise


def _decoded(codec: Codec, value: bytes) -> str:
    """The decoded record's repr (Decimals by their digits and exponent), or "rejected"."""
    try:
        return repr(codec.decode(value, topic="t", partition=0, offset=0))
    except DecodeError:
        return "rejected"


@pytest.mark.parametrize("rt", TYPES, ids=TYPE_IDS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_decoder_reads_digit_for_digit_what_fastavro_reads(
    rt: Any, data: st.DataObject
) -> None:
    value = _encodable(rt, data)
    assert _decoded(FAST, value) == _decoded(PURE, value) != "rejected"


@pytest.mark.parametrize("rt", TYPES, ids=TYPE_IDS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_decoder_rejects_the_damaged_bytes_fastavro_rejects(
    rt: Any, data: st.DataObject
) -> None:
    value = _encodable(rt, data)
    header = len(rt.header)
    at = data.draw(st.integers(header, len(value)))
    damage = data.draw(
        st.sampled_from(["truncate", "replace", "insert"]), label="damage"
    )
    byte = bytes([data.draw(st.integers(0, 255), label="byte")])
    damaged = {
        "truncate": value[:at],
        "replace": value[:at] + byte + value[at + 1 :],
        "insert": value[:at] + byte + value[at:],
    }[damage]
    compiled, reference = _decoded(FAST, damaged), _decoded(PURE, damaged)
    # fastavro reads a negative enum or union index Python's way (from the end); the
    # compiled reader rejects it (test below): it never accepts what fastavro rejects
    assert compiled in (reference, "rejected")
    if reference == "rejected":
        assert compiled == "rejected"


def test_a_negative_enum_index_is_rejected_where_fastavro_reads_it_from_the_end() -> None:
    from portfolio_tx.ledger import Side
    from portfolio_tx.wire.events import Fill

    fill = Fill("e", "s", 1, "BTC", Side.BUY, Decimal(1), Decimal(2), Decimal(0), 5)
    value = PURE.encode(fill, "t")
    side_at = len(FAST._by_class[Fill].header) + 2 + 2 + 1 + 4  # after e, s, cycle 1, "BTC"
    assert value[side_at] == 0  # BUY
    damaged = value[:side_at] + b"\x01" + value[side_at + 1 :]  # zig-zag -1
    assert "SELL" in _decoded(PURE, damaged)
    assert _decoded(FAST, damaged) == "rejected"
