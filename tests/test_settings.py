"""agentos.toml settings: strict validation, clear errors, and flags that win over the file."""

from pathlib import Path

import pytest

from agentos.cli.config import build_config
from agentos.core.errors import ConfigError
from agentos.core.settings import load_settings
from agentos.workflows.item import WorkflowKind


def opts(repo: Path, **kw: object) -> dict[str, object]:
    return {"repo": str(repo), **kw}


def test_demo_settings_load(demo: Path) -> None:
    s = load_settings(demo / "agentos.toml")
    assert (s.drafter, s.reviewer, s.max_iterations, s.parallel) == ("mock", "mock", 3, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("colour = 'blue'\n", "unknown setting 'colour'"),
        ("max_iterations = 'three'\n", "must be a whole number"),
        ("parallel = 0\n", "at least 1"),
        ("this is = not toml", "cannot read settings file"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "agentos.toml").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "agentos.toml")
    assert message in str(info.value) and info.value.exit_code == 2


def test_flags_override_settings(demo: Path) -> None:
    config = build_config(WorkflowKind.LLD, opts(demo, max_iterations=5, reviewer="gemini:x-pro"), ["8"])
    assert config.max_iterations == 5
    assert (config.drafter.provider, config.reviewer.provider, config.reviewer.model) == (
        "mock",
        "gemini",
        "x-pro",
    )
    both = build_config(
        WorkflowKind.LLD, opts(demo, provider="anthropic", drafter=None, reviewer=None), ["8"]
    )
    assert both.drafter.provider == both.reviewer.provider == "anthropic"


def test_all_uses_settings_parallelism_and_flags_win(demo: Path) -> None:
    assert build_config(WorkflowKind.LLD, opts(demo, run_all=True), []).parallel == 3
    assert build_config(WorkflowKind.LLD, opts(demo, run_all=True, parallel=2), []).parallel == 2
    assert build_config(WorkflowKind.LLD, opts(demo), ["8"]).parallel is None


@pytest.mark.parametrize(
    ("kw", "items", "message"),
    [
        ({"parallel": 0, "run_all": True}, [], "--parallel must be a positive number"),
        ({}, [], "nothing to do"),
        ({"run_all": True}, ["8"], "either --all or specific items"),
        ({"provider": "skynet"}, ["8"], "unknown provider"),
        ({"github": "not a repo"}, ["8"], "invalid GitHub repository"),
    ],
)
def test_usage_errors(demo: Path, kw: dict[str, object], items: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(WorkflowKind.LLD, opts(demo, **kw), items)
    assert message in str(info.value)


def test_rpm_setting(tmp_path: Path) -> None:
    (tmp_path / "agentos.toml").write_text("rpm = 15\n")
    assert load_settings(tmp_path / "agentos.toml").rpm == 15
    for bad, message in (
        ("rpm = 0\n", "at least 1"),
        ("rpm = 10000000\n", "at most"),
        ("rpm = '9'\n", "whole"),
    ):
        (tmp_path / "agentos.toml").write_text(bad)
        with pytest.raises(ConfigError, match=message):
            load_settings(tmp_path / "agentos.toml")
