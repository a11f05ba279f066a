"""wire.peek: a record's session and cycle read from its first bytes equal what a full
decode reads, for any ids; a record of another type, or cut short, is never misread."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_tx.ledger import PnlKind, Side
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.wire.peek import peekable_headers, session_and_cycle
from portfolio_tx.wire.records import record_types

CODEC = Codec()
HEADERS = peekable_headers(record_types())
TEXT = st.text(min_size=1, max_size=300)  # past 127 bytes the lengths take two varint bytes
CYCLE = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def test_the_fills_and_the_pnl_reports_are_peekable_and_nothing_else() -> None:
    peekable = {rt.cls for rt in record_types() if rt.header in HEADERS}
    assert peekable == {Fill, PnlEvent}


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, CYCLE, st.booleans(), st.data())
def test_a_peek_reads_what_the_decode_reads(
    event_id: str, session_id: str, cycle_id: int, fill: bool, data: st.DataObject
) -> None:
    event: Fill | PnlEvent = (
        Fill(event_id, session_id, cycle_id, "BTC/USDT", Side.BUY, Decimal(1), Decimal(2),
             Decimal(0), 1)
        if fill
        else PnlEvent(event_id, session_id, cycle_id, PnlKind.TRANSFER, Decimal("0.5"), 1)
    )  # fmt: skip
    value = CODEC.encode(event, "t")
    decoded = CODEC.decode(value, topic="t", partition=0, offset=0, expected=type(event))
    assert session_and_cycle(value, HEADERS) == (decoded.session_id, decoded.cycle_id)
    cut = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    assert session_and_cycle(value[:cut], HEADERS) in (None, (session_id, cycle_id))


def test_other_records_and_garbage_are_not_peeked() -> None:
    marker = CODEC.encode(CycleMarker("s", 1, 0, 0, 1), "t")
    assert session_and_cycle(marker, HEADERS) is None
    assert session_and_cycle(None, HEADERS) is None
    (header, *_) = sorted(HEADERS)
    assert session_and_cycle(header + b"\x01", HEADERS) is None  # a negative length
    assert session_and_cycle(header + b"\xff" * 12, HEADERS) is None  # an endless varint
    assert session_and_cycle(header + b"\x00\x04\xff\xfe\x02", HEADERS) is None  # not UTF-8
