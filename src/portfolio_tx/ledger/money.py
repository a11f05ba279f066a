"""Decimal money: one way to make a number, one wide context to compute in.

Quantities and prices travel as Avro decimals of scale 18 and precision 38. Products of
two such numbers have up to 76 significant digits, so the ledger computes in a context of
``LEDGER_PRECISION`` digits where they are exact; values are quantized to scale 18 only at
the edge, when written to the wire (``to_wire``).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import ParamSpec, TypeVar

LEDGER_PRECISION = 100
WIRE_SCALE = 18
WIRE_PRECISION = 38

LEDGER_CONTEXT = decimal.Context(
    prec=LEDGER_PRECISION,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

ZERO = Decimal(0)
ONE = Decimal(1)
_WIRE_QUANTUM = Decimal(1).scaleb(-WIRE_SCALE)
_CENT = Decimal("0.01")

Number = Decimal | int | str | float

P = ParamSpec("P")
R = TypeVar("R")


def D(value: Number) -> Decimal:  # noqa: N802 - beancount's spelling, the one way to make money
    """Make a Decimal from a Decimal, int, str or float (floats go through ``str``).

    Raises ``ValueError`` for anything that is not a finite number.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
    else:
        raise ValueError(f"not a number: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


# The context ``exact`` makes current: a private copy of LEDGER_CONTEXT, set (not copied) on
# entry and compared by identity, so that a nested call runs in it as it is. Entering a fresh
# copy each time (``localcontext``) cost more than a small step; sharing one object is safe
# because nothing changes its precision, rounding or traps, and a trap fires on the status of
# the operation at hand, never on the sticky flags the copy accumulates.
_RUNNING = LEDGER_CONTEXT.copy()
_getcontext = decimal.getcontext
_setcontext = decimal.setcontext


def exact(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with the ledger's wide decimal context as the current context."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        saved = _getcontext()
        if saved is _RUNNING:
            return func(*args, **kwargs)
        _setcontext(_RUNNING)
        try:
            return func(*args, **kwargs)
        finally:
            _setcontext(saved)

    return wrapper


def to_wire(value: Decimal) -> Decimal:
    """Quantize to the wire's scale (18), half-even; raises ValueError past precision 38."""
    quantized = value.quantize(_WIRE_QUANTUM, context=LEDGER_CONTEXT)
    if quantized and quantized.adjusted() >= WIRE_PRECISION - WIRE_SCALE:
        raise ValueError(f"{value} does not fit decimal({WIRE_PRECISION},{WIRE_SCALE})")
    return quantized


def canonical(value: Decimal) -> str:
    """A stable text form without exponent and without trailing zeros (``"100.5"``, ``"0"``)."""
    if value.is_zero():
        return "0"
    text = format(value.normalize(LEDGER_CONTEXT), "f")
    return text


def money2(value: Decimal) -> str:
    """Two-decimal rendering for log lines (``12.35``)."""
    return format(value.quantize(_CENT, context=LEDGER_CONTEXT), "f")
