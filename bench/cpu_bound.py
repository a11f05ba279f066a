"""The worker's own CPU cost per cycle, without Kafka or Redis: what bounds one process.

    python bench/cpu_bound.py [--cycles 8] [--patches wirebytes,fastwire] [--profile]

Feeds the workload's records, in order, through the worker's CycleDesk (decode → stage →
value → decide → outcome record) with an in-memory store and no-op publishing, deciding
every 2,000 records like the loop does. The rate is the most one worker process could do on
one core if every broker and Redis round trip were free; ``--profile`` prints where the CPU
goes (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import patches  # noqa: E402
from workload import KINDS, Shape, build  # noqa: E402


class _Message:
    __slots__ = ("_key", "_offset", "_topic", "_value")

    def __init__(self, topic: str, offset: int, key: bytes, value: bytes) -> None:
        self._topic, self._offset, self._key, self._value = topic, offset, key, value

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, self._offset)  # CreateTime; only INCOMPLETE timing reads it


def run(cycles: int, batch: int, profile: bool) -> tuple[float, float]:
    from portfolio_tx.config import Settings
    from portfolio_tx.store.memory import MemoryStateStore
    from portfolio_tx.wire.codec import Codec
    from portfolio_tx.wire.events import MarkPrice
    from portfolio_tx.worker.desk import CycleDesk
    from portfolio_tx.worker.mark_table import MarkTable
    from portfolio_tx.worker.stats import WorkerStats

    workload = build(Shape(cycles=cycles))
    settings = Settings(cycle_timeout_s=3600)
    codec = Codec()
    marks = MarkTable()
    names = (settings.topics.fills, settings.topics.pnl, settings.topics.cycles)
    messages = []
    for offset, (kind, key, value) in enumerate(workload.records):
        if KINDS[kind] == "marks":
            mark = codec.decode(value, topic="marks", partition=0, offset=0, expected=MarkPrice)
            marks.add(mark.symbol, mark.price, mark.ts)
        else:
            messages.append(_Message(names[kind], offset, key.encode(), value))
    desk = CycleDesk(settings, MemoryStateStore(), codec, marks, None, WorkerStats(),
                     lambda *_: None)
    decided = 0

    def work() -> None:
        nonlocal decided
        for start in range(0, len(messages), batch):
            now = time.monotonic()
            for message in messages[start : start + batch]:
                desk.route(message, now)
            decided += desk.decide_ready(now, lambda *_: None, lambda: None)

    started, cpu_started = time.perf_counter(), time.process_time()
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(work)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    else:
        work()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    assert decided == workload.cycles, (decided, workload.cycles)
    return len(messages) / seconds, len(messages) / cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--patches", default="")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from portfolio_tx.logs import configure

    configure("INFO", "text", stream=open("/dev/null", "w"))  # noqa: SIM115 - the CLI's logging
    patches.apply(args.patches)
    rate, cpu_rate = run(args.cycles, args.batch, args.profile)
    print(f"patches={args.patches or 'none'}: {rate:,.0f} events/s on one core "
          f"({1e6 / rate * 13:.0f} µs per cycle of 13 events); per CPU second "
          f"{cpu_rate:,.0f} events/s ({1e6 / cpu_rate * 13:.0f} µs per cycle)")


if __name__ == "__main__":
    main()
