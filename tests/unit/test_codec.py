"""The wire codec: both framings, the exact header bytes, and every way a value can be bad."""

from __future__ import annotations

import contextlib
import json
import struct
import uuid
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_helpers import run_cycle

from portfolio_tx.errors import DecodeError
from portfolio_tx.ledger import CostBasis, PnlKind, PortfolioState, Side, to_wire
from portfolio_tx.wire.codec import Codec, EncodeError, registry_client
from portfolio_tx.wire.events import CycleMarker, Event, Fill, MarkPrice, PnlEvent
from portfolio_tx.wire.outcomes import CycleOutcome, outcome_from_decision
from portfolio_tx.wire.records import EXACT, WIRE, record_type, record_types

ROOT = Path(__file__).resolve().parents[2]
TS = 1_732_500_000_123

# --------------------------------------------------------------------------- the oracle

# CRC-64-AVRO exactly as the Avro specification ("Schema Fingerprints") writes it.
_EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def test_the_crc64_oracle_matches_the_avro_test_vector_for_null() -> None:
    # Avro's share/test/data/schema-tests.txt: "null" -> 7195948357588979594
    assert crc64_avro(b'"null"') == 7195948357588979594


# --------------------------------------------------------------------------- samples


def _worked_example() -> tuple[CycleOutcome, CycleOutcome]:
    """CONTRACT §2's cycles 2 (COMMIT) and 3 (DISCARD VALIDATION_FAILED) as outcomes."""
    first = run_cycle(
        PortfolioState(),
        [("BTC/USDT", "BUY", "1", "50000", "25")],
        [("TRANSFER", "100000")],
        {"BTC/USDT": "50500"},
        cycle_id=1,
    ).state
    second = run_cycle(
        first,
        [("BTC/USDT", "SELL", "0.4", "52000", "10.4")],
        [("REALIZED", "800")],
        {"BTC/USDT": "51000"},
        cycle_id=2,
    )
    third = run_cycle(
        second.state,
        [("BTC/USDT", "SELL", "1.0", "49000", "9.8")],
        [("REALIZED", "-500")],
        {"BTC/USDT": "48000"},
        cycle_id=3,
    )
    assert second.committed and not third.committed
    return (
        outcome_from_decision("s-1", second, TS, worker_id="w-1"),
        outcome_from_decision("s-1", third, TS),
    )


def _average_cost_outcome() -> CycleOutcome:
    """A COMMIT with an average-cost lot whose cost needs more than 18 decimals."""
    funded = run_cycle(PortfolioState(), pnl=[("TRANSFER", "100000")], cycle_id=1).state
    bought = run_cycle(
        funded,
        [("BTC", "BUY", "1", "100", "0"), ("BTC", "BUY", "2", "101", "0")],
        marks={"BTC": "101"},
        cycle_id=2,
        basis=CostBasis.AVERAGE,
    ).state
    sold = run_cycle(
        bought,
        [("BTC", "SELL", "1", "102", "0.1")],
        pnl=[("REALIZED", "1.333333333333333333")],
        marks={"BTC": "102"},
        cycle_id=3,
        basis=CostBasis.AVERAGE,
    )
    assert sold.committed
    return outcome_from_decision("s-1", sold, TS)


COMMIT, DISCARD = _worked_example()
SAMPLES: dict[str, Event] = {
    "fill": Fill(
        "e-1", "s-1", 7, "BTC/USDT", Side.BUY, Decimal("0.02"), Decimal("50000"), Decimal("0.5"), TS
    ),
    "pnl": PnlEvent("e-2", "s-1", 7, PnlKind.FUNDING, Decimal("-12.5"), TS, "BTC/USDT"),
    "pnl without symbol": PnlEvent("e-3", "s-1", 7, PnlKind.TRANSFER, Decimal("100"), TS),
    "marker": CycleMarker("s-1", 7, 3, 2, TS),
    "mark": MarkPrice("ETH/USDT", Decimal("3100.123456789012345678"), TS),
    "commit": COMMIT,
    "discard": DISCARD,
}


