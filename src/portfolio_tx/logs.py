"""Logging set-up for the CLI (the only caller): readable text by default, JSON on demand.

Text, one line per record, UTC::

    2026-01-01T09:30:00.123Z INFO    portfolio_tx.transaction: PORTFOLIO_COMMIT: cash=$…
        … session=desk-1 cycle=4

JSON (``--log-format json``), one object per line, for log shippers::

    {"ts": "2026-01-01T09:30:00.123Z", "level": "INFO", "logger": "portfolio_tx.transaction",
     "message": "PORTFOLIO_COMMIT: … session=desk-1 cycle=4",
     "session_id": "desk-1", "cycle_id": 4}

Fields a call passes with ``extra=`` (decision lines pass ``session_id`` and ``cycle_id``)
become top-level keys; values JSON cannot hold (Decimal, enums) are written as strings.
An exception adds ``"exception"`` with the formatted traceback.

librdkafka's own log lines reach Python logging only from clients configured with
``"logger": logging.getLogger(LIBRDKAFKA_LOGGER)``; they are kept to WARNING and above unless
the level is DEBUG, because every error they report is also returned to the caller, which
says it once, in words (see ``cli``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
LIBRDKAFKA_LOGGER = "portfolio_tx.librdkafka"

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}
_NOISY = ("uvicorn.access",)


_second: list[Any] = [None, ""]  # the last second formatted, and its text


def _utc(record: logging.LogRecord) -> str:
    second = int(record.created)
    if second != _second[0]:  # one strftime per second, not per line
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{int(record.msecs):03d}Z"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a logging call added with ``extra=``, in the order they were given."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            document.setdefault(key, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message>``; extra fields the message does not
    already show are appended as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        shown = [
            f"{key}={value}"
            for key, value in extra_fields(record).items()
            if f"{_short(key)}={value}" not in message and f"{key}={value}" not in message
        ]
        line = f"{_utc(record)} {record.levelname:<7} {record.name}: {message}"
        if shown:
            line += " " + " ".join(shown)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _short(key: str) -> str:
    """``session_id`` is shown as ``session=`` in the seed's decision lines."""
    return key.removesuffix("_id")


def configure(level: str = "INFO", form: str = "text", stream: TextIO | None = None) -> None:
    """Send every record at ``level`` or above to ``stream`` (default stderr) as ``form``.

    Raises ValueError for a level or form not in LEVELS / FORMATS (the CLI checks first).
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    if form not in FORMATS:
        raise ValueError(f"log format {form!r} is not one of {', '.join(FORMATS)}")
    # no record shows the caller's file and line, thread or process: not looking them up
    # saves a third of a decision line's cost (the Logging HOWTO's "Optimization")
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    debug = level == "DEBUG"
    logging.getLogger(LIBRDKAFKA_LOGGER).setLevel(logging.DEBUG if debug else logging.WARNING)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
