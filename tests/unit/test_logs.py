"""The CLI's log formats: one readable line, or one JSON object per record."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest

from portfolio_tx.logs import JsonFormatter, TextFormatter, configure


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "portfolio_tx.transaction", logging.INFO, __file__, 1, message, args, None
    )
    made.__dict__.update(extra)
    return made


def test_json_line_has_time_level_logger_message_and_the_decision_fields() -> None:
    line = JsonFormatter().format(
        record(
            "PORTFOLIO_DISCARD: reason=%s Δ=$%s, ε=$%s session=%s cycle=%s",
            "VALIDATION_FAILED",
            "-100.00",
            "10.14",
            "desk-1",
            3,
            session_id="desk-1",
            cycle_id=3,
        )
    )
    document = json.loads(line)
    assert document["level"] == "INFO"
    assert document["logger"] == "portfolio_tx.transaction"
    assert document["message"] == (
        "PORTFOLIO_DISCARD: reason=VALIDATION_FAILED Δ=$-100.00, ε=$10.14 session=desk-1 cycle=3"
    )
    assert (document["session_id"], document["cycle_id"]) == ("desk-1", 3)
    assert document["ts"].endswith("Z") and document["ts"][10] == "T"


def test_json_writes_decimals_as_strings_and_keeps_non_ascii_text() -> None:
    document = json.loads(JsonFormatter().format(record("ε ok", amount=Decimal("0.10"))))
    assert document["amount"] == "0.10"
    assert document["message"] == "ε ok"


def test_json_puts_a_traceback_inside_the_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failing = record("failed")
        failing.exc_info = sys.exc_info()
    line = JsonFormatter().format(failing)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_json_extra_fields_never_replace_the_standard_ones() -> None:
    document = json.loads(JsonFormatter().format(record("real", level="fake")))
    assert document["level"] == "INFO"


def test_text_line_shows_extras_the_message_does_not_already_show() -> None:
    line = TextFormatter().format(
        record(
            "PORTFOLIO_COMMIT: … session=desk-1 cycle=4",
            session_id="desk-1",
            cycle_id=4,
            worker="w-1",
        )
    )
    assert line.endswith(
        "portfolio_tx.transaction: PORTFOLIO_COMMIT: … session=desk-1 cycle=4 worker=w-1"
    )
    assert line.count("desk-1") == 1


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_configure_json_turns_every_logging_call_into_a_json_line() -> None:
    stream = io.StringIO()
    configure("info", "json", stream=stream)
    logging.getLogger("portfolio_tx.worker").info("hello %s", "desk", extra={"cycle_id": 7})
    logging.getLogger("portfolio_tx.worker").debug("not shown at INFO")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["hello desk"]
    assert json.loads(lines[0])["cycle_id"] == 7


@pytest.mark.usefixtures("restore_root_logging")
def test_configure_keeps_librdkafka_chatter_below_warning_unless_debugging() -> None:
    stream = io.StringIO()
    configure("INFO", "text", stream=stream)
    client = logging.getLogger("portfolio_tx.librdkafka")
    client.info("CONNECT [rdkafka#consumer-1] connecting")
    client.error("FAIL [rdkafka#consumer-1] connection refused")
    assert [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()] == [
        "FAIL [rdkafka#consumer-1] connection refused"
    ]


@pytest.mark.parametrize(("level", "form"), [("LOUD", "text"), ("INFO", "yaml")])
def test_configure_rejects_an_unknown_level_or_format(level: str, form: str) -> None:
    with pytest.raises(ValueError, match="is not one of"):
        configure(level, form, stream=io.StringIO())
