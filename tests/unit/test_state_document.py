"""The stored state document: ``dump_state`` writes, field by field, exactly the bytes the
generic JSON encoder gives for the reference document (states already stored by the worker
and by restore stay readable and are rewritten byte for byte as before), and ``load_state``
reads every one back equal, digit for digit."""

from __future__ import annotations

import json
from decimal import Decimal
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_tx.ledger import Lot, PortfolioState
from portfolio_tx.store import document
from portfolio_tx.store.document import dump_state, load_state, reference_document

_amounts = st.builds(
    lambda n, k: Decimal(n).scaleb(-k),
    st.integers(-(10**40), 10**40),
    st.integers(0, 40),
)
_nonzero = _amounts.filter(lambda d: not d.is_zero())
_texts = st.text(max_size=8)  # quotes, backslashes, controls, non-ASCII, surrogates
_symbols = st.text(min_size=1, max_size=6)
_lots = st.builds(
    Lot,
    _nonzero,
    _amounts,
    st.none() | _texts,
    st.none() | _amounts,
    st.none() | _texts,
)
states = st.builds(
    PortfolioState,
    cash=_amounts,
    realized_pnl=_amounts,
    fees=_amounts,
    equity=_amounts,
    lots=st.dictionaries(_symbols, st.lists(_lots, min_size=1, max_size=3).map(tuple), max_size=3)
    .map(MappingProxyType),
    marks=st.dictionaries(_symbols, _amounts, max_size=3).map(MappingProxyType),
    last_cycle=st.none() | st.integers(0, 2**63),
    version=st.integers(0, 2**31),
    transfers=_amounts,
    residual=_amounts,
    strategies=st.dictionaries(_symbols, _texts, max_size=2).map(MappingProxyType),
)


@settings(max_examples=2000, deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False)
    | st.builds(lambda n, k: Decimal(n).scaleb(k), st.integers(-(10**40), 10**40),
                st.integers(-60, 60))
)
def test_the_writers_decimal_text_is_format_f(value: Decimal) -> None:
    """Zeros with exponents, negative zero, tiny and huge exponents included."""
    assert document._text(value) == format(value, "f")


def _reference(state: PortfolioState) -> str:
    return json.dumps(reference_document(state), sort_keys=True, separators=(",", ":"))


@settings(max_examples=400, deadline=None)
@given(states)
def test_dump_state_writes_exactly_the_reference_json(state: PortfolioState) -> None:
    assert dump_state(state) == _reference(state)


@settings(max_examples=400, deadline=None)
@given(states)
def test_load_state_reads_back_every_state_digit_for_digit(state: PortfolioState) -> None:
    loaded = load_state(dump_state(state))
    assert loaded == state
    assert [format(v, "f") for v in (loaded.cash, loaded.equity, loaded.residual)] == [
        format(v, "f") for v in (state.cash, state.equity, state.residual)
    ]


def test_a_document_written_by_the_generic_encoder_reads_the_same() -> None:
    """What the worker stored before the field-by-field writer: same bytes, same state."""
    stored = (
        '{"cash":"49975","equity":"100475","fees":"25","last_cycle":1,'
        '"lots":{"BTC/USDT":[["1","50000"]]},"marks":{"BTC/USDT":"50500"},'
        '"realized_pnl":"0","residual":"0","transfers":"100000","version":1}'
    )
    state = load_state(stored)
    assert state.lots["BTC/USDT"] == (Lot(Decimal("1"), Decimal("50000")),)
    assert dump_state(state) == stored
