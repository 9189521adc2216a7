"""Property: across workspaces sharing one home and any interrupt points, each workspace's
final designs equal its own uninterrupted reference."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentos.core.outcome import ItemStatus
from agentos.core.paths import checkpoint_db_path
from agentos.core.stop_flag import StopFlag
from agentos.keys.sources import Credential
from agentos.workflows.item import ItemJob, WorkflowKind
from agentos.workflows.item_execution import run_item
from tests.helpers.cli import DEMO

pytestmark = pytest.mark.timeout(600)
MOCK = {"mock": Credential("mock-key-1", "mock-fake-secret-1", "mock")}
ITEMS = ("3", "42")  # 42 needs one revision: more interrupt points
WORKSPACES = ("A", "B")


def make_workspaces(root: Path) -> dict[str, Path]:
    spaces = {}
    for name in WORKSPACES:
        ws = root / name
        shutil.copytree(DEMO, ws)
        for key in ITEMS:  # each workspace's issues differ, so a mix-up shows in the design
            issue = ws / "issues" / f"{key}.md"
            issue.write_text(issue.read_text().replace("# ", f"# [{name}] ", 1))
        spaces[name] = ws
    return spaces


def run(ws: Path, key: str, stop_after: int | None = None) -> ItemStatus:
    """Run one item in-process; with `stop_after`, stop once that many nodes have started."""
    stop = StopFlag()
    started = 0

    class Counting:
        def line(self, line: str) -> None:
            nonlocal started
            if line.startswith(">>> Executing:"):
                started += 1
                if stop_after is not None and started >= stop_after:
                    stop.set("test interrupt")

    job = ItemJob(
        kind=WorkflowKind.LLD,
        key=key,
        workspace=str(ws),
        db_path=str(checkpoint_db_path("lld_workflow", key, ws)),
        audit_path=str(ws.parent / f"audit-{ws.name}-{key}.jsonl"),
        drafter="mock",
        reviewer="mock",
    )
    return run_item(job, stop=stop, credentials=MOCK, console=Counting()).status


def designs(ws: Path) -> dict[str, str]:
    return {key: (ws / f"docs/lld/active/LLD-{int(key):03d}.md").read_text() for key in ITEMS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    # Module-scoped, so it runs before the autouse `home` fixture: its own temp home, set and
    # undone by a MonkeyPatch of its own.
    root = tmp_path_factory.mktemp("agentos-ref")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AGENTOS_HOME", str(root / "home"))
        env.setenv("AGENTOS_MOCK_LATENCY", "0.005")
        spaces = make_workspaces(root)
        for ws in spaces.values():
            for key in ITEMS:
                assert run(ws, key) is ItemStatus.APPROVED
        yield {name: designs(ws) for name, ws in spaces.items()}


steps = st.lists(
    st.tuples(st.sampled_from(WORKSPACES), st.sampled_from(ITEMS), st.integers(min_value=1, max_value=6)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_each_workspace_gets_its_own_designs(
    plan: list[tuple[str, str, int]],
    reference: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("agentos-prop")  # one per example: tmp_path is per test
    try:
        monkeypatch.setenv("AGENTOS_HOME", str(root / "shared-home"))  # one home for both workspaces
        monkeypatch.setenv("AGENTOS_MOCK_LATENCY", "0.005")
        spaces = make_workspaces(root)
        for name, key, stop_after in plan:
            run(spaces[name], key, stop_after)
        for name, ws in spaces.items():
            for key in ITEMS:  # finish; an item approved during the plan is skipped as done
                assert run(ws, key) in (ItemStatus.APPROVED, ItemStatus.SKIPPED)
            assert designs(ws) == reference[name], (name, plan)
        assert not list((root / "shared-home").rglob("*.db")), "every DB is deleted after success"
    finally:
        shutil.rmtree(root, ignore_errors=True)
