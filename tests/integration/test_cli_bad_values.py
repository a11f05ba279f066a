"""Every typed flag of every command, and every typed environment variable, refuses a bad
value the same way: one line on stderr naming the flag or variable and the value, exit 2,
no traceback, before anything is connected to.

The flags come from the parser itself (``cli.build_parser``) and the variables from the
tables their loaders read (``config``, ``flags`` and ``security.TYPED_VARIABLES``), so a new
one is covered as soon as it exists; a new *type* fails ``test_every_type_has_bad_values``
until BAD_VALUES says what a bad value of it is. No Kafka or Redis is needed: the
connections point at a port nothing listens on, so a value wrongly accepted fails the test
with a connection error instead of reaching a service.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from portfolio_tx import config, security
from portfolio_tx.commands import flags
from portfolio_tx.commands.cli import EXIT_ERROR, build_parser

# What a bad value of each type is, by the name of the ``type=`` parser ("choice" for a flag
# with ``choices=``). More than one where a type can go wrong in more than one way.
BAD_VALUES: dict[str, tuple[str, ...]] = {
    "int": ("abc", "1.5"),
    "float": ("soon",),
    "parse_positive_int": ("many", "0", "-3"),
    "parse_positive_float": ("soon", "0", "nan"),
    "parse_port": ("http", "70000"),
    "parse_epsilon": ("abc", "-1"),
    "parse_cost_basis": ("lifo",),
    "parse_faults": ("meteor",),
    "parse_offsets": ("0-5",),
    "parse_log_level": ("loud",),
    "parse_log_format": ("yaml",),
    "parse_security_protocol": ("TLS",),
    "parse_sasl_mechanism": ("GSSAPI",),
    "parse_readable_file": ("/nonexistent/ca.pem",),
    "parse_properties_file": ("/nonexistent/client.properties",),
    "choice": ("loud",),
}
# Anything a command might connect to, were a bad value accepted: nothing listens there.
NOWHERE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1/0"}
RUN_TIMEOUT_S = 60


def commands(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(the words that name a command, its parser) for every runnable command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*words, name))
            return
    yield words, parser


def type_name(action: argparse.Action) -> str | None:
    """The BAD_VALUES key of a flag, None for a string or a switch (nothing to get wrong)."""
    if action.choices is not None:
        return "choice"
    if action.type is None or action.type is str:
        return None
    return str(getattr(action.type, "__name__", repr(action.type)))


def required_argv(parser: argparse.ArgumentParser) -> list[str]:
    """Good values for what the command cannot run without (a positional, --into)."""
    argv: list[str] = []
    for action in parser._actions:
        if action.required or not action.option_strings:
            assert type_name(action) is None, f"give {action.dest} a good value here"
            argv += [action.option_strings[0], "x"] if action.option_strings else ["x"]
    return argv


def typed_flags(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[argparse.Action, str]]:
    for action in parser._actions:
        if action.option_strings and action.nargs != 0 and (kind := type_name(action)):
            yield action, kind


def typed_variables() -> dict[str, str]:
    tables: list[Any] = [config.TYPED_VARIABLES, flags.TYPED_VARIABLES, security.TYPED_VARIABLES]
    return {name: parse.__name__ for table in tables for name, (_, parse) in table.items()}


PARSER = build_parser()
COMMANDS = list(commands(PARSER))


class BadValues:
    """One bad value per case, taking each type's values in turn: every value of a type is
    tried by some case while each (command, flag or variable) costs one process."""

    def __init__(self) -> None:
        self._taken: Counter[str] = Counter()

    def next(self, kind: str) -> str:
        values = BAD_VALUES.get(kind, ("",))  # an unknown kind: test_every_type_has_bad_values
        self._taken[kind] += 1
        return values[(self._taken[kind] - 1) % len(values)]


def flag_cases() -> Iterator[Any]:
    bad_values = BadValues()
    for words, parser in COMMANDS:
        for action, kind in typed_flags(parser):
            flag = max(action.option_strings, key=len)
            bad = bad_values.next(kind)
            argv = [*words, *required_argv(parser), f"{flag}={bad}"]
            yield pytest.param(argv, flag, bad, id=f"{' '.join(words)} {flag}={bad}")


COMMANDS_PER_VARIABLE = 2


def variable_plan() -> list[tuple[tuple[str, ...], argparse.ArgumentParser, str, str]]:
    """(command words, its parser, variable, type) for each variable on
    COMMANDS_PER_VARIABLE commands, the commands taken in turn so that every command meets
    several variables. Every command reads every variable through the one settings loader
    before it connects (``cli.settings_from``), so a command that parsed one outside it
    fails here for the ones it meets. (Every variable on every command was 230 processes,
    about 3 minutes of ``make test``.)"""
    plan = []
    turn = 0
    for name, kind in typed_variables().items():
        for _ in range(COMMANDS_PER_VARIABLE):
            words, parser = COMMANDS[turn % len(COMMANDS)]
            turn += 1
            plan.append((words, parser, name, kind))
    return plan


def variable_cases() -> Iterator[Any]:
    bad_values = BadValues()
    for words, parser, name, kind in variable_plan():
        bad = bad_values.next(kind)
        argv = [*words, *required_argv(parser)]
        yield pytest.param(argv, name, bad, id=f"{' '.join(words)} {name}={bad}")


def test_every_command_meets_several_variables_and_each_variable_two_commands() -> None:
    plan = variable_plan()
    per_command = Counter(words for words, _, _, _ in plan)
    assert set(per_command) == {words for words, _ in COMMANDS}
    assert min(per_command.values()) >= 3, per_command
    per_variable = Counter((name, words) for words, _, name, _ in plan)
    assert {name for name, _ in per_variable} == set(typed_variables())
    assert all(count == 1 for count in per_variable.values())  # two different commands


def run(argv: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("PTX_", "KAFKA_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "portfolio_tx", *argv],
        env={**inherited, **NOWHERE, **variables},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def assert_refused(done: subprocess.CompletedProcess[str], names: str, bad: str) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr:\n{done.stderr}"
    assert names in lines[0], lines[0]
    assert repr(bad).lower() in lines[0].lower(), f"the line does not quote {bad!r}: {lines[0]}"
    assert done.returncode == EXIT_ERROR, (done.returncode, lines[0])


def test_every_type_has_bad_values() -> None:
    kinds = {kind for _, parser in COMMANDS for _, kind in typed_flags(parser)}
    kinds |= set(typed_variables().values())
    assert kinds <= BAD_VALUES.keys(), f"say what a bad value is for {kinds - BAD_VALUES.keys()}"


def test_the_enumeration_reaches_every_command() -> None:
    names = {" ".join(words) for words, _ in COMMANDS}
    assert {"worker", "topics create", "state", "tail", "replay", "verify"} <= names
    assert "--epsilon" in {
        f for _, p in COMMANDS for a, _ in typed_flags(p) for f in a.option_strings
    }


@pytest.mark.parametrize(("argv", "flag", "bad"), list(flag_cases()))
def test_a_bad_flag_value_is_one_line_naming_the_flag(argv: list[str], flag: str, bad: str) -> None:
    assert_refused(run(argv), f"argument {flag}", bad)


@pytest.mark.parametrize(("argv", "variable", "bad"), list(variable_cases()))
def test_a_bad_variable_value_is_one_line_naming_the_variable(
    argv: list[str], variable: str, bad: str
) -> None:
    assert_refused(run(argv, **{variable: bad}), f"{variable}=", bad)
