"""The layering of src/portfolio_tx, as a test: the layers declared in pyproject.toml (the
one declaration ``lint-imports`` also checks) hold, and no modules import each other in a
loop. Each check is first shown to catch a planted violation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return contract


def _layers() -> tuple[grimp.Layer, ...]:
    return tuple(
        grimp.Layer(*(name.strip() for name in line.split("|")), independent=True)
        for line in _contract()["layers"]
    )


def _violations(graph: grimp.ImportGraph) -> set[tuple[str, str]]:
    found = graph.find_illegal_dependencies_for_layers(
        layers=_layers(), containers={"portfolio_tx"}
    )
    return {(d.importer, d.imported) for d in found}


def _cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("portfolio_tx")


def test_every_package_is_in_a_layer(graph: grimp.ImportGraph) -> None:
    declared = {n.strip() for line in _contract()["layers"] for n in line.split("|")}
    children = {m.split(".")[1] for m in graph.find_children("portfolio_tx")}
    assert children - declared == set(_contract()["exhaustive_ignores"])


def test_no_import_runs_up_a_layer_or_across_independent_ones(graph: grimp.ImportGraph) -> None:
    assert _violations(graph) == set()


def test_the_layer_check_catches_an_adapter_importing_the_worker(
    graph: grimp.ImportGraph,
) -> None:
    planted = grimp.build_graph("portfolio_tx")  # a graph of its own to plant in
    planted.add_import(importer="portfolio_tx.kafka.mark_feed", imported="portfolio_tx.worker.loop")
    planted.add_import(importer="portfolio_tx.sim.upstream", imported="portfolio_tx.audit.verify")
    assert _violations(planted) == {
        ("portfolio_tx.kafka", "portfolio_tx.worker"),
        ("portfolio_tx.sim", "portfolio_tx.audit"),
    }


def test_no_modules_import_each_other_in_a_loop(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_the_loop_check_catches_a_planted_circle(graph: grimp.ImportGraph) -> None:
    planted = grimp.build_graph("portfolio_tx")  # a graph of its own to plant in
    planted.add_import(importer="portfolio_tx.worker.health", imported="portfolio_tx.worker.loop")
    (circle,) = _cycles(planted)
    assert {"portfolio_tx.worker.health", "portfolio_tx.worker.loop"} <= circle
