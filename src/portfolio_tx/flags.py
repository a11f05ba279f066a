"""The CLI's operational options: flag types, their environment fallbacks, one-line errors.

Connection and accounting settings live in ``config.Settings``; the options here only shape
how a process is run and watched (logs, the metrics endpoint, the dashboard's address):

    PTX_LOG_LEVEL        INFO        --log-level      DEBUG | INFO | WARNING | ERROR
    PTX_LOG_FORMAT       text        --log-format     text | json
    PTX_METRICS_PORT     0 (off)     --metrics-port   worker: Prometheus endpoint port
    PTX_METRICS_HOST     127.0.0.1   --metrics-host   worker: address it binds
    PTX_DASHBOARD_PORT   8765        --port           dashboard: HTTP port
    PTX_DASHBOARD_HOST   127.0.0.1   --host           dashboard: address it binds

A flag wins over its variable, the variable over the default. A malformed value is a
ConfigError naming the variable (or, for a flag, argparse's one-line usage error).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn, TypeVar

from portfolio_tx.errors import ConfigError

LOCALHOST = "127.0.0.1"
DEFAULT_DASHBOARD_PORT = 8765
EXIT_USAGE = 2

T = TypeVar("T")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def flag_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type=`` from a parser that raises ConfigError."""

    def convert(raw: str) -> T:
        try:
            return parse(raw)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = parse.__name__  # argparse names the type in its message
    return convert


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


def env_port(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get(name, "").strip()
    return parse_port(raw, name) if raw else default


def env_choice(
    name: str, choices: Sequence[str], default: str, env: Mapping[str, str] | None = None
) -> str:
    """The variable's value if it is one of ``choices`` (any case), else ConfigError."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")


def env_host(name: str, env: Mapping[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get(name, "").strip() or LOCALHOST
