"""The wheel ships exactly the repository's ``schemas/`` (the one source of the schemas), byte
for byte, under ``portfolio_tx/wire/schemas``; the package holds a link, not a copy."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_exactly_the_top_level_schemas(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("portfolio_tx-*.whl")
    prefix = "portfolio_tx/wire/schemas/"
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            name[len(prefix) :]: archive.read(name)
            for name in archive.namelist()
            if name.startswith(prefix)
        }
    source = {
        str(path.relative_to(ROOT / "schemas")): path.read_bytes()
        for path in (ROOT / "schemas").rglob("*")
        if path.is_file()
    }
    assert "fill.avsc" in source and "earlier/cycle_outcome.1.avsc" in source
    assert shipped == source
    assert (ROOT / "src/portfolio_tx/wire/schemas").is_symlink()