@pytest.fixture
def registry_url() -> str:
    return f"mock://{uuid.uuid4().hex}"


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("record", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_record_round_trips_in_single_object_encoding(record: Event) -> None:
    codec = Codec()
    value = codec.encode(record, "t")
    assert value[:2] == b"\xc3\x01"
    assert codec.decode(value, topic="t", partition=0, offset=0) == record


@pytest.mark.parametrize("record", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_record_round_trips_in_registry_framing(record: Event, registry_url: str) -> None:
    value = Codec(registry_url).encode(record, "t")
    assert value[0] == 0
    assert Codec(registry_url).decode(value, topic="t", partition=0, offset=0) == record


def test_a_registry_codec_reads_single_object_values_too(registry_url: str) -> None:
    value = Codec().encode(SAMPLES["fill"], "t")
    assert Codec(registry_url).decode(value, topic="t", partition=0, offset=0) == SAMPLES["fill"]


@pytest.mark.parametrize("cls", [type(r) for r in SAMPLES.values()], ids=SAMPLES.keys())
def test_single_object_header_is_c3_01_and_the_crc64_of_the_canonical_form(cls: type) -> None:
    rt = record_type(cls)
    schema = json.loads(rt.schema_text)
    canonical = to_parsing_canonical_form(fastavro.parse_schema(schema))
    sample = next(r for r in SAMPLES.values() if type(r) is cls)
    value = Codec().encode(sample, "t")
    assert value[:10] == b"\xc3\x01" + struct.pack("<Q", crc64_avro(canonical.encode()))


def test_registry_framing_is_zero_then_the_big_endian_id_registered_as_topic_value(
    registry_url: str,
) -> None:
    value = Codec(registry_url).encode(SAMPLES["mark"], "prices")
    registered = registry_client(registry_url).get_latest_version("prices-value")
    assert value[0] == 0
    assert value[1:5] == struct.pack(">I", registered.schema_id)
    assert json.loads(registered.schema.schema_str)["name"] == "MarkPrice"


def test_the_repo_root_schemas_directory_is_the_packaged_one() -> None:
    assert not (ROOT / "schemas").is_symlink()  # the one source; the package links to it
    assert (ROOT / "src/portfolio_tx/wire/schemas").resolve() == (ROOT / "schemas").resolve()
    assert {p.name for p in (ROOT / "schemas").glob("*.avsc")} == {
        "fill.avsc",
        "pnl_event.avsc",
        "cycle_marker.avsc",
        "mark_price.avsc",
        "cycle_outcome.avsc",
    }


def _decimal_fields(schema: Any, path: str = "") -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for field in schema["fields"]:
        kind = field["type"]
        for branch in kind if isinstance(kind, list) else [kind]:
            if isinstance(branch, dict) and branch.get("logicalType") == "decimal":
                found[path + field["name"]] = (branch["precision"], branch["scale"])
            if (
                isinstance(branch, dict)
                and branch.get("type") == "array"
                and isinstance(branch["items"], dict)
            ):
                found |= _decimal_fields(branch["items"], f"{path}{field['name']}.")
    return found


def _shape_decimals(shape: Any, path: str = "") -> dict[str, tuple[int, int]]:
    found = {path + n: (k.precision, k.scale) for n, k in shape.decimals.items()}
    for name, inner in shape.arrays.items():
        found |= _shape_decimals(inner, f"{path}{name}.")
    return found


@pytest.mark.parametrize("rt", record_types(), ids=lambda rt: rt.full_name)
def test_every_decimal_in_a_schema_is_quantized_to_its_declared_type(rt: Any) -> None:
    assert _decimal_fields(json.loads(rt.schema_text)) == _shape_decimals(rt.shape)
    assert set(_shape_decimals(rt.shape).values()) <= {
        (WIRE.precision, WIRE.scale),
        (EXACT.precision, EXACT.scale),
    }


# --------------------------------------------------------------------------- decimals


def test_decimals_with_18_places_survive_exactly() -> None:
    price = Decimal("-12345678901234567890.123456789012345678"[1:])  # 38 digits
    tiny = Decimal("0.000000000000000001")
    fill = Fill("e", "s", 1, "X", Side.SELL, tiny, price, -tiny, TS)
    codec = Codec()
    back = codec.decode(codec.encode(fill, "t"), topic="t", partition=0, offset=0)
    assert (back.quantity, back.price, back.fee) == (tiny, price, -tiny)
    assert str(back.price) == "12345678901234567890.123456789012345678"


def test_more_than_18_places_are_rounded_half_even_when_written() -> None:
    mark = MarkPrice("X", Decimal("1.0000000000000000005"), TS)
    codec = Codec()
    back = codec.decode(codec.encode(mark, "t"), topic="t", partition=0, offset=0)
    assert back.price == Decimal("1.000000000000000000")


def test_lot_costs_and_state_cash_keep_36_places_and_the_rest_18() -> None:
    outcome = _average_cost_outcome()
    assert any(lot.cost != to_wire(lot.cost) for lot in outcome.lots)
    codec = Codec()
    back = codec.decode(codec.encode(outcome, "t"), topic="t", partition=0, offset=0)
    assert back.lots == outcome.lots and back.state_cash == outcome.state_cash
    assert back.expected_equity == to_wire(outcome.expected_equity)
    assert back.positions[0].avg_entry_price == to_wire(outcome.positions[0].avg_entry_price)


@settings(max_examples=200)
@given(
    event_id=st.text(min_size=1, max_size=40),
    cycle_id=st.integers(0, 2**63 - 1),
    side=st.sampled_from(Side),
    quantity=st.decimals(
        min_value="0.000000000000000001",
        max_value="99999999999999999999",
        places=18,
        allow_nan=False,
        allow_infinity=False,
    ),
    price=st.decimals(
        min_value="0.000000000000000001",
        max_value="99999999999999999999",
        places=18,
        allow_nan=False,
        allow_infinity=False,
    ),
    fee=st.decimals(
        min_value="-1000000", max_value="1000000", places=18, allow_nan=False, allow_infinity=False
    ),
    ts=st.integers(-(2**63), 2**63 - 1),
)
def test_any_valid_fill_round_trips_exactly(
    event_id: str,
    cycle_id: int,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    ts: int,
) -> None:
    fill = Fill(event_id, "s", cycle_id, "BTC/USDT", side, quantity, price, fee, ts)
    codec = Codec()
    assert codec.decode(codec.encode(fill, "t"), topic="t", partition=1, offset=2) == fill


# --------------------------------------------------------------------------- bad values


def _zigzag(value: int) -> bytes:
    encoded, out = (value << 1) ^ (value >> 63), bytearray()
    while encoded & ~0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


def _string(text: str) -> bytes:
    return _zigzag(len(text.encode())) + text.encode()


def _decimal(unscaled: int) -> bytes:
    raw = unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)
    return _zigzag(len(raw)) + raw


def _fill_value(side_index: int, quantity_unscaled: int = 10**18) -> bytes:
    """A Fill written by hand, byte for byte, as the Avro spec lays it out."""
    body = (
        _string("e")
        + _string("s")
        + _zigzag(1)
        + _string("X")
        + _zigzag(side_index)
        + _decimal(quantity_unscaled)
        + _decimal(10**18)
        + _decimal(0)
        + _zigzag(TS)
    )
    return record_type(Fill).header + body


def _rejected(value: bytes | None, **kwargs: Any) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        Codec().decode(value, topic="fills", partition=3, offset=42, **kwargs)
    error = caught.value
    assert (error.topic, error.partition, error.offset) == ("fills", 3, 42)
    assert "fills[3]@42" in str(error)
    return error


def test_the_hand_written_fill_decodes() -> None:
    fill = Codec().decode(_fill_value(1), topic="t", partition=0, offset=0)
    assert fill == Fill("e", "s", 1, "X", Side.SELL, Decimal(1), Decimal(1), Decimal(0), TS)


def test_an_unknown_enum_symbol_is_rejected() -> None:
    _rejected(_fill_value(side_index=2))


def test_a_decimal_beyond_precision_38_is_rejected_when_read() -> None:
    assert "does not fit" in _rejected(_fill_value(1, quantity_unscaled=10**38)).reason


def test_none_and_empty_values_are_rejected() -> None:
    assert "tombstone" in _rejected(None).reason
    assert "empty" in _rejected(b"").reason


def test_unknown_magic_bytes_are_rejected() -> None:
    assert "magic" in _rejected(b"\x01\x02\x03").reason


def test_an_unknown_fingerprint_is_rejected() -> None:
    value = bytearray(Codec().encode(SAMPLES["fill"], "t"))
    value[9] ^= 0xFF
    assert "fingerprint" in _rejected(bytes(value)).reason


def test_random_bytes_are_rejected() -> None:
    _rejected(bytes.fromhex("c301") + uuid.uuid4().bytes)
    _rejected(uuid.uuid4().bytes)


@pytest.mark.parametrize("record", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_truncation_is_rejected(record: Event) -> None:
    value = Codec().encode(record, "t")
    for length in range(len(value)):
        _rejected(value[:length])


def test_trailing_bytes_are_rejected() -> None:
    value = Codec().encode(SAMPLES["marker"], "t")
    assert "after the end" in _rejected(value + b"\x00").reason


def test_a_record_of_another_topic_is_rejected() -> None:
    value = Codec().encode(SAMPLES["mark"], "t")
    assert "expected Fill, got MarkPrice" in _rejected(value, expected=Fill).reason


def test_registry_framing_without_a_registry_is_rejected(registry_url: str) -> None:
    value = Codec(registry_url).encode(SAMPLES["fill"], "t")
    assert "no schema registry" in _rejected(value).reason


def test_a_schema_id_the_registry_does_not_have_is_rejected(registry_url: str) -> None:
    with pytest.raises(DecodeError, match="not in the registry"):
        Codec(registry_url).decode(b"\x00\x00\x00\x30\x39\x02", topic="t", partition=0, offset=1)


@settings(max_examples=300)
@given(st.binary(max_size=80) | st.binary(max_size=80).map(lambda b: b"\xc3\x01" + b))
def test_arbitrary_bytes_decode_or_raise_decode_error_and_nothing_else(value: bytes) -> None:
    with contextlib.suppress(DecodeError):
        Codec().decode(value, topic="t", partition=0, offset=0)


def test_a_decimal_beyond_precision_38_fails_to_encode_naming_the_topic() -> None:
    fill = Fill("e", "s", 1, "X", Side.BUY, Decimal("1E+20"), Decimal(1), Decimal(0), TS)
    with pytest.raises(EncodeError) as caught:
        Codec().encode(fill, "fills")
    assert not isinstance(caught.value, DecodeError) and caught.value.topic == "fills"
    assert "fills" in str(caught.value) and "decimal(38,18)" in str(caught.value)


# --------------------------------------------------------------------------- evolution


def test_a_registry_writer_schema_with_an_extra_field_is_resolved_to_ours(
    registry_url: str,
) -> None:
    from confluent_kafka.schema_registry import Schema

    evolved = json.loads(record_type(MarkPrice).schema_text)
    evolved["fields"].append({"name": "venue", "type": "string", "default": ""})
    schema_id = registry_client(registry_url).register_schema(
        "marks-value", Schema(json.dumps(evolved), "AVRO")
    )
    body = BytesIO()
    record = {"symbol": "X", "price": Decimal("2.000000000000000000"), "ts": TS, "venue": "v"}
    fastavro.schemaless_writer(body, fastavro.parse_schema(evolved), record)
    value = b"\x00" + struct.pack(">I", schema_id) + body.getvalue()
    decoded = Codec(registry_url).decode(value, topic="marks", partition=0, offset=0)
    assert decoded == MarkPrice("X", Decimal(2), TS)


def test_an_outcome_of_the_earlier_schema_still_decodes_with_the_new_fields_defaulted() -> None:
    """Outcomes written before transfers/residual existed stay readable (restore, verify)."""
    import io
    from importlib import resources

    import fastavro
    from fastavro.schema import fingerprint, to_parsing_canonical_form

    from portfolio_tx.wire.outcomes import CycleOutcome
    from portfolio_tx.wire.records import record_type

    old_text = (
        resources.files("portfolio_tx.wire") / "schemas" / "earlier" / "cycle_outcome.1.avsc"
    ).read_text()
    old = fastavro.parse_schema(json.loads(old_text))
    current = record_type(CycleOutcome)
    old_fingerprint = bytes.fromhex(fingerprint(to_parsing_canonical_form(old), "CRC-64-AVRO"))
    assert old_fingerprint != current.header[2:]
    record = {
        "session_id": "s",
        "cycle_id": 3,
        "outcome": "COMMIT",
        "reason": None,
        **{
            name: b"\x00"
            for name in (
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
        },
        "positions": [],
        "ts": 1,
        "version": 2,
        "state_cash": None,
        "lots": [],
        "marks": [],
        "worker_id": None,
        "event_ids": ["a"],
    }
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old, record)
    decoded = Codec().decode(
        b"\xc3\x01" + old_fingerprint + body.getvalue(), topic="t", partition=0, offset=0
    )
    assert isinstance(decoded, CycleOutcome)
    assert (decoded.cycle_id, decoded.version, decoded.event_ids) == (3, 2, ("a",))
    assert (decoded.transfers, decoded.residual, decoded.state_realized_pnl) == (None, None, None)
