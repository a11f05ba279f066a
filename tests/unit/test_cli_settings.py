"""From the command line to Settings: a flag's value is parsed once, by the parser its
environment variable is read with, and wins over the variable."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio_tx.commands.cli import build_parser, settings_from
from portfolio_tx.commands.flags import load_run_options
from portfolio_tx.config import load_settings
from portfolio_tx.errors import ConfigError
from portfolio_tx.ledger import CostBasis


@pytest.mark.parametrize("command", [["worker"], ["replay", "--into", "what-if"]])
def test_epsilon_and_cost_basis_flags_win_over_the_environment_as_parsed_values(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTX_EPSILON", "2")
    monkeypatch.setenv("PTX_COST_BASIS", "fifo")
    args = build_parser().parse_args([*command, "--epsilon", "0.25", "--cost-basis", "AVERAGE"])
    settings = settings_from(args)
    assert settings.epsilon == Decimal("0.25") and isinstance(settings.epsilon, Decimal)
    assert settings.cost_basis is CostBasis.AVERAGE


def test_without_the_flag_the_variable_is_the_epsilon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTX_EPSILON", "2.5")
    assert settings_from(build_parser().parse_args(["worker"])).epsilon == Decimal("2.5")


def test_typed_variables_are_read_with_their_types() -> None:
    settings = load_settings(
        {"PTX_BATCH_SIZE": " 500 ", "PTX_CYCLE_TIMEOUT": "2.5", "PTX_COST_BASIS": "Average"}
    )
    assert settings.batch_size == 500 and settings.cycle_timeout_s == 2.5
    assert settings.cost_basis is CostBasis.AVERAGE
    assert load_settings({}) == load_settings({"PTX_BATCH_SIZE": ""})  # empty = unset


@pytest.mark.parametrize(
    ("variable", "raw"),
    [("PTX_BATCH_SIZE", "0"), ("PTX_MAX_BUFFERED_MB", "inf"), ("PTX_EPSILON", "-1")],
)
def test_a_malformed_variable_is_a_config_error_naming_it(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable}='{raw}'"):
        load_settings({variable: raw})


def test_run_options_come_from_the_environment_and_the_flags_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTX_METRICS_PORT", "9464")
    monkeypatch.setenv("PTX_LOG_LEVEL", "debug")
    args = build_parser().parse_args(["worker", "--metrics-port", "9500"])
    options = load_run_options(flags=args)
    assert (options.metrics_port, options.log_level, options.log_format) == (9500, "DEBUG", "text")
    assert load_run_options({"PTX_DASHBOARD_PORT": "8000"}).dashboard_port == 8000
    args = build_parser().parse_args(["dashboard", "--port", "8001", "--host", "0.0.0.0"])
    options = load_run_options({"PTX_DASHBOARD_PORT": "8000"}, flags=args)
    assert (options.dashboard_port, options.dashboard_host) == (8001, "0.0.0.0")
