"""A hostile GitHub (issue 20 findings 2, 4, 5, 13, 17): endless next links, a trickled
body, a next link to another host, an error body that ends with the token, malformed
lists, and a brief filed long ago that only the search API still finds."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from agentos.core.errors import ConfigError
from agentos.core.printing import Lines
from agentos.core.redaction import clear_secrets, register_secret
from agentos.tracker.github import GitHubTracker
from tests.helpers.cli import run_cli
from tests.helpers.fake_github import TOKEN, FakeGitHub
from tests.helpers.live_run import LiveRun, kill_all

pytestmark = pytest.mark.timeout(120)


def tracker(server: FakeGitHub, **kwargs: Any) -> GitHubTracker:
    t = GitHubTracker(server.repo, TOKEN, api_url=server.url, sleep=lambda s: None, console=Lines(), **kwargs)
    t.verify()
    return t


def test_endless_next_links_stop_at_the_repositorys_own_count() -> None:
    with FakeGitHub() as server:
        server.endless_next = True
        with pytest.raises(ConfigError, match="kept naming a next page after 2 pages"):
            tracker(server).open_issue_numbers()
        assert len([r for r in server.requests if r.endswith("/issues")]) == 2  # 3 open: 1 page + 1 spare


def test_a_trickled_page_ends_at_the_request_deadline() -> None:
    with FakeGitHub() as server:
        t = tracker(server)
        t.deadline_s = 1.5
        server.trickle_s = 0.5
        started = time.monotonic()
        with pytest.raises(ConfigError, match=r"did not answer GET /repos/acme/widgets/issues within 1.5s"):
            t.open_issue_numbers()
        assert time.monotonic() - started < 5


def test_the_token_never_follows_a_next_link_to_another_host() -> None:
    with FakeGitHub() as other, FakeGitHub() as server:
        server.next_base = other.url  # same address, another port
        with pytest.raises(ConfigError, match="not following it with the token"):
            tracker(server).open_issue_numbers()
        assert other.requests == []  # the other host never saw a request, so never the token


def test_a_next_link_with_a_user_name_is_not_followed() -> None:
    with FakeGitHub() as server:
        server.next_base = server.url.replace("://", "://someone:pw@")
        with pytest.raises(ConfigError, match="holds a user name or password; not following it"):
            tracker(server).open_issue_numbers()
        assert len([r for r in server.requests if r.endswith("/issues")]) == 1


def test_a_relative_next_link_is_followed_on_the_api_host() -> None:
    with FakeGitHub() as server:
        server.next_base = ""  # </repos/acme/widgets/issues?page=2>: resolved against the API URL
        assert tracker(server).open_issue_numbers() == [1, 2, 4]


def test_an_error_body_ending_with_the_token_shows_no_part_of_it() -> None:
    register_secret(TOKEN, "GH_TOKEN")
    try:
        with FakeGitHub() as server:
            for pad in (150, 161, 175, 190):
                server.list_error = (500, "x" * pad + TOKEN)
                with pytest.raises(ConfigError) as info:
                    tracker(server).open_issue_numbers()
                message = str(info.value)
                assert "ghp_" not in message and "loopbackTOKEN" not in message, message
    finally:
        clear_secrets()


@pytest.mark.parametrize(("payload", "shown"), [(5, "int"), (None, "null"), ({"a": 1}, "dict")])
def test_a_malformed_issue_list_is_one_clear_error(payload: Any, shown: str) -> None:
    with FakeGitHub() as server:
        server.list_json = payload
        with pytest.raises(ConfigError, match=rf"answered the issue list with {shown}, not a list"):
            tracker(server).open_issue_numbers()


def test_a_malformed_issue_list_through_the_cli_is_exit_2_without_traceback(demo: Path, home: Path) -> None:
    with FakeGitHub() as server:
        server.list_json = None
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            "--all",
            "--provider",
            "mock",
            "--github",
            server.repo,
            "--github-api-url",
            server.url,
            home=home,
            GH_TOKEN=TOKEN,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "answered the issue list with null, not a list" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_an_endless_listing_at_once_with_130(demo: Path, home: Path, sig: int) -> None:
    with FakeGitHub() as server:
        server.trickle_s = 2.0  # each page takes minutes
        args = ["--repo", str(demo), "--all", "--provider", "mock"]
        run = LiveRun(
            "lld-workflow",
            *args,
            "--github",
            server.repo,
            "--github-api-url",
            server.url,
            home=home,
            GH_TOKEN=TOKEN,
        )
        try:
            deadline = time.monotonic() + 30
            while not any(r.endswith("/issues") for r in server.requests) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            started = time.monotonic()
            run.proc.send_signal(sig)
            code = run.wait(timeout=20)
            assert time.monotonic() - started < 5
        finally:
            kill_all(run)
    assert code == 130, run.output


def test_a_brief_filed_before_many_newer_issues_is_found_by_search() -> None:
    with FakeGitHub() as server:
        t = tracker(server)
        marker = "<!-- agentos-filing: widgets/0123456789abcdef -->"
        first = t.create_issue("Widgets", f"body\n{marker}\n", [])
        for n in range(350):  # more than the 3 pages the recent scan reads
            t.create_issue(f"Newer {n}", "unrelated", [])
        assert t.find_filed(marker) is None  # no intent recorded: the recent pages only
        assert not any(r.startswith("SEARCH ") for r in server.requests)
        assert t.find_filed(marker, maybe_sent=True) == first
        assert any(r.startswith("SEARCH ") for r in server.requests)


BRIEFS = ["api-keys-rotation", "csv-import", "offline-mode", "slack-alerts", "usage-dashboard"]


def filed_slugs(server: FakeGitHub) -> list[str]:
    return sorted(c["body"].split("agentos-filing: ")[1].split("/")[0] for c in server.creates)


def test_a_fresh_brief_is_filed_without_the_search_api(demo: Path, home: Path) -> None:
    """Issue 20 finding 17: the search API (30 requests a minute, off on some servers) is
    asked only for a brief whose filing may have been sent; here it answers 404."""
    with FakeGitHub() as server:
        server.search_enabled = False
        gh = ["--github", server.repo, "--github-api-url", server.url]
        result = run_cli(
            "issue-workflow",
            "--repo",
            str(demo),
            "--all",
            "--provider",
            "mock",
            *gh,
            home=home,
            GH_TOKEN=TOKEN,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert filed_slugs(server) == BRIEFS
        assert not any(r.startswith("SEARCH ") for r in server.requests)
    assert not list(demo.glob(".agentos/filing/*"))  # every intent deleted once its number was kept


@pytest.mark.timeout(240)
def test_a_run_killed_during_the_post_then_350_newer_issues_files_each_brief_once(
    demo: Path, home: Path
) -> None:
    """Issue 20 finding 17: the intent is recorded before the POST; the resume searches for
    the marker, which 350 newer issues pushed past the 3 recent pages it scans."""
    args = ["--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock"]
    with FakeGitHub() as server:
        gh = ["--github", server.repo, "--github-api-url", server.url]
        server.create_delay = 30.0  # the issue exists on GitHub; the worker never hears back
        run = LiveRun("issue-workflow", *args, *gh, home=home, GH_TOKEN=TOKEN)
        try:
            deadline = time.monotonic() + 90
            while not server.creates and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.creates, run.output
            os.killpg(run.proc.pid, signal.SIGKILL)  # everything dies before the number is checkpointed
            run.wait(timeout=10)
        finally:
            kill_all(run)
        assert list(demo.glob(".agentos/filing/*.intent")), "the intent was recorded before the POST"
        with server.lock:
            top = max(server.issues)
            for n in range(top + 1, top + 351):
                server.issues[n] = {"number": n, "title": f"Newer {n}", "body": "x", "state": "open"}
        server.create_delay = 0.0
        resumed = run_cli("issue-workflow", *args, *gh, home=home, GH_TOKEN=TOKEN, timeout=180)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "Already filed as issue" in resumed.stdout
        assert any(r.startswith("SEARCH ") for r in server.requests)
        assert filed_slugs(server) == BRIEFS  # each once
    assert not list(demo.glob(".agentos/filing/*"))


@pytest.mark.parametrize(("payload", "shown"), [(5, "int"), (None, "null"), ([1], "list")])
def test_a_malformed_issue_through_the_cli_is_one_line(
    demo: Path, home: Path, payload: Any, shown: str
) -> None:
    """Issue 20 finding 13: `--issue 1` when GitHub answers the issue with `5` or `null`."""
    with FakeGitHub() as server:
        server.issue_json[1] = payload
        gh = ["--github", server.repo, "--github-api-url", server.url]
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            "--issue",
            "1",
            "--provider",
            "mock",
            *gh,
            home=home,
            GH_TOKEN=TOKEN,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    host = server.url.split("://")[1]
    assert f"Error: GitHub ({host}) answered issue #1 with {shown}, not an object\n" in result.stderr


def test_a_500_ending_with_the_token_through_the_cli_shows_no_part_of_it(demo: Path, home: Path) -> None:
    """Issue 20 finding 4 as reported: 161 characters of padding, then the token."""
    with FakeGitHub() as server:
        server.list_error = (500, "x" * 161 + TOKEN)
        gh = ["--github", server.repo, "--github-api-url", server.url]
        result = run_cli(
            "lld-workflow", "--repo", str(demo), "--all", "--provider", "mock", *gh, home=home, GH_TOKEN=TOKEN
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "GitHub error 500 for issue list" in result.stderr
    shown = result.stdout + result.stderr + "".join(p.read_text() for p in home.rglob("*.log"))
    for part in (TOKEN[:8], TOKEN[8:16], TOKEN[-8:]):
        assert part not in shown, shown
