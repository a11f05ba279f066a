"""The peer: the same job on Quix Streams, run inside bench/.venv-quix.

    python bench/quix_app.py BOOTSTRAP GROUP FILLS PNL CYCLES MARKS OUTCOMES STATE_DIR STARTED

Exactly-once (``processing_guarantee="exactly-once"``), the three input topics concatenated
into one StreamingDataFrame (Quix aligns them by timestamp), state per session key in Quix's
RocksDB State: the open cycles (events by id, so a duplicate counts once) and the committed
state (our ``dump_state`` document). Accounting is our pure ledger (``open_cycle`` →
``stage_*`` → ``decide``/``discard``), marks come from every partition of the marks topic
into our ``MarkTable``, and outcomes are our ``CycleOutcome`` encoded by our ``Codec``: only
the streaming plumbing differs from the worker.

Marks: before valuing, the table is caught up with the marks topic (our ``MarkFeed``) unless
the marker was published more than 1 s before the last catch-up began (then every mark
published before it is already in the table). Cycle timeouts (INCOMPLETE) are not
implemented: the benchmark's cycles are all complete.
"""

from __future__ import annotations

import os
import sys
import time
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer
from quixstreams import Application
from quixstreams.models.serializers import Deserializer

from portfolio_tx.kafka.mark_feed import MarkFeed
from portfolio_tx.ledger import (
    CostBasis,
    DiscardReason,
    PnlKind,
    PortfolioState,
    Side,
    decide,
    discard,
    open_cycle,
    stage_fill,
    stage_pnl,
)
from portfolio_tx.store.document import dump_state, load_state
from portfolio_tx.wire.codec import Codec
from portfolio_tx.wire.events import CycleMarker, Fill, PnlEvent
from portfolio_tx.wire.outcomes import outcome_from_decision
from portfolio_tx.worker.mark_table import MarkTable

MAX_MARK_AGE_MS = 300_000
SLACK_MS = 1_000


class OurAvro(Deserializer):
    def __init__(self, expected: type) -> None:
        super().__init__()
        self.codec = Codec()
        self.expected = expected

    def __call__(self, value: bytes, ctx: Any) -> Any:
        return self.codec.decode(value, topic=ctx.topic, partition=None, offset=None,
                                 expected=self.expected)


class Peer:
    def __init__(self, bootstrap: str, marks_topic: str, started_file: str) -> None:
        self.codec = Codec()
        config = {
            "bootstrap.servers": bootstrap, "group.id": "bench-quix-marks",
            "isolation.level": "read_committed", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True,
            "fetch.wait.max.ms": 20,
        }
        # the ends on their own connection, as the worker does (see MarkFeed)
        self.marks = MarkFeed(Consumer(config), marks_topic, self.codec, MarkTable(),
                              ends=Consumer(config))
        self.caught_up_at_ms = 0
        self.started_file = started_file
        self.started = False

    def start(self) -> None:
        self.caught_up_at_ms = int(time.time() * 1000)
        self.marks.start()

    def process(self, event: Any, key: Any, timestamp: int, headers: Any, state: Any) -> list:
        if not self.started:
            self.started = True
            with open(self.started_file, "w") as handle:
                handle.write(repr(time.time()))
        last = state.get("last", 0)
        if event.cycle_id <= last:
            return []  # a redelivery or a late event of a decided cycle
        cycles: dict[str, Any] = state.get("open", {})
        cycle = cycles.setdefault(str(event.cycle_id), {"f": {}, "p": {}, "m": None})
        if isinstance(event, Fill):
            cycle["f"].setdefault(event.event_id, [event.symbol, event.side.value,
                                                   str(event.quantity), str(event.price),
                                                   str(event.fee)])
        elif isinstance(event, PnlEvent):
            cycle["p"].setdefault(event.event_id, [event.kind.value, str(event.amount)])
        elif cycle["m"] is None:
            cycle["m"] = [event.fill_count, event.pnl_count, event.ts, timestamp]
        outcomes = []
        while True:
            marked = [int(c) for c, body in cycles.items() if body["m"] is not None]
            if not marked:
                break
            cycle_id = min(marked)
            body = cycles[str(cycle_id)]
            fills, pnl, (fill_count, pnl_count, ts, published) = body["f"], body["p"], body["m"]
            if len(fills) > fill_count or len(pnl) > pnl_count:
                reason: DiscardReason | None = DiscardReason.COUNT_MISMATCH
            elif len(fills) == fill_count and len(pnl) == pnl_count:
                reason = None
            else:
                break  # waiting for the rest of the cycle
            outcomes.append(self.decide(event.session_id, cycle_id, body, ts, published,
                                        reason, state))
            del cycles[str(cycle_id)]
            for stale in [c for c in cycles if int(c) < cycle_id]:
                del cycles[stale]
            state.set("last", cycle_id)
        state.set("open", cycles)
        return outcomes

    def decide(self, session: str, cycle_id: int, body: dict, ts: int, published: int,
               reason: DiscardReason | None, state: Any) -> bytes:
        document = state.get("state")
        base = load_state(document) if document is not None else PortfolioState()
        if reason is None:
            staged = open_cycle(base, CostBasis.FIFO)
            for symbol, side, quantity, price, fee in body["f"].values():
                staged = stage_fill(staged, symbol, Side(side), Decimal(quantity),
                                    Decimal(price), Decimal(fee))
            for kind, amount in body["p"].values():
                staged = stage_pnl(staged, PnlKind(kind), Decimal(amount))
            if published >= self.caught_up_at_ms - SLACK_MS:
                self.caught_up_at_ms = int(time.time() * 1000)
                self.marks.catch_up()
            lookup = self.marks.table.resolve(staged.held_symbols(), ts, MAX_MARK_AGE_MS)
            if lookup.reason is None:
                decision = decide(staged, lookup.marks, cycle_id=cycle_id)
            else:
                decision = discard(base, lookup.reason, cycle_id=cycle_id)
        else:
            decision = discard(base, reason, cycle_id=cycle_id)
        if decision.committed:
            state.set("state", dump_state(decision.state))
        event_ids = (*body["f"], *body["p"])
        outcome = outcome_from_decision(session, decision, ts, worker_id="quix",
                                        event_ids=tuple(event_ids))
        return self.codec.encode(outcome, "outcomes")


def main() -> None:
    bootstrap, group, fills, pnl, cycles, marks, outcomes, state_dir, started = sys.argv[1:10]
    if os.environ.get("BENCH_PEER_PATCHES"):  # the shared codec/ledger changes, for fairness
        import patches

        patches.apply(os.environ["BENCH_PEER_PATCHES"])
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    peer = Peer(bootstrap, marks, started)
    peer.start()
    frames = [
        app.dataframe(app.topic(name, value_deserializer=OurAvro(cls), key_deserializer="str"))
        for name, cls in ((fills, Fill), (pnl, PnlEvent), (cycles, CycleMarker))
    ]
    sdf = frames[0].concat(frames[1]).concat(frames[2])
    sdf = sdf.apply(peer.process, stateful=True, metadata=True, expand=True)
    sdf.to_topic(app.topic(outcomes, value_serializer="bytes", key_serializer="str"))
    app.run()


if __name__ == "__main__":
    main()
