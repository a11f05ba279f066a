"""Candidate optimisations of the worker, applied as monkeypatches for before/after runs.

These are experiments, not the product: each one is the smallest faithful version of a
change proposed for ``src/portfolio_tx`` (see RESULTS.md), so that its effect can be measured
on the same broker, in the same bench run, against the unpatched worker. ``apply(names)``
installs the named patches; ``bench/patched_worker.py`` runs the CLI with them.

Since applied in the product (4bc71e1, e920098): ``marks1`` and the non-blocking read of
``marks3``, ``eager``, ``wirebytes``, ``fastwire``, ``gc`` and batches of 2,000; on that code
these patches re-install the same behaviour. Still proposals: the idle ListOffsets client
(``marks2``, part of ``marks3``) and ``redis1``: the ours+ rows of ``run.py``.

    marks1     MarkFeed.catch_up asks for the end offsets of every marks partition in one
               ListOffsets request (``offsets_for_times`` at OFFSET_END) instead of one
               ``get_watermark_offsets`` round trip per partition.
    redis1     RedisStateStore.apply is deferred: the loop's decisions of one iteration go to
               Redis as one pipeline of EVALSHAs (one round trip) before the offsets are sent,
               same script, same order, same fencing; a fenced/conflicting result aborts the
               Kafka transaction and the retry runs cycle by cycle (the old path).
    wirebytes  Shape.to_avro hands fastavro the decimal's two's-complement bytes, computed
               with int arithmetic, instead of a Decimal that fastavro converts digit by digit.
    marks2     as marks1, but the ListOffsets request goes through a second, idle client: on the
               marks consumer's own connection it queues behind that consumer's fetch
               long-poll (fetch.wait.max.ms), which the broker answers first.
    marks3     as marks2, and the catch-up loop reads what is fetched without waiting
               (``consume(n, timeout)`` blocks for the whole timeout unless n records come, so
               every catch-up cost ~100 ms even when the missing marks were there at once).
    eager      the loop's consume() returns as soon as one record is there (poll) plus what
               else is already fetched, up to the batch size, instead of blocking 100 ms for a
               batch that a light load never fills.
    poll20     the loop's consume() waits at most 20 ms for a full batch instead of 100 ms
               (each iteration is one Kafka transaction; under a light load the wait for a
               batch that never fills is pure latency).
    fastwire   ledger.to_wire quantizes with an explicit context (no localcontext block) and
               checks the precision with ``adjusted()`` instead of building ``as_tuple()``.
    gc         raise the cyclic GC's gen-0 threshold (700 → 50,000): the worker allocates
               many short-lived objects per cycle and every full collection walks every
               session book.
    pinned1    CycleDesk.pinned / SessionBook.orphans only look at books with open cycles
               (a set kept by Intake), not at every session ever seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

PATCHES: dict[str, Callable[[], None]] = {}


def patch(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(func: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = func
        return func

    return register


def apply(names: str) -> list[str]:
    chosen = [n for n in names.split(",") if n and n != "none"]
    for name in chosen:
        PATCHES[name]()
    return chosen


@patch("marks1")
def _marks_one_request() -> None:
    from confluent_kafka import OFFSET_END, TopicPartition

    from portfolio_tx.errors import KafkaSetupError
    from portfolio_tx.kafka.mark_feed import MarkFeed

    def catch_up(self: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        ends = self._consumer.offsets_for_times(
            [TopicPartition(self._topic, p, OFFSET_END) for p in self._partitions],
            timeout=timeout,
        )
        targets = {tp.partition: tp.offset for tp in ends}
        self._at_eof.clear()
        while True:
            behind = [
                p for p, high in targets.items()
                if self._next.get(p, 0) < high and p not in self._at_eof
            ]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise KafkaSetupError(f"marks topic {self._topic} not caught up ({behind})")
            self._read(self._consumer.consume(1000, timeout=0.1))

    MarkFeed.catch_up = catch_up


@patch("marks2")
def _marks_idle_client() -> None:
    from confluent_kafka import Consumer

    from portfolio_tx.kafka.mark_feed import MarkFeed

    _marks_one_request()
    one_request = MarkFeed.catch_up
    start = MarkFeed.start

    def start_with_querier(self: Any, timeout: float = 10.0) -> None:
        # same bootstrap and isolation level as the marks consumer; never fetches
        config = {"bootstrap.servers": self._querier_bootstrap, "group.id": "ptx-marks-ends",
                  "isolation.level": "read_committed", "enable.auto.commit": False}
        self._querier = Consumer(config)
        start(self, timeout)

    def catch_up(self: Any, timeout: float = 10.0) -> None:
        querier = getattr(self, "_querier", None)
        if querier is None:
            return one_request(self, timeout)
        real = self._consumer

        class _Ends:  # offsets_for_times through the idle client, reads through the real one
            def offsets_for_times(self, *args: Any, **kwargs: Any) -> Any:
                return querier.offsets_for_times(*args, **kwargs)

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        self._consumer = _Ends()
        try:
            one_request(self, timeout)
        finally:
            self._consumer = real

    import os

    MarkFeed._querier_bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    MarkFeed.start = start_with_querier
    MarkFeed.catch_up = catch_up


@patch("marks3")
def _marks_no_wait() -> None:
    from portfolio_tx.kafka.mark_feed import MarkFeed

    _marks_idle_client()
    read = MarkFeed._read

    class _Eager:
        def __init__(self, real: Any) -> None:
            self._real = real

        def consume(self, num_messages: int = 1, timeout: float = -1) -> Any:
            messages = self._real.consume(num_messages, timeout=0)
            if messages or timeout == 0:
                return messages
            first = self._real.poll(min(timeout, 0.01))
            if first is None:
                return []
            return [first, *self._real.consume(num_messages - 1, timeout=0)]

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    start = MarkFeed.start

    def start_eager(self: Any, timeout: float = 10.0) -> None:
        self._consumer = _Eager(self._consumer)
        start(self, timeout)

    MarkFeed.start = start_eager
    MarkFeed._read = read


@patch("eager")
def _eager_consume() -> None:
    from portfolio_tx.worker.loop import Worker

    init = Worker.__init__

    class _Consumer:
        def __init__(self, real: Any) -> None:
            self._real = real

        def consume(self, num_messages: int = 1, timeout: float = -1) -> Any:
            messages = self._real.consume(num_messages, timeout=0)
            if messages:
                return messages
            first = self._real.poll(timeout)
            if first is None:
                return []
            return [first, *self._real.consume(num_messages - 1, timeout=0)]

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    def patched_init(self: Any, settings: Any, **kwargs: Any) -> None:
        kwargs["consumer"] = _Consumer(kwargs["consumer"])
        init(self, settings, **kwargs)

    Worker.__init__ = patched_init


@patch("fastwire")
def _fast_to_wire() -> None:
    import portfolio_tx.ledger as ledger
    import portfolio_tx.ledger.money as money
    import portfolio_tx.wire.records as records

    quantum = Decimal(1).scaleb(-money.WIRE_SCALE)
    context = money.LEDGER_CONTEXT
    limit = money.WIRE_PRECISION - money.WIRE_SCALE  # adjusted() of the largest that fits + 1

    def to_wire(value: Decimal) -> Decimal:
        quantized = value.quantize(quantum, context=context)
        if quantized.adjusted() >= limit and quantized:
            raise ValueError(f"{value} does not fit decimal({money.WIRE_PRECISION},"
                             f"{money.WIRE_SCALE})")
        return quantized

    money.to_wire = ledger.to_wire = records.to_wire = to_wire


@patch("gc")
def _gc_threshold() -> None:
    import gc

    gc.set_threshold(50_000, 20, 20)


@patch("poll20")
def _poll_20ms() -> None:
    from portfolio_tx.worker.loop import Worker

    init = Worker.__init__

    class _Consumer:
        def __init__(self, real: Any) -> None:
            self._real = real

        def consume(self, num_messages: int = 1, timeout: float = -1) -> Any:
            return self._real.consume(num_messages, timeout=min(timeout, 0.02))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    def patched_init(self: Any, settings: Any, **kwargs: Any) -> None:
        kwargs["consumer"] = _Consumer(kwargs["consumer"])
        init(self, settings, **kwargs)

    Worker.__init__ = patched_init


@patch("redis1")
def _redis_pipelined() -> None:
    from portfolio_tx.errors import StateStoreError
    from portfolio_tx.store.port import Applied
    from portfolio_tx.store.redis_store import RedisStateStore
    from portfolio_tx.worker.desk import CycleDesk

    direct_apply = RedisStateStore.apply

    def apply(self: Any, session_id: str, decision: Any, *, outcome: bytes | None = None,
              event_ids: Any = (), decided_at_ms: int | None = None) -> Any:
        if time.monotonic() < getattr(self, "_direct_until", 0.0):
            return direct_apply(self, session_id, decision, outcome=outcome,
                                event_ids=event_ids, decided_at_ms=decided_at_ms)
        expected = decision.state.version - 1 if decision.committed else decision.state.version
        from portfolio_tx.store.document import dump_state

        args = [
            str(expected),
            "" if decision.cycle_id is None else str(decision.cycle_id),
            "1" if decision.committed else "0",
            str(decision.state.version),
            dump_state(decision.state) if decision.committed else "",
            outcome if outcome is not None else b"",
            str(self._outcome_window),
            "\n".join(event_ids),
            str(int(time.time() * 1000) if decided_at_ms is None else decided_at_ms),
        ]
        self.__dict__.setdefault("_pending", []).append((self.keys_for(session_id), args))
        return Applied(decision, fenced=False, outcome=outcome)

    def flush(self: Any) -> None:
        pending = self.__dict__.get("_pending") or []
        self._pending = []
        if not pending:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for keys, args in pending:
                self._apply(keys=keys, args=args, client=pipe)
            results = pipe.execute()
        except Exception as exc:  # RedisError
            raise StateStoreError(f"Redis write failed for a batch of decisions: {exc}") from exc
        if any(status != b"APPLIED" for status, _ in results):
            self._direct_until = time.monotonic() + 5.0
            raise StateStoreError("a batched decision was fenced or conflicted; retrying "
                                  "cycle by cycle")

    RedisStateStore.apply = apply
    RedisStateStore.flush = flush
    decide_ready = CycleDesk.decide_ready

    def decide_and_flush(self: Any, now: float, publish: Any, before_valuing: Any) -> int:
        handled = decide_ready(self, now, publish, before_valuing)
        store = self.decider._store
        if hasattr(store, "flush"):
            store.flush()
        return handled

    CycleDesk.decide_ready = decide_and_flush


@patch("wirebytes")
def _wire_bytes() -> None:
    from portfolio_tx.ledger.money import LEDGER_CONTEXT
    from portfolio_tx.wire.records import Shape

    def unscaled(kind: Any, value: Decimal) -> bytes:
        quantized = kind.quantize(value)  # same rounding and range checks as before
        number = int(quantized.scaleb(kind.scale, LEDGER_CONTEXT))
        return number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True)

    def to_avro(self: Any, value: Any) -> dict[str, Any]:
        record = {name: getattr(value, name) for name in self.names}
        for name, kind in self.decimals.items():
            if record[name] is not None:
                record[name] = unscaled(kind, record[name])
        for name in self.enums:
            record[name] = str(record[name])
        for name, shape in self.arrays.items():
            record[name] = [shape.to_avro(item) for item in record[name]]
        for name in self.strings:
            record[name] = list(record[name])
        return record

    Shape.to_avro = to_avro


@patch("pinned1")
def _pinned_open_books() -> None:
    from portfolio_tx.worker.desk import CycleDesk

    def pinned(self: Any) -> dict[tuple[str, int], int]:
        found: dict[tuple[str, int], int] = {}
        for book in self.intake.books.values():
            if not book.cycles:
                continue
            for where, offset in book.pinned():
                if where not in found or offset < found[where]:
                    found[where] = offset
        return found

    CycleDesk.pinned = pinned


@patch("refwire")
def _reference_wire_bytes() -> None:
    """The quantizing decimal → wire bytes path the product had before its fast path (for
    before/after runs of ``cpu_bound.py``)."""
    from portfolio_tx.wire.records import DecimalType

    DecimalType.unscaled_bytes = DecimalType.unscaled_bytes_reference  # type: ignore[method-assign]
