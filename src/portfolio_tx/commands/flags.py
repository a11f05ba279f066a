"""The CLI's operational options: flag types, their environment fallbacks, one-line errors.

Connection and accounting settings live in ``config.Settings``; the options here only shape
how a process is run and watched (logs, the metrics endpoint, the dashboard's address):

    PTX_LOG_LEVEL        INFO        --log-level      DEBUG | INFO | WARNING | ERROR
    PTX_LOG_FORMAT       text        --log-format     text | json
    PTX_METRICS_PORT     0 (off)     --metrics-port   worker: Prometheus endpoint port
    PTX_METRICS_HOST     127.0.0.1   --metrics-host   worker: address it binds
    PTX_DASHBOARD_PORT   8765        --port           dashboard: HTTP port
    PTX_DASHBOARD_HOST   127.0.0.1   --host           dashboard: address it binds
    PTX_DASHBOARD_TOKEN[_FILE]  (unset)               dashboard: the token every request
                                                      carries; required off loopback

A flag wins over its variable, the variable over the default. Every command reads all of
them at start (``load_run_options``): a malformed value is a ConfigError naming the
variable, or, for a flag, argparse's one-line usage error naming the flag.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NoReturn

from portfolio_tx.config import parse_positive_int
from portfolio_tx.errors import ConfigError
from portfolio_tx.logs import FORMATS, LEVELS
from portfolio_tx.security import Secret, secret_from_env

LOCALHOST = "127.0.0.1"
DEFAULT_DASHBOARD_PORT = 8765
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where help is), exit 2.

    A ``type=`` parser may raise ConfigError (the same parsers read the environment): it
    becomes the usage error of the flag it was given to, like argparse's own type errors.
    Subcommand parsers are built from this class too (argparse's ``parser_class`` default).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        # argparse turns only ArgumentTypeError, TypeError and ValueError into usage errors
        try:
            return super()._get_value(action, arg_string)
        except ConfigError as exc:
            raise argparse.ArgumentError(action, str(exc)) from exc


def add_dashboard_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        dest="dashboard_port",
        metavar="PORT",
        type=parse_port,
        help=f"HTTP port [PTX_DASHBOARD_PORT] ({DEFAULT_DASHBOARD_PORT})",
    )
    parser.add_argument(
        "--host",
        dest="dashboard_host",
        metavar="HOST",
        help=f"address the page is served on [PTX_DASHBOARD_HOST] ({LOCALHOST})",
    )
    parser.add_argument(
        "--history", type=parse_positive_int, default=2000, help="equity points per session (2000)"
    )


def parse_port(raw: str, name: str | None = None) -> int:
    """A TCP port 0..65535 (0 = off where the port is optional); ``name`` is the variable."""
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        given = f"{name}={raw!r}" if name else repr(raw)
        raise ConfigError(f"{given} is not a port number (0-65535)")
    return port


def _choice(raw: str, choices: Sequence[str], name: str) -> str:
    """The one of ``choices`` that ``raw`` is (any case), else ConfigError naming ``name``."""
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")


def parse_log_level(raw: str, name: str) -> str:
    return _choice(raw, LEVELS, name)


def parse_log_format(raw: str, name: str) -> str:
    return _choice(raw, FORMATS, name)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the process is run and watched; read from the environment once, flags win."""

    log_level: str = "INFO"
    log_format: str = "text"
    metrics_port: int = 0
    metrics_host: str = LOCALHOST
    dashboard_port: int = DEFAULT_DASHBOARD_PORT
    dashboard_host: str = LOCALHOST
    dashboard_token: Secret | None = None  # never a flag: argv is visible to every user


# The typed variables: name -> (RunOptions field, parser), as config.TYPED_VARIABLES.
TYPED_VARIABLES: Mapping[str, tuple[str, Callable[[str, str], Any]]] = {
    "PTX_LOG_LEVEL": ("log_level", parse_log_level),
    "PTX_LOG_FORMAT": ("log_format", parse_log_format),
    "PTX_METRICS_PORT": ("metrics_port", parse_port),
    "PTX_DASHBOARD_PORT": ("dashboard_port", parse_port),
}


def load_run_options(
    env: Mapping[str, str] | None = None, flags: argparse.Namespace | None = None
) -> RunOptions:
    """Read every option from ``env`` (default: the process environment), whichever command
    runs, so a malformed one is reported the same way by all of them (as config does); a
    flag given in ``flags`` (its dest is the field's name) wins over the variable.

    Raises ConfigError naming the variable when a value is malformed.
    """
    env = os.environ if env is None else env
    found: dict[str, Any] = {
        field_name: parse(raw, name)
        for name, (field_name, parse) in TYPED_VARIABLES.items()
        if (raw := env.get(name, "").strip())
    }
    found["metrics_host"] = env.get("PTX_METRICS_HOST", "").strip() or LOCALHOST
    found["dashboard_host"] = env.get("PTX_DASHBOARD_HOST", "").strip() or LOCALHOST
    found["dashboard_token"] = secret_from_env(env, "PTX_DASHBOARD_TOKEN")
    for option in fields(RunOptions):
        given = getattr(flags, option.name, None)
        if given is not None:
            found[option.name] = given
    return RunOptions(**found)
