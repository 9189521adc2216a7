"""An input that can never pass keeps no checkpoint and is not run again until it changes
(issue 19, finding 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentos.core.events import read_audit
from tests.helpers.cli import kept_db, run_cli

pytestmark = pytest.mark.timeout(180)


def _events(home: Path) -> list[str]:
    return [str(r.get("event")) for a in sorted(home.rglob("*.jsonl")) for r in read_audit(a)]


def test_an_invalid_issue_keeps_no_checkpoint_and_waits_for_its_file_to_change(
    demo: Path, home: Path
) -> None:
    args = ["--repo", str(demo), "--issue", "9", "--issue", "3", "--parallel", "2", "--provider", "mock"]
    first = run_cli("lld-workflow", *args, home=home)
    assert first.returncode == 1, first.stdout
    assert "[LLD-9] FAILED: Invalid spec format (issue has no body)" in first.stdout
    assert not kept_db(home, demo, 9).exists(), "an input that can never pass keeps no checkpoint"
    assert (demo / ".agentos" / "invalid" / "lld_workflow_9.json").is_file()

    again = run_cli("lld-workflow", *args, home=home)
    assert again.returncode == 1, "still invalid: the run still says so with its exit code"
    assert "Invalid spec format (issue has no body); unchanged since" in again.stdout
    assert "so not run again. Fix issues/9.md to retry." in again.stdout
    assert "[LLD-9] >>> Resuming" not in again.stdout and not kept_db(home, demo, 9).exists()

    dry = run_cli("lld-workflow", "--repo", str(demo), "--all", "--dry-run", "--provider", "mock", home=home)
    assert "LLD-9: would fail: Invalid spec format (issue has no body); unchanged since" in dry.stdout

    (demo / "issues" / "9.md").write_text("# Dark mode for the dashboard\n\nAdd a dark theme toggle.\n")
    fixed = run_cli("lld-workflow", *args, home=home)
    assert fixed.returncode == 0, fixed.stdout
    assert "Summary: 1 approved" in fixed.stdout, fixed.stdout
    assert not (demo / ".agentos" / "invalid" / "lld_workflow_9.json").exists()


def test_a_still_invalid_issue_is_not_run_at_all(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), "--issue", "9", "--provider", "mock"]
    run_cli("lld-workflow", *args, home=home)
    assert "node_start" in _events(home)  # the first run validated it in its first node
    for audit in home.rglob("*.jsonl"):
        audit.unlink()
    again = run_cli("lld-workflow", *args, home=home)
    assert again.returncode == 1 and "unchanged since" in again.stdout + again.stderr
    assert "node_start" not in _events(home) and "workflow_start" not in _events(home)


def test_force_runs_a_known_invalid_issue_again(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), "--issue", "9", "--provider", "mock"]
    run_cli("lld-workflow", *args, home=home)
    forced = run_cli("lld-workflow", *args, "--force", home=home)
    assert forced.returncode == 1
    assert "FAILED: Invalid spec format (issue has no body)" in forced.stdout + forced.stderr
    assert "unchanged since" not in forced.stdout + forced.stderr


@pytest.mark.parametrize(
    ("command", "path", "item", "message"),
    [
        ("lld-workflow", "issues/9.md", ["--issue", "9"], "Invalid spec format (issue is empty)"),
        (
            "issue-workflow",
            "ideas/active/empty.md",
            ["--brief", "empty"],
            "Invalid spec format (brief is empty)",
        ),
    ],
)
def test_an_empty_file_says_empty(
    demo: Path, home: Path, command: str, path: str, item: list[str], message: str
) -> None:
    (demo / path).write_text("\n  \n")
    result = run_cli(command, "--repo", str(demo), *item, "--provider", "mock", home=home)
    assert result.returncode == 1
    assert message in result.stdout + result.stderr
