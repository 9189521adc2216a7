"""The layers of ADR 0001 hold: no module imports one above it, and no import cycle.

base modules (agentos/core, agentos/*.py) < llm, tracker < keys < workflows < workflows.parallel < runs < cli
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.cli import ROOT

PACKAGE = ROOT / "src" / "agentos"


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[:2] == ["agentos", "cli"]:
        return 6
    if parts[:2] == ["agentos", "runs"]:
        return 5
    if parts[:3] == ["agentos", "workflows", "parallel"]:
        return 4
    if parts[:2] == ["agentos", "workflows"]:
        return 3
    if parts[:2] == ["agentos", "keys"]:
        return 2
    if parts[:2] in (["agentos", "llm"], ["agentos", "tracker"]):
        return 1
    return 0


def _module(path: Path) -> str:
    return ".".join(("agentos", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        found: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {  # `if TYPE_CHECKING:` imports never run: no cycle at import time
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agentos"):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("agentos")]
            found |= {n for n in names if n in modules}
        graph[_module(path)] = found
    return graph


def test_no_import_runs_back_up_a_layer() -> None:
    upward = sorted(
        (module, target)
        for module, targets in _imports().items()
        for target in targets
        if _layer(target) > _layer(module)
    )
    assert upward == []


def test_no_import_cycle_between_modules() -> None:
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target == module or target == module.rsplit(".", 1)[0]:
                continue  # a package's own __init__ re-exports
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else [module, target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
