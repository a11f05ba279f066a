"""No module in ``src/`` over 300 lines (STYLE.md): a module that grows past it is split by
role before it becomes a hub. Vendored files (the dashboard's static assets) are not Python
modules and are not counted."""

from __future__ import annotations

from pathlib import Path

import pytest

import portfolio_tx

LIMIT = 300
PACKAGE = Path(portfolio_tx.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_its_modules() -> None:
    assert len(MODULES) > 50  # the glob found the source tree, not an empty directory


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_300_lines(module: Path) -> None:
    lines = len(module.read_text().splitlines())
    assert lines <= LIMIT, f"{module.relative_to(PACKAGE)} has {lines} lines; split it by role"
