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
