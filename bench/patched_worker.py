"""Run ``portfolio-tx`` with candidate optimisations from ``patches.py`` installed.

    python bench/patched_worker.py marks1,redis1 worker
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import patches  # noqa: E402

from portfolio_tx.commands.cli import main  # noqa: E402

if __name__ == "__main__":
    patches.apply(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
