"""docs/file-inventory.md lists every Python file with its docstring's first line."""

from __future__ import annotations

from tests.helpers.cli import ROOT, run_script


def test_inventory_is_current() -> None:
    result = run_script("file_inventory.py", "--check")
    assert result.returncode == 0, result.stderr


def test_every_module_has_a_docstring() -> None:
    text = (ROOT / "docs" / "file-inventory.md").read_text(encoding="utf-8")
    assert "(no docstring)" not in text
