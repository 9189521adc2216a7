"""The rooms of ADR 0010 hold: no module imports one above it, and no import cycle.

core < llm, tracker < backend < keys < workflows < engine < runs < dashboard < cli

The engine and the workflows are siblings: the engine ranks above the workflows but
imports nothing from them (the item runner is injected, by name), and the workflows know
nothing of the engine. A module named in a string ("agentos.x.y", "agentos.x:func": the
fork server's preload list, a runner reference, a lazy import) counts as an import.
`agentos.workflows.parallel` is the seed's contract: a face that only re-exports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers.cli import ROOT

PACKAGE = ROOT / "src" / "agentos"


FACES = "agentos.workflows.parallel"
STRING_MODULE = re.compile(r"^(agentos(?:\.\w+)+)(?::\w+)?$")


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[:2] == ["agentos", "cli"]:
        return 8
    if parts[:2] == ["agentos", "dashboard"]:
        return 7
    if parts[:2] == ["agentos", "runs"]:
        return 6
    if parts[:2] == ["agentos", "engine"] or module.startswith(FACES):
        return 5
    if parts[:2] == ["agentos", "workflows"]:
        return 4
    if parts[:2] == ["agentos", "keys"]:
        return 3
    if parts[:2] == ["agentos", "backend"]:
        return 2
    if parts[:2] in (["agentos", "llm"], ["agentos", "tracker"]):
        return 1
    return 0


def _module(path: Path) -> str:
    return ".".join(("agentos", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def _imports(strings: bool = False) -> dict[str, set[str]]:
    """Each module's imports of agentos modules; with `strings`, modules named in strings too."""
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
            if strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
                named = STRING_MODULE.match(node.value)
                names = [named.group(1)] if named else []
            found |= {n for n in names if n in modules}
        graph[_module(path)] = found
    return graph


def test_no_import_runs_back_up_a_layer() -> None:
    upward = sorted(
        (module, target)
        for module, targets in _imports(strings=True).items()
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


def test_the_engine_imports_nothing_from_workflows_runs_or_cli() -> None:
    """The item runner is injected: the engine runs any item, and knows none."""
    above = ("agentos.workflows", "agentos.runs", "agentos.cli")
    reached = sorted(
        (module, target)
        for module, targets in _imports(strings=True).items()
        if module.startswith("agentos.engine")
        for target in targets
        if target.startswith(above)
    )
    assert reached == []
    assert "agentos.engine" in {m.rsplit(".", 1)[0] for m in _imports()}  # the room exists


def test_the_workflows_know_nothing_of_the_engine() -> None:
    reached = sorted(
        (module, target)
        for module, targets in _imports(strings=True).items()
        if module.startswith("agentos.workflows") and not module.startswith(FACES)
        for target in targets
        if target.startswith(("agentos.engine", "agentos.runs", "agentos.cli"))
    )
    assert reached == []


def test_the_seeds_contract_paths_are_faces_that_only_re_export() -> None:
    faces = [
        PACKAGE / "workflows" / "parallel" / "__init__.py",
        PACKAGE / "workflows" / "parallel" / "coordinator.py",
    ]
    assert sorted(p.name for p in (PACKAGE / "workflows" / "parallel").glob("*.py")) == [
        "__init__.py",
        "coordinator.py",
    ]
    for face in faces:
        body = ast.parse(face.read_text(encoding="utf-8")).body
        kinds = {type(node).__name__ for node in body}
        assert kinds <= {"Expr", "ImportFrom", "Assign"}, face  # docstring, imports, __all__
        assigned = [
            t.id
            for node in body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        ]
        assert assigned == ["__all__"], face


def test_a_string_import_counts() -> None:
    """The guard sees the fork server's preload list and runner references, not only imports."""
    assert STRING_MODULE.match("agentos.workflows.item_execution:run_in_worker")
    assert STRING_MODULE.match("agentos.cli.lld")
    assert not STRING_MODULE.match("agentos is great")
    named = _imports(strings=True)["agentos.runs.batch"]
    assert "agentos.workflows.item_execution" in named
    assert "agentos.workflows.item_execution" not in _imports()["agentos.runs.batch"]


def test_the_faces_hand_out_the_engines_own_classes() -> None:
    import agentos.workflows.parallel as face
    import agentos.workflows.parallel.coordinator as face_coordinator
    from agentos.engine import coordinator, output_prefixer
    from agentos.keys.pool import CredentialCoordinator

    assert face.ParallelCoordinator is coordinator.ParallelCoordinator
    assert face.OutputPrefixer is output_prefixer.OutputPrefixer
    assert face.CredentialCoordinator is CredentialCoordinator
    assert face_coordinator.WorkflowResult is coordinator.WorkflowResult
    assert face_coordinator.ProgressStats is coordinator.ProgressStats
    assert callable(face.sanitize_identifier)
