"""A progress bar on a terminal (stderr), silence elsewhere."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, label: str, width: int = 30) -> None:
        self._label = label
        self._width = width
        self._shown = sys.stderr.isatty()
        self._started = time.monotonic()

    def update(self, done: int, total: int) -> None:
        if not self._shown or total <= 0:
            return
        filled = int(self._width * done / total)
        bar = "#" * filled + "-" * (self._width - filled)
        elapsed = time.monotonic() - self._started
        sys.stderr.write(f"\r{self._label} [{bar}] {done}/{total} {elapsed:5.1f}s")
        sys.stderr.flush()

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
