"""The wire edge alone, pure Python against the compiled core, in one process.

    python bench/native_codec.py [--repeat 5]

Times (best of ``--repeat``, µs per call) what the worker does per record at the wire:
decoding a ``Fill`` and a ``PnlEvent`` (fastavro + ``Shape.from_avro`` against
``portfolio_tx_native``) and encoding a ``CycleOutcome`` of a 10-fill cycle on a 3-symbol
book (``wire.encoder`` against the crate). Both codecs are built in this process
(``PTX_NATIVE=0`` for the pure one), so the ratio does not depend on how busy the machine
is between runs.
"""

from __future__ import annotations

import argparse
import os
import timeit
from decimal import Decimal

from portfolio_tx.ledger import OutcomeKind, PnlKind, Side
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import Fill, PnlEvent
from portfolio_tx.wire.outcomes import CycleOutcome, OutcomeLot, OutcomeMark, OutcomePosition


def _codecs() -> tuple[Codec, Codec]:
    os.environ["PTX_NATIVE"] = "0"
    pure = Codec()
    del os.environ["PTX_NATIVE"]
    return pure, Codec()


def _outcome() -> CycleOutcome:
    symbols = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    d = Decimal
    return CycleOutcome(
        "session-0001", 42, OutcomeKind.COMMIT, None, d("70934.6"), d("31000"), d("101934.6"),
        d("100554.8"), d("101934.6"), d("0"), d("10.05548"), d("987.5"), d("52.9"),
        tuple(OutcomePosition(s, d("10"), d("3000.123456789"), d("3100")) for s in symbols),
        1_700_000_000_000, version=7, state_cash=d("70934.600000000000000000000000000001"),
        lots=tuple(OutcomeLot(s, d("2.5"), d("7500.3086419725")) for s in symbols for _ in "ab"),
        marks=tuple(OutcomeMark(s, d("3100")) for s in symbols), worker_id="w-1",
        event_ids=tuple(f"e-{i:04d}" for i in range(12)), event_count=12, event_digest="ab" * 32,
        transfers=d("100000"), residual=d("0"), state_realized_pnl=d("987.5"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pure, native = _codecs()
    fill = pure.encode(
        Fill("e-1", "session-0001", 42, "BTC/USDT", Side.BUY, Decimal("0.02"),
             Decimal("50000.5"), Decimal("0.25"), 1_700_000_000_000), "fills")
    pnl = pure.encode(
        PnlEvent("e-2", "session-0001", 42, PnlKind.REALIZED, Decimal("-12.5"),
                 1_700_000_000_000), "pnl")
    outcome = _outcome()
    cases = {
        "decode Fill": lambda c: c.decode(fill, topic="f", partition=0, offset=0),
        "decode PnlEvent": lambda c: c.decode(pnl, topic="p", partition=0, offset=0),
        "encode CycleOutcome": lambda c: c.encode(outcome, "commits"),
    }
    print("| record | pure µs | compiled µs | ratio |")
    print("|---|---:|---:|---:|")
    for name, call in cases.items():
        assert repr(call(pure)) == repr(call(native))  # the same record, the same bytes
        number = 2000
        timings = {}
        for label, codec in (("pure", pure), ("native", native)):
            run = timeit.repeat(lambda c=codec, f=call: f(c), number=number, repeat=args.repeat)
            best = min(run)
            timings[label] = best / number * 1e6
        ratio = timings["pure"] / timings["native"]
        print(f"| {name} | {timings['pure']:.1f} | {timings['native']:.1f} | {ratio:.1f}× |")


if __name__ == "__main__":
    main()
