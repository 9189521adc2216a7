"""One console object, passed in: the coordinator's lines go where it is told, and nothing in a
batch's coordinator swaps `sys.stdout` to reach the parts that speak."""

from __future__ import annotations

import ast

import pytest

from agentos.core.printing import Lines
from agentos.engine.coordinator import ParallelCoordinator
from agentos.keys.pool import CredentialCoordinator
from agentos.llm.errors import RateLimited
from tests.helpers.cli import ROOT

PACKAGE = ROOT / "src" / "agentos"
# Who may still assign sys.stdout, and why: the process-wide guard for closed fds, a worker
# process pointing its own output at its pipe, and a single in-process item catching what
# third-party code prints (a batch's worker processes do that with fds 1 and 2).
ALLOWED = {"core/std_streams.py", "engine/worker.py", "runs/single.py"}


def test_only_the_known_places_assign_sys_stdout() -> None:
    assigning = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            if any(ast.unparse(t) == "sys.stdout" for t in flat):
                assigning.add(path.relative_to(PACKAGE).as_posix())
    assert assigning == ALLOWED


def test_the_coordinator_and_the_pool_say_everything_to_the_console_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = Lines()
    pool = CredentialCoordinator(["sk-a-0123456789", "sk-b-0123456789"], console=lines)
    coordinator = ParallelCoordinator(12, pool, console=lines)  # over the cap: a warning

    def work(item: str, key: object) -> str:
        if item == "first":
            pool.report(key, RateLimited(0.01))  # a cool-down the pool announces
        return "done"

    coordinator.execute_parallel(["first", "second"], work, str)
    assert any("capped at" in line for line in lines)
    assert any("rate-limited; cooling down" in line for line in lines), lines
    assert capsys.readouterr().out == ""  # nothing went around it
