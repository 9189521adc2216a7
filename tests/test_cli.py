"""The real CLI, end to end, on temp copies of the demo with AGENTOS_HOME in a temp dir."""

import json
import re
from pathlib import Path

import pytest

from agentos.core.events import read_audit
from tests.helpers.cli import issue_flags, run_cli, run_dirs

pytestmark = pytest.mark.timeout(120)
PREFIXED = re.compile(r"^\[(COORDINATOR|LLD-\d+|ISSUE-[\w-]+)\] ")
PROGRESS = re.compile(r"^\[[=> ]{10}\] \d+/\d+ workflows complete$")
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ")  # ISO 8601, local offset


def test_lld_all_parallel_end_to_end(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock", home=home
    )
    assert result.returncode == 1, result.stderr  # LLD-9 has an invalid spec
    assert result.stderr == "", "nothing may bypass the prefixed console"
    out = result.stdout
    assert "[COORDINATOR] 11 pending issues, parallelism 3, logs in" in out
    assert "[LLD-9] FAILED: Invalid spec format (issue has no body)" in out
    assert "[LLD-42] >>> Executing: N1_design" in out
    assert "[COORDINATOR] Summary: 9 approved, 1 need revision, 1 failed (LLD-9)" in out
    body, _, table = out.partition("[COORDINATOR] Summary:")
    for line in body.splitlines():
        assert PREFIXED.match(line) or PROGRESS.match(line), line
    assert PROGRESS.match("[==========] 11/11 workflows complete")
    assert "[==========] 11/11 workflows complete" in out
    assert "LLD-21" in table and "need revision" in table

    (run_dir,) = run_dirs(home)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["totals"] == {
        "approved": 9,
        "needs_revision": 1,
        "failed": 1,
        "interrupted": 0,
        "not_started": 0,
        "skipped": 0,
        "total": 11,
    }
    assert summary["exit_code"] == 1
    by_item = {i["item"]: i for i in summary["items"]}
    assert by_item["LLD-12"]["rounds"] == 3 and by_item["LLD-9"]["error"].startswith("Invalid spec format")
    assert (run_dir / "coordinator.log").read_text().count("[COORDINATOR]") >= 3
    log = (run_dir / "LLD-42.log").read_text()
    assert STAMPED.match(log) and log.split(" ", 1)[1].startswith(">>> Worker process "), log[:200]
    assert ">>> Executing: N0_load_issue" in log
    assert "[LLD-42]" not in log and "APPROVED after 2 review round(s)" in log
    audit = read_audit(run_dir / "workflow-audit-42.jsonl")
    assert audit[0]["event"] == "workflow_start" and audit[-1]["event"] == "workflow_complete"
    # DBs: deleted after success, and after an input that can never pass (LLD-9).
    assert list((home / "checkpoints").rglob("*.db")) == []
    assert (demo / "docs/lld/active/LLD-042.md").exists()
    assert "NEEDS REVISION" in (demo / "docs/lld/active/LLD-021.md").read_text()

    again = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock", home=home
    )
    assert "[COORDINATOR] 2 pending issues" in again.stdout  # LLD-9 and LLD-21 only
    assert "Resuming from checkpoints first" not in again.stdout  # nothing is kept for LLD-9
    assert "[LLD-9] FAILED: Invalid spec format (issue has no body); unchanged since" in again.stdout


def test_parallel_runs_overlap(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(3, 8, 17),
        "--parallel",
        "3",
        "--provider",
        "mock",
        home=home,
        AGENTOS_MOCK_LATENCY="0.4",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = run_dirs(home)
    spans = []
    for key in ("3", "8", "17"):
        events = read_audit(run_dir / f"workflow-audit-{key}.jsonl")
        spans.append((events[0]["epoch_s"], events[-1]["epoch_s"]))
    latest_start = max(s for s, _ in spans)
    earliest_end = min(e for _, e in spans)
    assert latest_start < earliest_end, "all three items were running at the same time"


def test_sequential_all_is_parallel_one(demo: Path, home: Path) -> None:
    for flags in (["--parallel", "1"], ["--force"]):  # the first run approved them: --force redoes
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            *issue_flags(3, 8),
            *flags,
            "--provider",
            "mock",
            home=home,
        )
        assert result.returncode == 0
        assert "[COORDINATOR] 2 pending issues, parallelism 1" in result.stdout


def test_parallel_flag_edge_values(demo: Path, home: Path) -> None:
    zero = run_cli("lld-workflow", "--repo", str(demo), "--all", "--parallel", "0", home=home)
    assert zero.returncode == 2 and "--parallel must be a positive number" in zero.stderr
    negative = run_cli("lld-workflow", "--repo", str(demo), "--all", "--parallel", "-2", home=home)
    assert negative.returncode == 2
    capped = run_cli("lld-workflow", "--repo", str(demo), "--all", "--parallel", "25", "--dry-run", home=home)
    assert capped.returncode == 0
    assert "[COORDINATOR] Warning: parallelism 25 capped at 10" in capped.stdout
    default = run_cli("lld-workflow", "--repo", str(demo), "--all", "--parallel", "--dry-run", home=home)
    assert "parallelism 3" in default.stdout


