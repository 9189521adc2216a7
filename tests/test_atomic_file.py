"""Atomic writes: the old file or the whole new one; no temp file survives a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentos.core.atomic_file import write_text_atomic


def test_replaces_the_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "summary.json"
    write_text_atomic(target, "old\n")
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "LLD-001.md"
    write_text_atomic(target, "approved design\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "half \udcff written")  # a lone surrogate cannot be UTF-8
    assert target.read_text() == "approved design\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LLD-001.md"]


def test_the_target_being_a_folder_is_an_error_not_a_deletion(tmp_path: Path) -> None:
    folder = tmp_path / "summary.json"
    folder.mkdir()
    (folder / "keep").write_text("x")
    with pytest.raises(OSError):
        write_text_atomic(folder, "{}")
    assert (folder / "keep").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_write_killed_midway_leaves_nothing_once_its_owner_writes_again(tmp_path: Path) -> None:
    """Found by the chaos test: a worker killed while writing a lineage file left its temp
    file, and the resumed run archived it with the lineage."""
    from agentos.core.atomic_file import is_temp_file, write_text_atomic
    from agentos.workflows.lineage import archive_previous, write_lineage

    lineage = tmp_path / "lineage"
    lineage.mkdir()
    (lineage / ".001-issue.md.k3j_9x2a.tmp").write_text("# half a")
    (lineage / ".002-draft.md.abcdefgh.tmp").write_text("# half b")
    (lineage / ".notes.md").write_text("a user's hidden file")
    write_lineage(lineage, 1, "issue", "# Issue 1")
    names = sorted(p.name for p in lineage.iterdir())
    assert names == [".002-draft.md.abcdefgh.tmp", ".notes.md", "001-issue.md"]  # its own only
    archived = archive_previous(lineage, tmp_path / "archive")
    assert archived is not None
    assert sorted(p.name for p in archived.iterdir()) == [".notes.md", "001-issue.md"]
    assert is_temp_file(".x.md.abcdefgh.tmp") and not is_temp_file(".notes.md")
    write_text_atomic(tmp_path / "plain.txt", "x")  # without sweep, nothing else is touched
