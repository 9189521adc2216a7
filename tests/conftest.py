"""Shared fixtures: every test gets its own AGENTOS_HOME and its own copy of the demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import DEMO


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
