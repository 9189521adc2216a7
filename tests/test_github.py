"""GitHub as the tracker, against a loopback server speaking GitHub's REST API."""

import os
import signal
import time
from pathlib import Path

import pytest

from agentos.core.errors import ConfigError
from agentos.core.printing import Lines
from agentos.tracker.github import GitHubTracker
from tests.helpers.cli import run_cli
from tests.helpers.fake_github import TOKEN, FakeGitHub
from tests.helpers.live_run import LiveRun, kill_all

pytestmark = pytest.mark.timeout(150)


def tracker(
    server: FakeGitHub, waits: list[float], token: str = TOKEN, label: str | None = None
) -> GitHubTracker:
    return GitHubTracker(
        server.repo, token, api_url=server.url, label=label, sleep=waits.append, console=Lines()
    )


def test_lists_open_issues_across_pages_without_pull_requests() -> None:
    with FakeGitHub() as server:
        waits: list[float] = []
        assert tracker(server, waits).open_issue_numbers() == [1, 2, 4]
        assert sum(1 for r in server.requests if r == "GET /repos/acme/widgets/issues") >= 2  # paginated


def test_get_create_and_find_filed() -> None:
    with FakeGitHub() as server:
        t = tracker(server, [])
        assert t.get_issue(2).title == "Retry uploads"
        number = t.create_issue("New", "body\n<!-- agentos-filing: x/abc -->", ["design"])
        assert server.creates[-1]["labels"] == [{"name": "design"}]
        assert t.find_filed("<!-- agentos-filing: x/abc -->") == number
        assert t.find_filed("<!-- agentos-filing: x/other -->") is None


def test_primary_and_secondary_rate_limits_wait_and_retry() -> None:
    with FakeGitHub() as server:
        waits: list[float] = []
        t = tracker(server, waits)
        server.primary_limit_once = True
        assert t.open_issue_numbers() == [1, 2, 4]
        server.secondary_limit_once = True
        t.create_issue("x", "y", [])
        assert len(waits) == 2 and all(1.0 <= w <= 3.0 for w in waits)
        assert len(server.creates) == 1


def test_rejected_token_is_a_config_error() -> None:
    with FakeGitHub() as server, pytest.raises(ConfigError) as info:
        tracker(server, [], token="wrong").verify()
    assert "401" in str(info.value)


def test_cli_designs_every_open_issue_in_parallel(demo: Path, home: Path) -> None:
    with FakeGitHub() as server:
        server.primary_limit_once = True
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            "--all",
            "--parallel",
            "3",
            "--provider",
            "mock",
            "--github",
            server.repo,
            "--github-api-url",
            server.url,
            home=home,
            GH_TOKEN=TOKEN,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[COORDINATOR] GitHub API rate limit: waiting" in result.stdout
    assert "[COORDINATOR] 3 pending issues, parallelism 3" in result.stdout
    assert "Summary: 3 approved" in result.stdout
    assert sorted(p.name for p in (demo / "docs/lld/active").glob("LLD-*.md")) == [
        "LLD-001.md",
        "LLD-002.md",
        "LLD-004.md",
    ]
    assert TOKEN not in result.stdout + result.stderr


def test_cli_token_problems_are_exit_2(demo: Path, home: Path) -> None:
    with FakeGitHub() as server:
        args = ["--repo", str(demo), "--all", "--provider", "mock", "--github", server.repo]
        args += ["--github-api-url", server.url]
        missing = run_cli("lld-workflow", *args, home=home, PATH="/usr/bin:/bin")
        wrong = run_cli("lld-workflow", *args, home=home, GH_TOKEN="nope")
    assert missing.returncode == 2 and "no GitHub token" in missing.stderr
    assert wrong.returncode == 2 and "GitHub rejected the token (401)" in wrong.stderr
    assert "nope" not in wrong.stderr


def test_issue_workflow_files_once_per_brief_across_an_interrupted_run(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock", "--label", "from-brief"]
    with FakeGitHub() as server:
        gh = ["--github", server.repo, "--github-api-url", server.url]
        server.create_delay = 3.0  # the issue exists on GitHub before the worker hears back
        run = LiveRun("issue-workflow", *args, *gh, home=home, GH_TOKEN=TOKEN)
        try:
            deadline = time.monotonic() + 60
            while not server.creates and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.creates, run.output
            os.killpg(run.proc.pid, signal.SIGKILL)  # everything dies before the number is checkpointed
            run.wait(timeout=10)
        finally:
            kill_all(run)
        server.create_delay = 0.0
        resumed = run_cli("issue-workflow", *args, *gh, home=home, GH_TOKEN=TOKEN)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "Already filed as issue" in resumed.stdout
        slugs = [c["body"].split("agentos-filing: ")[1].split("/")[0] for c in server.creates]
    assert sorted(slugs) == sorted(
        ["api-keys-rotation", "csv-import", "offline-mode", "slack-alerts", "usage-dashboard"]
    )
    assert all(c["labels"] == [{"name": "from-brief"}] for c in server.creates)
    assert not list((demo / "ideas/active").glob("*.md"))
