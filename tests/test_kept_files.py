"""Files agentos writes over are never someone's lost work (issue 20 findings 8 and 9)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from agentos.core.atomic_file import move_without_replacing
from agentos.core.paths import Workspace
from agentos.tracker.local import LocalTracker
from tests.helpers.cli import issue_flags, run_cli

pytestmark = pytest.mark.timeout(120)


def test_move_without_replacing_numbers_the_newcomer(tmp_path: Path) -> None:
    done = tmp_path / "done"
    done.mkdir()
    (done / "w.md").write_text("v1")
    (done / "w-2.md").write_text("v2")
    source = tmp_path / "w.md"
    source.write_text("v3")
    assert move_without_replacing(source, done / "w.md") == done / "w-3.md"
    assert [(p.name, p.read_text()) for p in sorted(done.iterdir())] == [
        ("w-2.md", "v2"),
        ("w-3.md", "v3"),
        ("w.md", "v1"),
    ]
    assert not source.exists()


def test_a_filed_brief_in_ideas_done_is_never_overwritten(demo: Path, home: Path) -> None:
    done = demo / "ideas" / "done"
    done.mkdir(parents=True, exist_ok=True)
    (done / "csv-import.md").write_text("# CSV import, v1\n\nFiled long ago.\n")
    v2 = (demo / "ideas" / "active" / "csv-import.md").read_text()
    result = run_cli(
        "issue-workflow", "--repo", str(demo), "--brief", "csv-import.md", "--provider", "mock", home=home
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (done / "csv-import.md").read_text() == "# CSV import, v1\n\nFiled long ago.\n"
    assert (done / "csv-import-2.md").read_text() == v2
    assert "ideas/done/csv-import.md is an earlier brief; kept it" in result.stdout


def test_a_hand_written_lld_is_kept_beside_the_new_one(demo: Path, home: Path) -> None:
    active = demo / "docs" / "lld" / "active"
    active.mkdir(parents=True, exist_ok=True)
    mine = "# LLD-005, written by hand\n\nDo not lose me.\n"
    (active / "LLD-005.md").write_text(mine)
    result = run_cli("lld-workflow", "--repo", str(demo), *issue_flags(5), "--provider", "mock", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (active / "LLD-005.hand-written.md").read_text() == mine
    assert (active / "LLD-005.md").read_text().startswith("<!-- agentos-status: APPROVED -->")
    assert "LLD-005.md was not written by agentos; kept it as LLD-005.hand-written.md" in result.stdout
    again = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(5), "--provider", "mock", "--force", home=home
    )
    assert again.returncode == 0, again.stdout
    assert sorted(p.name for p in active.glob("LLD-005*")) == [
        "LLD-005.hand-written.md",
        "LLD-005.md",
    ]  # ours: rewritten


def test_a_move_killed_between_link_and_unlink_is_finished_not_numbered(tmp_path: Path) -> None:
    """A run killed after the link: the brief is in both folders as one file. The resume
    finishes the move; it does not file the same text again as w-2.md."""
    done = tmp_path / "done"
    done.mkdir()
    source = tmp_path / "w.md"
    source.write_text("v1")
    os.link(source, done / "w.md")
    assert move_without_replacing(source, done / "w.md") == done / "w.md"
    assert [p.name for p in done.iterdir()] == ["w.md"]
    assert (done / "w.md").read_text() == "v1" and not source.exists()


def test_without_hard_links_the_move_copies_into_a_new_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that refuses hard links (some network and FUSE mounts) still never
    replaces a file: the copy goes to a name created with O_EXCL."""

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    done = tmp_path / "done"
    done.mkdir()
    (done / "w.md").write_text("v1")
    source = tmp_path / "w.md"
    source.write_text("v2")
    assert move_without_replacing(source, done / "w.md") == done / "w-2.md"
    assert (done / "w.md").read_text() == "v1" and (done / "w-2.md").read_text() == "v2"
    assert not source.exists()


def test_a_half_done_archive_is_finished_through_the_cli(demo: Path, home: Path) -> None:
    done = demo / "ideas" / "done"
    done.mkdir(parents=True, exist_ok=True)
    active = demo / "ideas" / "active" / "csv-import.md"
    text = active.read_text()
    os.link(active, done / "csv-import.md")  # the state a kill between link and unlink leaves
    result = run_cli(
        "issue-workflow", "--repo", str(demo), "--brief", "csv-import.md", "--provider", "mock", home=home
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in done.glob("csv-import*")) == ["csv-import.md"]
    assert (done / "csv-import.md").read_text() == text and not active.exists()
    assert "kept it" not in result.stdout


def test_filing_never_writes_through_a_planted_temp_file(tmp_path: Path) -> None:
    """The local tracker's temp file had a guessable name (.filing-<pid>.tmp): a symlink or
    hard link planted there had an outside file overwritten with the new issue."""
    ws = Workspace(tmp_path / "ws")
    ws.issues_dir.mkdir(parents=True)
    precious = tmp_path / "precious.txt"
    precious.write_text("precious\n")
    (ws.issues_dir / f".filing-{os.getpid()}.tmp").symlink_to(precious)
    os.link(precious, ws.issues_dir / f".filing-{os.getpid()}-hard.tmp")
    number = LocalTracker(ws).create_issue("Widgets", "body", [])
    assert number == 1 and (ws.issues_dir / "1.md").read_text().startswith("# Widgets")
    assert precious.read_text() == "precious\n"
    assert stat.S_IMODE((ws.issues_dir / "1.md").stat().st_mode) == 0o644


def test_dry_run_says_a_hand_written_lld_would_be_kept(demo: Path, home: Path) -> None:
    active = demo / "docs" / "lld" / "active"
    active.mkdir(parents=True, exist_ok=True)
    (active / "LLD-005.md").write_text("# LLD-005, written by hand\n")
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--dry-run", "--provider", "mock", home=home
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "LLD-5: would start fresh; LLD-005.md was not written by agentos: "
        "it would be kept as LLD-005.hand-written.md" in result.stdout
    )
    assert "LLD-3: would start fresh\n" in result.stdout
    assert (active / "LLD-005.md").read_text() == "# LLD-005, written by hand\n"
