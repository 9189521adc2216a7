"""Files agentos writes over are never someone's lost work (issue 20 findings 8 and 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentos.atomic_file import move_without_replacing
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
