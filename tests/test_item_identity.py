"""One canonical key per item: file names, `--issue` values and tracker numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentos.core.errors import AgentosError, ConfigError, FileRefused
from agentos.core.item_identity import (
    MAX_ISSUE_NUMBER,
    brief_key_of,
    issue_key_of,
    parse_issue_number,
    scan_issues,
    valid_issue_number,
)
from agentos.core.paths import Workspace, sanitize_identifier
from agentos.core.printing import Lines
from agentos.tracker.github import GitHubTracker
from agentos.tracker.local import LocalTracker
from agentos.workflows.pending import pending_briefs, skip_warnings
from tests.helpers.cli import issue_flags, run_cli, run_dirs
from tests.helpers.fake_github import TOKEN, FakeGitHub

pytestmark = pytest.mark.timeout(120)
HUGE = "18446744073709551615"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("7", 7),
        ("07", 7),
        ("1000000000", MAX_ISSUE_NUMBER),
        ("1000000001", None),
        ("0", None),
        ("", None),
        ("-3", None),
        ("+3", None),
        (" 3", None),
        ("3\n", None),
        ("٨", None),  # Arabic-Indic eight: str.isdigit() and int() accept it
        ("８", None),  # fullwidth eight
        (HUGE, None),
        ("9" * 5000, None),  # never reaches int(): no "exceeds the limit" ValueError
    ],
)
def test_issue_numbers_are_ascii_digits_within_bounds(text: str, number: int | None) -> None:
    assert parse_issue_number(text) == number


def test_file_names_map_to_one_key() -> None:
    assert issue_key_of("7.md") == issue_key_of("07.md") == 7
    for name in ("٨.md", "0.md", f"{HUGE}.md", "7.md\n", "7.MD", "7.md.bak", "seven.md", ".7.md"):
        assert issue_key_of(name) is None, name
    assert brief_key_of("offline-mode.md") == "offline-mode"
    for name in ("foo.md\n", "foo bar.md", "../foo.md", "föo.md", ".md"):
        assert brief_key_of(name) is None, name


def test_identifiers_reject_a_trailing_newline() -> None:
    with pytest.raises(ValueError, match="Invalid identifier"):
        sanitize_identifier("foo\n")


def test_tracker_numbers_must_be_real_ints_in_range() -> None:
    assert valid_issue_number(42) == 42
    for value in (0, -1, MAX_ISSUE_NUMBER + 1, int(HUGE), True, "42", 4.0, None):
        assert valid_issue_number(value) is None


def test_scan_groups_spellings_and_lists_odd_names(tmp_path: Path) -> None:
    for name in ("7.md", "07.md", "8.md", "٨.md", f"{HUGE}.md", "README.md", ".filing-1.tmp"):
        (tmp_path / name).write_text("# T\n\nb\n")
    scan = scan_issues(tmp_path)
    assert scan.item_keys() == [7, 8]
    assert scan.duplicates() == {7: ["07.md", "7.md"]}
    assert sorted(scan.skipped) == sorted([f"{HUGE}.md", "README.md", "٨.md"])


def test_local_tracker_refuses_two_files_for_one_issue(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.issues_dir.mkdir()
    (ws.issues_dir / "7.md").write_text("# Seven\n\nbody\n")
    tracker = LocalTracker(ws)
    assert tracker.get_issue(7).title == "Seven"
    (ws.issues_dir / "07.md").write_text("# Zero seven\n\nbody\n")
    assert tracker.open_issue_numbers() == [7]  # one item, never two
    with pytest.raises(FileRefused) as info:
        tracker.get_issue(7)
    assert str(info.value) == (
        "refused issue 7: 2 files name the same issue: issues/07.md and issues/7.md; "
        "keep one and remove the others"
    )
    (ws.issues_dir / "7.md").unlink()
    assert tracker.get_issue(7).title == "Zero seven"  # a lone `07.md` is issue 7


def test_local_tracker_never_files_above_the_bound(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.issues_dir.mkdir()
    (ws.issues_dir / f"{HUGE}.md").write_text("# Huge\n\nb\n")
    tracker = LocalTracker(ws)
    assert tracker.create_issue("New", "body", []) == 1  # the huge name is not an issue
    (ws.issues_dir / f"{MAX_ISSUE_NUMBER}.md").write_text("# Last\n\nb\n")
    with pytest.raises(AgentosError, match="above 1000000000"):
        tracker.create_issue("Newer", "body", [])
    assert sorted(p.name for p in ws.issues_dir.iterdir()) == sorted(["1.md", f"{HUGE}.md", "1000000000.md"])


def test_skip_warnings_use_one_wording(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.issues_dir.mkdir()
    ws.ideas_active.mkdir(parents=True)
    (ws.issues_dir / "٨.md").write_text("x")
    (ws.ideas_active / "two words.md").write_text("x")
    (ws.ideas_active / "fine.md").write_text("x")
    assert skip_warnings(ws, issues=True) == [
        "[COORDINATOR] Warning: skipping issues/٨.md: not a valid issue name "
        "(use ASCII digits, 1 to 1000000000, e.g. 42.md)"
    ]
    assert skip_warnings(ws, issues=False) == [
        "[COORDINATOR] Warning: skipping ideas/active/two words.md: not a valid brief name "
        "(use letters, digits, - or _, then .md)"
    ]
    assert pending_briefs(ws) == ["fine"]


def test_github_numbers_out_of_range_are_ignored_or_refused() -> None:
    with FakeGitHub() as server:
        said = Lines()
        tracker = GitHubTracker(server.repo, TOKEN, api_url=server.url, sleep=lambda s: None, console=said)
        server.issues[int(HUGE)] = {"number": int(HUGE), "title": "Huge", "body": "b", "state": "open"}
        server.issues[0] = {"number": 0, "title": "Zero", "body": "b", "state": "open"}
        assert tracker.open_issue_numbers() == [1, 2, 4]
        assert any(f"skipping GitHub issue number {HUGE}" in line for line in said)
        with pytest.raises(ConfigError, match="not a valid issue number"):
            tracker.create_issue("New", "body", [])  # the fake answers max + 1: above the bound
        with pytest.raises(ConfigError, match="not a valid issue number"):
            tracker.get_issue(int(HUGE))


# -- through the real CLI ------------------------------------------------------------------------


def keep_issues(demo: Path, keep: set[str]) -> None:
    for path in (demo / "issues").iterdir():
        if path.name not in keep:
            path.unlink()


def test_7_and_07_run_once_and_fail_naming_both(demo: Path, home: Path) -> None:
    keep_issues(demo, {"3.md", "8.md"})
    (demo / "issues/03.md").write_text((demo / "issues/3.md").read_text())
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock", home=home
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "[COORDINATOR] 2 pending issues" in out
    assert "[LLD-3] FAILED: refused issue 3: 2 files name the same issue: issues/03.md and issues/3.md" in out
    assert out.count("[LLD-3] >>> Worker process") == 1
    (run_dir,) = run_dirs(home)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["totals"]["total"] == 2 and [i["item"] for i in summary["items"]] == ["LLD-3", "LLD-8"]


def test_same_issue_named_twice_on_the_command_line_runs_once(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(3, "03", "#3"), "--parallel", "2",
        "--provider", "mock", home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[COORDINATOR] 1 pending issue," in result.stdout


def test_arabic_indic_digit_file_is_skipped_visibly(demo: Path, home: Path) -> None:
    keep_issues(demo, {"8.md"})
    (demo / "issues/٨.md").write_text((demo / "issues/8.md").read_text())
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "2", "--provider", "mock", home=home
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "[COORDINATOR] Warning: skipping issues/٨.md: not a valid issue name" in out
    assert "[COORDINATOR] 1 pending issue," in out and out.count("[LLD-8] >>> Worker process") == 1


@pytest.mark.parametrize("value", ["٨", HUGE, "0", "-1", "1000000001", "3a"])
def test_bad_issue_flags_are_usage_errors(demo: Path, home: Path, value: str) -> None:
    result = run_cli("lld-workflow", "--repo", str(demo), "--issue", value, "--provider", "mock", home=home)
    assert result.returncode == 2
    assert (
        f"Error: --issue takes a positive issue number (ASCII digits, 1 to 1000000000), got {value!r}"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_huge_issue_file_is_skipped_and_filing_stays_in_range(demo: Path, home: Path) -> None:
    (demo / f"issues/{HUGE}.md").write_text("# Huge\n\nA body.\n")
    for brief in (demo / "ideas/active").iterdir():
        if brief.name != "offline-mode.md":
            brief.unlink()
    args = ("--repo", str(demo), "--all", "--parallel", "2", "--provider", "mock")
    filed = run_cli("issue-workflow", *args, home=home)
    assert filed.returncode == 0, filed.stdout + filed.stderr
    assert "Filed issue #43 in local folder" in filed.stdout
    again = run_cli("issue-workflow", *args, home=home)
    assert again.returncode == 0 and "No pending briefs" in again.stdout
    designed = run_cli("lld-workflow", "--repo", str(demo), "--issue", "43", "--provider", "mock", home=home)
    assert designed.returncode == 0, designed.stdout + designed.stderr
    assert f"[COORDINATOR] Warning: skipping issues/{HUGE}.md: not a valid issue name" in designed.stdout
