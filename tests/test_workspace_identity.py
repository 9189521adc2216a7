"""A workspace is the same workspace on every machine, and no credential is ever part of it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agentos.backend.workspace_identity import normalise_remote, workspace_identity
from agentos.tracker.base import TrackerConfig


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:Org/Repo.git",
        "https://github.com/Org/Repo",
        "https://x-access-token:ghp_secret123@GitHub.com/Org/Repo.git",
        "ssh://git@github.com/Org/Repo.git/",
        "git+ssh://git@github.com:22/Org/Repo",
        "https://github.com/org/repo",  # GitHub's paths are not case-sensitive
    ],
)
def test_one_repository_under_every_form_of_its_remote(url: str) -> None:
    assert normalise_remote(url) == "github.com/org/repo"


def test_a_self_hosted_remote_keeps_the_case_of_its_path() -> None:
    assert normalise_remote("git@git.example.com:Team/Repo.git") == "git.example.com/Team/Repo"


@pytest.mark.parametrize(
    "url", ["", "/srv/git/repo", "file:///srv/repo", "https://github.com/", "a b", "https://h/../x"]
)
def test_what_is_not_a_remote_is_none(url: str) -> None:
    assert normalise_remote(url) is None


def clone(root: Path, config: str) -> Path:
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text(config)
    return root


def test_two_clones_of_one_origin_are_one_workspace(tmp_path: Path) -> None:
    config = '[core]\n\tbare = false\n[remote "upstream"]\n\turl = https://example.com/other\n'
    a = clone(tmp_path / "a", config + '[remote "origin"]\n\turl = git@github.com:org/app.git\n')
    b = clone(tmp_path / "b", config + '[remote "origin"]\n\turl = https://bot:tok3n@github.com/org/app\n')
    assert workspace_identity(a) == workspace_identity(b)
    assert workspace_identity(a).key == "git:github.com/org/app" and "tok3n" not in str(workspace_identity(b))


def test_the_tracker_then_the_path(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert workspace_identity(plain).key == f"path:{socket.gethostname()}:{plain.resolve()}"
    tracker = TrackerConfig(kind="github", repo="Org/App")
    assert workspace_identity(plain, tracker).key == "github:org/app"


def test_a_hostile_git_config_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text('[remote "origin"]\n\turl = git@github.com:evil/leak\n')
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    (ws / ".git" / "config").symlink_to(outside)
    assert workspace_identity(ws).key.startswith("path:")
    huge = clone(tmp_path / "huge", '[remote "origin"]\n\turl = git@h:o/r\n' + "#" * 400_000)
    assert workspace_identity(huge).key.startswith("path:")
