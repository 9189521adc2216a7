"""`--dry-run` finds the set-up mistakes the real run would stop on (issue 19, finding 5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli

pytestmark = pytest.mark.timeout(120)


def test_dry_run_names_the_missing_key_and_its_variable(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--dry-run", "--provider", "openai", home=home
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "[COORDINATOR]   LLD-3: would start fresh" in result.stdout  # the plan is still shown
    expected = f"Set-up problem: no API key for openai: set OPENAI_API_KEY, or add enabled entries to {home / 'openai-credentials.json'}"
    assert expected in result.stderr
    real = run_cli("lld-workflow", "--repo", str(demo), "--all", "--provider", "openai", home=home)
    assert real.returncode == 2 and "no API key for openai: set OPENAI_API_KEY" in real.stderr


def test_dry_run_names_both_gemini_variables(demo: Path, home: Path) -> None:
    result = run_cli(
        "issue-workflow", "--repo", str(demo), "--all", "--dry-run", "--provider", "gemini", home=home
    )
    assert result.returncode == 2
    assert "no API key for gemini: set GEMINI_API_KEY or GOOGLE_API_KEY, or add" in result.stderr


def test_dry_run_with_a_key_in_the_environment_is_clean(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        "--all",
        "--dry-run",
        "--provider",
        "openai",
        home=home,
        OPENAI_API_KEY="sk-test-not-a-real-key",
    )
    assert result.returncode == 0, result.stderr
    assert "Set-up problem" not in result.stderr and "sk-test" not in result.stdout + result.stderr


def test_dry_run_names_a_malformed_credentials_file(demo: Path, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "anthropic-credentials.json").write_text(json.dumps({"credentials": [{"name": "a"}]}))
    (home / "anthropic-credentials.json").chmod(0o600)
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "3", "--dry-run", "--provider", "anthropic", home=home
    )
    assert result.returncode == 2
    assert "Set-up problem: credentials file" in result.stderr and 'missing or empty "key"' in result.stderr


@pytest.mark.parametrize(
    ("command", "missing", "args"),
    [
        ("lld-workflow", "issues/", ["--all"]),
        ("lld-workflow", "issues/", ["--issue", "3"]),
        ("issue-workflow", "ideas/active/", ["--all"]),
        ("issue-workflow", "ideas/active/", ["--brief", "x"]),
    ],
)
@pytest.mark.parametrize("dry", [True, False])
def test_a_folder_that_is_not_a_workspace_is_refused_in_every_mode(
    tmp_path: Path, home: Path, command: str, missing: str, args: list[str], dry: bool
) -> None:
    empty = tmp_path / "not-a-workspace"
    empty.mkdir()
    flags = [*args, "--provider", "mock", *(["--dry-run"] if dry else [])]
    result = run_cli(command, "--repo", str(empty), *flags, home=home)
    assert result.returncode == 2, result.stdout
    assert f"workspace {empty} has no {missing} folder" in result.stderr
    assert "is --repo the right folder?" in result.stderr
    assert "pending" not in result.stdout


def test_dry_run_checks_prices_for_max_cost(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        "--all",
        "--dry-run",
        "--provider",
        "mock",
        "--max-cost",
        "2",
        home=home,
    )
    assert result.returncode == 2
    assert "--max-cost needs a price for every model the run uses" in result.stderr


def test_help_names_the_default_provider_and_model(home: Path) -> None:
    for command in ("lld-workflow", "issue-workflow"):
        text = " ".join(run_cli(command, "--help", home=home).stdout.split())
        assert "Default: gemini:gemini-2.5-flash, or provider in agentos.toml." in text


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("command", "folder"),
    [
        ("lld-workflow", "docs/lld/status"),
        ("lld-workflow", "docs/lld/active"),
        ("lld-workflow", "docs/lineage"),
        ("lld-workflow", "docs"),
        ("issue-workflow", "ideas/done"),
        ("issue-workflow", "issues"),
        ("lld-workflow", "docs/lineage/active"),
        ("issue-workflow", "docs/lineage/archive"),
        ("lld-workflow", ".agentos/locks"),
        ("issue-workflow", ".agentos/invalid"),
    ],
)
def test_a_symlinked_output_folder_is_refused_by_name(
    demo: Path, home: Path, tmp_path: Path, command: str, folder: str
) -> None:
    """Issue 20 finding 12: written through, results would land outside the workspace."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = demo / folder
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(outside, target_is_directory=True)
    result = run_cli(command, "--repo", str(demo), "--all", "--provider", "mock", home=home)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{folder}/ in workspace {demo} is a symlink" in result.stderr
    assert list(outside.iterdir()) == []
