"""The dashboard end to end: real worker, real commit topic, the page in headless Chromium.

Chromium is Debian's (``apt-get install -y chromium``), driven by Playwright's Python package
through ``executable_path`` (Playwright's own browser download is never used). A missing
Chromium fails the test, in CI and on a laptop alike: a dashboard nobody looked at is not
tested. The screenshot goes to ``artifacts/dashboard.png``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline import ROOT, T0, Pipeline
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("PTX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "artifacts" / "dashboard.png"
BTC, ETH = "BTC/USDT", "ETH/USDT"


def at(cycle: int) -> int:
    return T0 + cycle * 60_000


def publish_cycles(p: Pipeline, session: str, cycles: range) -> None:
    """The worked example's cycles ``cycles`` for ``session`` (CONTRACT §2): 3 and 5 are
    discarded (VALIDATION_FAILED, MISSING_MARK), the others committed."""
    marks = {
        1: (BTC, "50500"),
        2: (BTC, "51000"),
        3: (BTC, "48000"),
        5: (BTC, "47500"),
        6: (ETH, "3100"),
    }
    for c in cycles:
        if c in marks:
            p.mark(*marks[c], ts=at(c) - 10)
        if c == 1:
            p.pnl(session, 1, "TRANSFER", "100000", event_id="c1-t")
            p.fill(session, 1, BTC, "BUY", "1", "50000", "25", event_id="c1-f")
        elif c == 2:
            p.fill(session, 2, BTC, "SELL", "0.4", "52000", "10.4", event_id="c2-f")
            p.pnl(session, 2, "REALIZED", "800", event_id="c2-r")
        elif c in (3, 4):
            p.fill(session, c, BTC, "SELL", "1.0", "49000", "9.8", event_id="c3-f")
            p.pnl(session, c, "REALIZED", "-500" if c == 3 else "-600", event_id=f"c{c}-r")
        else:
            p.fill(session, c, BTC, "BUY", "0.4", "47000", "4.7", event_id=f"c{c}-f1")
            p.fill(session, c, ETH, "BUY", "10", "3000", "3", event_id=f"c{c}-f2")
            p.pnl(session, c, "REALIZED", "800", event_id=f"c{c}-r")
            p.pnl(session, c, "FUNDING", "-12.5", event_id=f"c{c}-fu")
        fills, reports = (1, 1) if c < 5 else (2, 2)
        p.marker(session, c, fills, reports, ts=at(c))
    p.flush()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dashboard(pipeline: Pipeline) -> Iterator[str]:
    """``portfolio-tx dashboard`` on a free port, following this pipeline's commit topic."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "portfolio_tx", "dashboard", "--port", str(port)],
        env=pipeline.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the dashboard did not start:\n{process.communicate()[0]}")
            time.sleep(0.2)
    yield url
    process.terminate()
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium) "
            "or set PTX_CHROMIUM",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_dashboard_shows_sessions_live_with_equity_charts_and_highlighted_discards(
    pipeline: Pipeline, dashboard: str, page: Page
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    publish_cycles(pipeline, "desk-1", range(1, 3))
    assert pipeline.run_worker(max_cycles=2).committed == 2

    page.goto(dashboard)
    desk1 = page.locator('.session[data-session="desk-1"]')
    expect(desk1.locator(".badge")).to_have_text("COMMIT · cycle 2")
    expect(desk1.locator(".equity")).to_have_text("101,364.60")
    page.evaluate("window.__openedOnce = true")

    # while the page stays open: desk-1 runs to cycle 6, desk-2 ends on a discard
    publish_cycles(pipeline, "desk-1", range(3, 7))
    publish_cycles(pipeline, "desk-2", range(1, 4))
    stats = pipeline.run_worker(max_cycles=7)
    assert stats.committed == 4 and sum(stats.discarded.values()) == 3

    expect(desk1.locator(".badge")).to_have_text("COMMIT · cycle 6", timeout=30_000)
    expect(desk1.locator(".equity")).to_have_text("101,934.60")
    expect(desk1.locator(".cash")).to_have_text("70,934.60")
    expect(desk1.locator(".positions tbody tr")).to_have_count(1)
    expect(desk1.locator(".positions tbody tr td").first).to_have_text(ETH)
    expect(desk1.locator(".discards li")).to_have_text(
        [
            "cycle 5 MISSING_MARK · Δ 0.00 · ε 10.06",
            "cycle 3 VALIDATION_FAILED · Δ -100.00 · ε 10.14",
        ]
    )

    desk2 = page.locator('.session[data-session="desk-2"]')
    expect(desk2).to_have_class("session last-discard", timeout=30_000)
    expect(desk2.locator(".discard-banner")).to_be_visible()
    expect(desk2.locator(".discard-banner")).to_have_text(
        "DISCARD VALIDATION_FAILED · cycle 3 · Δ -100.00 · ε 10.14"
    )
    expect(desk2.locator(".equity")).to_have_text("101,364.60")  # the discard changed nothing

    for card in (desk1, desk2):
        chart = card.locator(".chart canvas")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100

    discard_rows = page.locator("#recent tbody tr.discard")
    expect(discard_rows).to_have_count(3)
    expect(discard_rows.first.locator("td.reason")).to_have_text("VALIDATION_FAILED")
    expect(page.locator("#total-discards")).to_have_text("3")
    expect(page.locator("#status")).to_have_class("status live")
    assert page.evaluate("window.__openedOnce") is True, "updates arrived without a reload"
    assert errors == []

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True, animations="disabled")
