"""Shared fixtures: every test gets its own AGENTOS_HOME and its own copy of the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "agentos-home"
    monkeypatch.setenv("AGENTOS_HOME", str(path))
    for var in (
        "AGENTOS_SIMULATE_429",
        "AGENTOS_CREDENTIAL_LIMIT",
        "AGENTOS_MOCK_LATENCY",
        "AGENTOS_WORKFLOW_DB",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GH_TOKEN",
        "GITHUB_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target)
    return target


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOS_", "GH_", "GITHUB_"))}
    env.update({"AGENTOS_HOME": str(home), "AGENTOS_MOCK_LATENCY": "0.01", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def issue_flags(*numbers: int | str) -> list[str]:
    """`--issue 3 --issue 8 ...` for the given issue numbers."""
    return [flag for number in numbers for flag in ("--issue", str(number))]


def run_cli(
    command: str, *args: str, home: Path, timeout: float = 90, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `lld-workflow` / `issue-workflow` as a real process, with a watchdog timeout."""
    module = {"lld-workflow": "agentos.cli.lld", "issue-workflow": "agentos.cli.issue"}[command]
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(home, **env),
        check=False,
    )


def run_dirs(home: Path) -> list[Path]:
    base = home / "logs" / "parallel"
    return sorted(base.iterdir()) if base.exists() else []


def kept_db(home: Path, workspace: Path, key: int | str, workflow: str = "lld_workflow") -> Path:
    """Where a run keeps an item's checkpoint: one folder per workspace under `checkpoints/`."""
    from agentos.paths import workspace_key

    return home / "checkpoints" / workspace_key(workspace) / f"{workflow}_{key}.db"
