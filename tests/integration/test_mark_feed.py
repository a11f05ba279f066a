"""MarkFeed.catch_up against the real broker: a mark published before the call is in the
table when it returns, whether the ends are asked on the reading consumer's connection or on
a second, idle one (the worker's set-up: see MarkFeed)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pipeline import T0, Pipeline

from portfolio_tx.kafka.clients import make_reader
from portfolio_tx.kafka.mark_feed import MarkFeed
from portfolio_tx.worker.mark_table import MarkTable


@pytest.mark.parametrize("own_ends", [True, False], ids=["ends-on-idle-consumer", "same"])
def test_catch_up_reads_every_mark_published_before_it(pipeline: Pipeline, own_ends: bool) -> None:
    settings = pipeline.settings
    reader = make_reader(settings, "test-marks", **{"fetch.wait.max.ms": 500})
    ends = make_reader(settings, "test-marks-ends") if own_ends else None
    feed = MarkFeed(reader, settings.topics.marks, pipeline.codec, MarkTable(), ends=ends)
    pipeline.mark("BTC/USDT", "47000", ts=T0)
    pipeline.flush()
    feed.start()
    try:
        assert feed.table.latest("BTC/USDT", T0 + 1) == (Decimal("47000"), T0)
        for n in range(1, 6):  # the reader is long-polling each time: the ends must not lag
            pipeline.mark("BTC/USDT", str(47000 + n), ts=T0 + n)
            pipeline.mark(f"S{n}/USDT", str(n), ts=T0 + n)
            pipeline.flush()
            feed.catch_up()
            assert feed.table.latest("BTC/USDT", T0 + n) == (Decimal(47000 + n), T0 + n)
            assert feed.table.latest(f"S{n}/USDT", T0 + n) == (Decimal(n), T0 + n)
    finally:
        feed.close()
