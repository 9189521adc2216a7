"""Ctrl+C and SIGTERM from the first instant: exit 130, no traceback, no process left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentos.core import stop_signals
from tests.helpers.cli import cli_env, issue_flags, run_dirs
from tests.helpers.fake_github import TOKEN, FakeGitHub
from tests.helpers.live_run import LiveRun, kill_all, wait_until_handling_signals

pytestmark = pytest.mark.timeout(120)


def _interrupt_at(demo: Path, home: Path, sig: int, delay: float) -> tuple[int, str, list[int], float]:
    args = ["--repo", str(demo), *issue_flags(3, 5, 8, 12), "--parallel", "2", "--provider", "mock"]
    run = LiveRun("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="0.5")
    try:
        wait_until_handling_signals(run)
        time.sleep(delay)
        sent = time.monotonic()
        run.signal_group(sig)  # the terminal's whole group: coordinator and fork server
        code = run.wait(timeout=40)
        elapsed = time.monotonic() - sent
        deadline = time.monotonic() + 8
        while run.session_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = run.session_processes()
    finally:
        kill_all(run)
    return code, run.output, leftovers, elapsed


@pytest.mark.parametrize(
    ("sig", "delay"),
    [
        (signal.SIGINT, 0.0),  # imports, flags, the fork server's first breath
        (signal.SIGINT, 0.25),
        (signal.SIGINT, 0.8),  # the fork server is preloading LangGraph
        (signal.SIGINT, 1.6),
        (signal.SIGINT, 3.0),  # items are running
        (signal.SIGTERM, 0.0),
        (signal.SIGTERM, 0.8),
        (signal.SIGTERM, 2.0),
    ],
)
def test_a_signal_at_any_moment_of_start_up_exits_130_cleanly(
    demo: Path, home: Path, sig: int, delay: float
) -> None:
    code, output, leftovers, elapsed = _interrupt_at(demo, home, sig, delay)
    assert code == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "Aborted!" not in output
    assert leftovers == [], "no worker, fork server or resource tracker outlives the run"
    assert elapsed < 15, elapsed
    for run_dir in run_dirs(home):  # a run that got as far as a run folder says so
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["exit_code"] == 130
        assert {i["status"] for i in summary["items"]} <= {"interrupted", "not_started", "approved"}


def test_a_resume_after_an_early_interrupt_finishes_everything(demo: Path, home: Path) -> None:
    code, output, _, _ = _interrupt_at(demo, home, signal.SIGINT, 1.6)
    assert code == 130, output
    args = ["--repo", str(demo), *issue_flags(3, 5, 8, 12), "--parallel", "2", "--provider", "mock"]
    again = subprocess.run(
        [sys.executable, "-m", "agentos.cli.lld", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=cli_env(home),
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Summary: 4 approved" in again.stdout


def test_the_handlers_are_installed_only_in_the_cli_process() -> None:
    from agentos.cli import entry

    assert not entry.is_cli_process()  # importing the CLI in a test changes nothing
    assert signal.getsignal(signal.SIGTERM) is not stop_signals._handler


def test_ctrl_c_ends_a_long_github_rate_limit_wait_before_the_run(demo: Path, home: Path) -> None:
    with FakeGitHub() as server:
        server.primary_limit_once = True
        server.primary_limit_reset_s = 600  # the listing would wait ten minutes
        args = ["--repo", str(demo), "--all", "--parallel", "2", "--provider", "mock"]
        args += ["--github", server.repo, "--github-api-url", server.url]
        run = LiveRun("lld-workflow", *args, home=home, GH_TOKEN=TOKEN)
        try:
            run.wait_for(r"GitHub API rate limit: waiting")
            sent = time.monotonic()
            run.signal_group(signal.SIGINT)
            code = run.wait(timeout=30)
            elapsed = time.monotonic() - sent
        finally:
            kill_all(run)
    assert code == 130, run.output
    assert elapsed < 10, elapsed
    assert "Interrupted before any item started" in run.output
    assert "Traceback" not in run.output
