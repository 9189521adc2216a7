"""Path rules: identifiers are sanitized before any path is built; the home and workspace layout."""

from pathlib import Path

import pytest

from agentos.core.paths import Workspace, agentos_home, checkpoint_db_path, sanitize_identifier


@pytest.mark.parametrize("value", ["42", "abc", "offline-mode", "A_b-9", 42])
def test_accepts_safe_identifiers(value: object) -> None:
    assert sanitize_identifier(value) == str(value)


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ("../etc/passwd", "path traversal"),
        ("..", "path traversal"),
        ("/abs", "absolute paths not allowed"),
        ("C:\\x", "absolute paths not allowed"),
        ("a/b", "path separators not allowed"),
        ("a\\b", "path separators not allowed"),
        ("x y", "invalid characters"),
        ("", "invalid characters"),
        ("a;rm", "invalid characters"),
    ],
)
def test_rejects_unsafe_identifiers(value: str, cause: str) -> None:
    with pytest.raises(ValueError) as info:
        sanitize_identifier(value)
    assert str(info.value).startswith(f"Invalid identifier '{value}':")
    assert cause in str(info.value)


def test_rejection_touches_no_file(home: Path) -> None:
    with pytest.raises(ValueError):
        checkpoint_db_path("lld_workflow", "../../x")
    assert not home.exists()


def test_home_follows_env(home: Path) -> None:
    assert agentos_home() == home
    assert checkpoint_db_path("lld_workflow", 42) == home / "checkpoints" / "lld_workflow_42.db"


def test_workspace_layout(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert ws.lld_file(42) == tmp_path / "docs/lld/active/LLD-042.md"
    assert ws.issue_file(7) == tmp_path / "issues/7.md"
    with pytest.raises(ValueError):
        ws.brief_file("../x")
