"""README's layout section names every package and top-level module of src/portfolio_tx,
and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "portfolio_tx"


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Layout") :]
    return section[section.index("```\n") + 4 : section.index("\n```", section.index("```\n") + 4)]


def test_the_readme_layout_matches_the_tree() -> None:
    block = _layout_block()
    named = set(re.findall(r"src/portfolio_tx/([\w.]+)/?", block))
    named |= set(re.findall(r"\|\s+([\w.]+?)/?\s", block))
    present = {
        path.name
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.name not in ("__init__.py", "__main__.py"))
    }
    assert present == named
    for line in block.splitlines():
        first = line.split()[0] if line.strip() else ""
        if first.startswith(("src/", "schemas/", "scripts/")):
            assert (ROOT / first).exists(), first
