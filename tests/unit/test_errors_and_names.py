"""One error tree, as errors.py draws it, and the public names pinned."""

from __future__ import annotations

import importlib
import pkgutil
import re

import portfolio_tx
import portfolio_tx.errors as errors
from portfolio_tx.errors import PortfolioTxError

PUBLIC = [
    "BatchResult", "ConcurrentModificationError", "ConfigError", "CostBasis", "Decision",
    "DecodeError", "DiscardReason", "KafkaSetupError", "OutcomeKind", "PnlKind",
    "PortfolioState", "PortfolioTransaction", "PortfolioTxError", "Position",
    "RedisStateStore", "RetriedCommit", "RetriesExhaustedError", "Savepoint", "Side",
    "StagedCash", "StagedLotBook", "StagedPosition", "StagedRealizedPnl", "StateLostError",
    "StateStore", "StateStoreError", "TransactionBatch", "TransactionMetrics",
    "TransactionStateError", "ValidationError", "commit_with_retries", "portfolio_batch",
    "portfolio_transaction",
]  # fmt: skip


def _every_module() -> list[object]:
    names = [m.name for m in pkgutil.walk_packages(portfolio_tx.__path__, "portfolio_tx.")]
    return [importlib.import_module(name) for name in names if not name.endswith("__main__")]


def _drawn_tree() -> dict[str, str]:
    """child -> parent, from the tree in errors.py's docstring."""
    assert errors.__doc__ is not None
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        found = re.match(r"^[\s│├└─]*([A-Z]\w+)(\s|$)", line)
        if not found or not (line.strip() == "PortfolioTxError" or "── " in line):
            continue
        depth = found.start(1)
        name = found.group(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_public_names_are_pinned() -> None:
    assert sorted(portfolio_tx.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(portfolio_tx, name) is not None


def test_every_exception_the_package_defines_is_in_the_one_tree() -> None:
    defined = {
        cls
        for module in _every_module()
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, BaseException)
        and cls.__module__.startswith("portfolio_tx")
        and not cls.__name__.startswith("_")
    }
    assert len(defined) >= 15
    outside = sorted(c.__name__ for c in defined if not issubclass(c, PortfolioTxError))
    assert outside == []
    drawn = _drawn_tree()
    for cls in defined - {PortfolioTxError}:
        assert drawn.get(cls.__name__) == cls.__base__.__name__, cls
    assert set(drawn) == {c.__name__ for c in defined} - {"PortfolioTxError"}


def test_encoding_and_decoding_errors_are_siblings() -> None:
    assert not issubclass(errors.EncodeError, errors.DecodeError)
    assert issubclass(errors.EncodeError, errors.RecordError)
    assert issubclass(errors.DecodeError, errors.RecordError)