def test_dry_run_creates_nothing(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--dry-run", "--provider", "mock", home=home
    )
    assert result.returncode == 0
    assert "Dry run mode: 11 pending issues" in result.stdout
    assert "[COORDINATOR]   LLD-42: would start fresh" in result.stdout
    assert not home.exists()
    assert not (demo / "docs/lld/active/LLD-042.md").exists()


def test_single_issue_and_exit_codes(demo: Path, home: Path) -> None:
    ok = run_cli("lld-workflow", "--repo", str(demo), "--issue", "42", "--provider", "mock", home=home)
    assert ok.returncode == 0, ok.stderr
    assert ">>> Executing: N3_finalize" in ok.stdout and (demo / "docs/lld/active/LLD-042.md").exists()
    (run_dir,) = run_dirs(home)  # a single item's run has its run folder too (issue 19 finding 9)
    assert (run_dir / "workflow-audit-42.jsonl").exists() and (run_dir / "LLD-42.log").exists()
    bad = run_cli("lld-workflow", "--repo", str(demo), "--issue", "9", "--provider", "mock", home=home)
    assert bad.returncode == 1 and "FAILED: Invalid spec format (issue has no body)" in bad.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--issue", "../etc/passwd"], "Invalid identifier '../etc/passwd': path traversal"),
        (["--issue", "/abs"], "absolute paths not allowed"),
        (["--issue", "999"], "issue '999' not found"),
        (["--issue", "abc"], "positive issue number"),
        ([], "nothing to do"),
        (["--all", "--provider", "nope"], "unknown provider"),
    ],
)
def test_bad_input_is_exit_2_with_a_clear_message(
    demo: Path, home: Path, args: list[str], message: str
) -> None:
    result = run_cli("lld-workflow", "--repo", str(demo), *args, home=home)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_credentials_file_is_exit_2(demo: Path, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "gemini-credentials.json").write_text('{"credentials": [{"name": "a", "key": ')
    result = run_cli("lld-workflow", "--repo", str(demo), "--all", "--provider", "gemini", home=home)
    assert result.returncode == 2
    assert "gemini-credentials.json" in result.stderr and "not valid JSON" in result.stderr


def test_bad_settings_file_is_exit_2(demo: Path, home: Path) -> None:
    (demo / "agentos.toml").write_text("parallelism = 3\n")
    result = run_cli("lld-workflow", "--repo", str(demo), "--all", home=home)
    assert result.returncode == 2 and "unknown setting 'parallelism'" in result.stderr


def test_issue_workflow_all_parallel_files_unique_issues(demo: Path, home: Path) -> None:
    result = run_cli(
        "issue-workflow", "--repo", str(demo), "--all", "--parallel", "--provider", "mock", home=home
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[COORDINATOR] 5 pending briefs, parallelism 3" in result.stdout
    assert "[ISSUE-usage-dashboard] >>> Executing: N3_file" in result.stdout
    new = sorted(int(p.stem) for p in (demo / "issues").glob("*.md") if int(p.stem) > 42)
    assert new == [43, 44, 45, 46, 47]
    assert sorted(p.name for p in (demo / "ideas/done").glob("*.md")) == sorted(
        ["offline-mode.md", "slack-alerts.md", "api-keys-rotation.md", "usage-dashboard.md", "csv-import.md"]
    )
    (run_dir,) = run_dirs(home)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert sorted(i["filed_issue"] for i in summary["items"]) == new


def test_issue_workflow_single_brief_by_path(demo: Path, home: Path) -> None:
    result = run_cli(
        "issue-workflow", "--repo", str(demo), "--brief", "ideas/active/csv-import.md", home=home
    )
    assert result.returncode == 0, result.stderr
    assert (demo / "ideas/done/csv-import.md").exists()
    missing = run_cli("issue-workflow", "--repo", str(demo), "--brief", "ideas/active/nope.md", home=home)
    assert missing.returncode == 2 and "brief 'nope' not found" in missing.stderr


def test_help_documents_flags_and_exit_codes(home: Path) -> None:
    for command in ("lld-workflow", "issue-workflow"):
        result = run_cli(command, "--help", home=home)
        assert result.returncode == 0
        for flag in ("--all", "--parallel", "--dry-run", "--fresh", "--provider", "--no-wait", "Exit codes"):
            assert flag in result.stdout


def test_label_help_is_each_commands_own(home: Path) -> None:
    lld = " ".join(run_cli("lld-workflow", "--help", home=home).stdout.split())
    issue = " ".join(run_cli("issue-workflow", "--help", home=home).stdout.split())
    assert "Design only GitHub issues that carry this label" in lld and "filed issue" not in lld
    assert "labels to put on each filed issue" in issue and "Design only" not in issue


@pytest.mark.parametrize(("name", "cause"), [("has space", "invalid characters"), ("../x", "path traversal")])
def test_a_bad_brief_name_says_what_is_allowed(demo: Path, home: Path, name: str, cause: str) -> None:
    result = run_cli("issue-workflow", "--repo", str(demo), "--brief", name, "--provider", "mock", home=home)
    assert result.returncode == 2
    assert f"--brief {name!r}: {cause}; a brief's name is letters, digits, - or _, then .md" in result.stderr
