"""What an operator of batch runs expects, through the real CLI: --version, -q/-v,
--fail-fast, counts and grammar, interrupted rows, shell completion, and `agentos`
runs/show over run folders written by real runs."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agentos import __version__
from tests.helpers.cli import cli_env, issue_flags, run_cli, run_dirs
from tests.helpers.live_run import LiveRun, kill_all

pytestmark = pytest.mark.timeout(150)
BIN = Path(sys.executable).parent


def agentos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home),
        check=False,
    )


def test_version_on_every_command(home: Path) -> None:
    for command in ("lld-workflow", "issue-workflow"):
        result = run_cli(command, "--version", home=home)
        assert result.returncode == 0 and f"(agentos {__version__})" in result.stdout
    result = agentos(home, "--version")
    assert result.returncode == 0 and f"(agentos {__version__})" in result.stdout


def test_one_pending_issue_is_singular(demo: Path, home: Path) -> None:
    dry = run_cli("lld-workflow", "--repo", str(demo), "--issue", "3", "--dry-run", home=home)
    assert "Dry run mode: 1 pending issue, parallelism 1" in dry.stdout, dry.stdout  # before it is approved
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(3),
        "--parallel",
        "2",
        "--provider",
        "mock",
        home=home,
    )
    assert result.returncode == 0, result.stdout
    assert "[COORDINATOR] 1 pending issue, parallelism 2" in result.stdout


@pytest.mark.parametrize("flags", [["--parallel", "-2"], ["--parallel=-2"]])
def test_negative_parallel_is_a_clear_usage_error(demo: Path, home: Path, flags: list[str]) -> None:
    result = run_cli("lld-workflow", "--repo", str(demo), "--all", *flags, home=home)
    assert result.returncode == 2
    assert "--parallel must be a positive number, got -2" in result.stderr
    assert "No such option" not in result.stderr


def test_quiet_shows_coordinator_failures_and_summary_logs_keep_all(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock", "-q", home=home
    )
    assert result.returncode == 1, result.stdout + result.stderr
    body, _, table = result.stdout.partition("[COORDINATOR] Summary:")
    for line in body.splitlines():
        assert (
            line.startswith("[COORDINATOR]")
            or line == "[LLD-9] FAILED: Invalid spec format (issue has no body)"
        ), line
    assert "[LLD-9] FAILED" in body and "workflows complete" not in result.stdout
    assert "LLD-42" in table and "approved" in table
    (run_dir,) = run_dirs(home)
    assert ">>> Executing: N1_design" in (run_dir / "LLD-42.log").read_text()
    assert "[LLD-42] >>> Executing: N1_design" in (run_dir / "coordinator.log").read_text()
    both = run_cli("lld-workflow", "--repo", str(demo), "--all", "-q", "-v", home=home)
    assert both.returncode == 2 and "not both" in both.stderr


def test_verbose_adds_a_line_per_item_start_and_end(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(3, 5),
        "--parallel",
        "2",
        "--provider",
        "mock",
        "-v",
        home=home,
    )
    assert result.returncode == 0, result.stdout
    assert re.search(r"^\[COORDINATOR\] Started LLD-3 \(\d running\); log .*LLD-3\.log$", result.stdout, re.M)
    assert re.search(r"^\[COORDINATOR\] Finished LLD-5: approved, 2 review round\(s\), ", result.stdout, re.M)
    single = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "8", "--provider", "mock", "-v", home=home
    )
    assert "[COORDINATOR] LLD-8: keys mock mock-key-" in single.stdout and "checkpoint DB" in single.stdout


def test_quiet_single_item_run_prints_only_its_outcome(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "8", "--provider", "mock", "-q", home=home
    )
    assert result.returncode == 0
    assert ">>> Executing" not in result.stdout and "APPROVED after 1 review round(s)" in result.stdout


def test_fail_fast_then_runs_and_show_read_the_real_run_folders(demo: Path, home: Path) -> None:
    fast = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(9, 3, 42),
        "--parallel",
        "1",
        "--provider",
        "mock",
        "--fail-fast",
        home=home,
    )
    assert fast.returncode == 1, fast.stdout
    out = fast.stdout
    assert "[COORDINATOR] Stopping early: --fail-fast: LLD-9 failed." in out
    assert "[LLD-3] >>> Worker process" not in out
    assert "Summary: 0 approved, 0 need revision, 1 failed (LLD-9), 2 not started (LLD-3, LLD-42)" in out
    assert "not started: --fail-fast: LLD-9 failed" in out
    (first,) = run_dirs(home)
    data = json.loads((first / "summary.json").read_text())
    assert data["stopped_early"] == "--fail-fast: LLD-9 failed" and data["exit_code"] == 1
    assert data["workspace"] == str(demo.resolve())

    ok = run_cli(
        "issue-workflow", "--repo", str(demo), "--all", "--parallel", "--provider", "mock", home=home
    )
    assert ok.returncode == 0, ok.stdout
    second = next(d for d in run_dirs(home) if d != first)

    runs = agentos(home, "runs")
    assert runs.returncode == 0, runs.stderr
    lines = [line for line in runs.stdout.splitlines() if str(home) in line]
    assert len(lines) == 2 and str(second) in lines[0] and str(first) in lines[1]  # newest first
    assert "issue-workflow" in lines[0] and "5: 5 approved" in lines[0] and re.search(r"\s0\s", lines[0])
    assert (
        "lld-workflow" in lines[1]
        and "1 failed, 2 not started" in lines[1]
        and str(demo.resolve()) in lines[1]
    )

    latest = agentos(home, "show")
    assert latest.returncode == 0, latest.stderr
    assert f"Run {second.name}: issue-workflow" in latest.stdout and "Summary: 5 approved" in latest.stdout
    named = agentos(home, "show", first.name)
    assert "Stopped early: --fail-fast: LLD-9 failed" in named.stdout
    assert "Summary: 0 approved, 0 need revision, 1 failed (LLD-9), 2 not started" in named.stdout
    assert re.search(r"LLD-42\s+not started\s+\u2013\s+\u2013", named.stdout)  # never ran: no 0  0.0s


@pytest.mark.parametrize(("sig", "label"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl+C")])
def test_interrupted_items_are_counted_apart_with_their_rounds(
    demo: Path, home: Path, sig: signal.Signals, label: str
) -> None:
    args = ["--repo", str(demo), *issue_flags(12, 3), "--parallel", "2", "--provider", "mock"]
    run = LiveRun("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="0.7")
    try:
        run.wait_for(r"^\[LLD-12\]     Review round 1: REVISE")  # one review round completed
        run.signal_group(sig)
        code = run.wait(timeout=30)
    finally:
        kill_all(run)
    assert code == 130, run.output
    out = run.output
    assert re.search(r"^\[[=> ]{10}\] [01]/2 workflows complete, [12] interrupted$", out, re.M), out
    (run_dir,) = run_dirs(home)
    items = {i["item"]: i for i in json.loads((run_dir / "summary.json").read_text())["items"]}
    assert items["LLD-12"]["status"] == "interrupted"
    assert items["LLD-12"]["rounds"] == 1
    assert items["LLD-12"]["error"].startswith(f"interrupted ({label})")
    assert re.search(rf"LLD-12\s+interrupted\s+1\s+.*interrupted \({re.escape(label)}\)", out)
    assert "signal 15" not in out


def test_shell_completion_from_the_installed_scripts(home: Path) -> None:
    for command, var in (
        ("lld-workflow", "_LLD_WORKFLOW_COMPLETE"),
        ("issue-workflow", "_ISSUE_WORKFLOW_COMPLETE"),
        ("agentos", "_AGENTOS_COMPLETE"),
    ):
        script = BIN / command
        assert script.exists(), f"{script}: run `pip install -e .` (scripts/test.sh does)"
        result = subprocess.run(
            [str(script)],
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(home, **{var: "bash_source"}),
        )
        assert result.returncode == 0 and "complete -o nosort -F" in result.stdout, (
            result.stdout + result.stderr
        )


@pytest.mark.timeout(120)
def test_the_default_console_shows_each_item_start_end_and_failure_only(demo: Path, home: Path) -> None:
    """Issue 19 finding 7: PIDs, checkpoint paths and per-call lines are -v; the logs keep them."""
    args = ["--repo", str(demo), *issue_flags(3, 5, 9, 12), "--parallel", "2", "--provider", "mock"]
    result = run_cli("lld-workflow", *args, home=home, verbose=False)
    out = result.stdout
    assert result.returncode == 1, out
    for item in ("LLD-3", "LLD-5", "LLD-9", "LLD-12"):
        assert f"[{item}] started" in out
    assert (
        "[LLD-3] APPROVED after" in out and "[LLD-9] FAILED: Invalid spec format (issue has no body)" in out
    )
    for noise in (
        "Worker process",
        "checkpoint DB",
        "LLM call",
        ">>> Executing",
        "Review round",
        "429s per key",
    ):
        assert noise not in out, noise
    (run_dir,) = run_dirs(home)
    log = (run_dir / "LLD-3.log").read_text()
    assert ">>> Worker process" in log and "LLM call: drafter" in log and ">>> Executing: N1_design" in log
    assert "[LLD-3] >>> Executing: N1_design" in (run_dir / "coordinator.log").read_text()
    item_lines = [line for line in out.splitlines() if line.startswith("[LLD-")]
    assert len(item_lines) == 8, item_lines  # a start and an end per item


@pytest.mark.timeout(120)
def test_the_default_single_item_console_is_brief_too(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "5", "--provider", "mock", home=home, verbose=False
    )
    assert result.returncode == 0, result.stdout
    assert "APPROVED after 2 review round(s)" in result.stdout
    assert "LLM call" not in result.stdout and ">>> Executing" not in result.stdout
    verbose = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "5", "--force", "--provider", "mock", home=home
    )
    assert "LLM call: drafter" in verbose.stdout and ">>> Executing: N1_design" in verbose.stdout
