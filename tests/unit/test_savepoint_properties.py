"""Nested transactions: any program of stages, savepoints and savepoint rollbacks stages
exactly what the flat sequence of its surviving stages stages, and commits the same."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio_tx import PortfolioTransaction, TransactionStateError, ValidationError
from portfolio_tx.store.memory import MemoryStateStore

SYMBOLS = ("BTC", "ETH")
SESSION = "prop"


def _decimal(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda n, k: Decimal(n).scaleb(-k), st.integers(low, high), st.integers(0, places)
    )


amounts = _decimal(-(10**6), 10**6, 2)
quantities = _decimal(1, 10**4, 4)
prices = _decimal(1, 10**6, 2)
fees = _decimal(0, 100, 2)

# A stage: (method name, args). Every one of them stages on any state (none can raise), so
# the program and its flat counterpart see the same errors: none.
stages = st.one_of(
    st.tuples(st.just("stage_cash_delta"), st.tuples(amounts, fees)),
    st.tuples(st.just("stage_transfer"), st.tuples(amounts)),
    st.tuples(st.just("stage_funding"), st.tuples(amounts)),
    st.tuples(st.just("stage_realized_pnl_delta"), st.tuples(amounts)),
    st.tuples(
        st.just("stage_fill"),
        st.tuples(
            st.sampled_from(SYMBOLS), st.sampled_from(["BUY", "SELL"]), quantities, prices, fees
        ),
    ),
    st.tuples(
        st.just("stage_position_delta"),
        st.tuples(st.sampled_from(SYMBOLS), quantities, prices),
    ),
    st.tuples(
        st.just("stage_lot_add"),
        st.tuples(st.sampled_from(SYMBOLS), quantities, prices),
    ),
)


@dataclass(frozen=True)
class Block:
    """A savepoint: its items, how it ends, and stages run in its ``with`` block after an
    explicit rollback (they belong to the enclosing level)."""

    items: tuple[Any, ...]
    ending: str  # "release" | "rollback" | "raise"
    after: tuple[Any, ...]


def _blocks(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Block]:
    return st.builds(
        Block,
        st.lists(children, max_size=5).map(tuple),
        st.sampled_from(["release", "rollback", "raise"]),
        st.lists(stages, max_size=2).map(tuple),
    )


programs = st.lists(st.recursive(stages, _blocks, max_leaves=14), max_size=8)


class Boom(Exception):
    pass


class _Lots:
    """Unique lot ids, so that no lot add can collide with another."""

    def __init__(self) -> None:
        self.count = 0

    def next_id(self) -> str:
        self.count += 1
        return f"lot-{self.count}"


def _run_stage(tx: PortfolioTransaction, stage: tuple[str, tuple[Any, ...]], lots: _Lots) -> None:
    name, args = stage
    if name == "stage_lot_add":
        symbol, quantity, price = args
        tx.stage_lot_add(
            symbol, {"lot_id": lots.next_id(), "quantity": quantity, "cost_price": price}
        )
    else:
        getattr(tx, name)(*args)


def _run(tx: PortfolioTransaction, items: tuple[Any, ...] | list[Any], lots: _Lots) -> None:
    for item in items:
        if not isinstance(item, Block):
            _run_stage(tx, item, lots)
            continue
        try:
            with tx.savepoint() as sp:
                _run(tx, item.items, lots)
                if item.ending == "raise":
                    raise Boom
                if item.ending == "rollback":
                    sp.rollback()
                    _run(tx, item.after, lots)
        except Boom:
            pass


def _surviving(items: tuple[Any, ...] | list[Any], lots: _Lots) -> list[Any]:
    """The flat stages that survive, with the lot ids the program run gives them."""
    flat: list[Any] = []
    for item in items:
        if not isinstance(item, Block):
            if item[0] == "stage_lot_add":
                symbol, quantity, price = item[1]
                item = ("lot", (symbol, lots.next_id(), quantity, price))
            flat.append(item)
            continue
        inner = _surviving(item.items, lots)
        if item.ending == "release":
            flat.extend(inner)
        elif item.ending == "rollback":
            flat.extend(_surviving(item.after, lots))
    return flat


def _run_flat(tx: PortfolioTransaction, flat: list[Any]) -> None:
    for name, args in flat:
        if name == "lot":
            symbol, lot_id, quantity, price = args
            tx.stage_lot_add(symbol, {"lot_id": lot_id, "quantity": quantity, "cost_price": price})
        else:
            getattr(tx, name)(*args)


def _funded_store() -> MemoryStateStore:
    store = MemoryStateStore()
    with PortfolioTransaction(store, SESSION) as tx:
        tx.stage_transfer("100000")
        tx.stage_fill("BTC", "BUY", "1", "50000", "0")
        assert tx.commit({"BTC": "50000"})
    return store


def _outcome(tx: PortfolioTransaction, marks: dict[str, Decimal]) -> Any:
    try:
        committed = tx.commit(marks)
    except ValidationError as exc:
        return ("refused", str(exc))
    assert tx.decision is not None
    return (committed, tx.decision)


@settings(max_examples=150, deadline=None)
@given(programs, st.fixed_dictionaries({s: prices for s in SYMBOLS}))
def test_savepoints_stage_what_the_surviving_stages_stage(
    program: list[Any], marks: dict[str, Decimal]
) -> None:
    nested_store, flat_store = _funded_store(), _funded_store()
    nested = PortfolioTransaction(nested_store, SESSION)
    _run(nested, program, _Lots())
    flat = PortfolioTransaction(flat_store, SESSION)
    _run_flat(flat, _surviving(program, _Lots()))

    assert nested.staged == flat.staged
    assert nested.staged_cash == flat.staged_cash
    assert nested.staged_realized_pnl == flat.staged_realized_pnl
    assert nested.staged_positions == flat.staged_positions
    assert nested.staged_lotbooks == flat.staged_lotbooks
    assert _outcome(nested, marks) == _outcome(flat, marks)
    assert nested_store.load(SESSION) == flat_store.load(SESSION)


def test_a_rolled_back_savepoint_cannot_be_used_again() -> None:
    tx = PortfolioTransaction(_funded_store(), SESSION)
    with tx.savepoint() as outer:
        with tx.savepoint() as inner:
            tx.stage_transfer("5")
            outer.rollback()  # ends the inner savepoint too
            assert not inner.active
        tx.stage_transfer("7")  # after the rollback: the enclosing level's
    assert tx.staged.transfers == Decimal("7")
    with pytest.raises(TransactionStateError, match="already ended"):
        outer.rollback()
