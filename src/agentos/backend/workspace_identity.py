"""Which workspace this is, the same on every machine: the key a team's backend files it under.

In order: the GitHub repository (the GitHub tracker), else the git remote `origin`,
normalised (`git@github.com:Org/Repo.git`, `https://user:token@github.com/org/repo` and
`ssh://git@github.com/org/repo` are one workspace: GitHub, GitLab and Bitbucket paths are
compared without case) with any credential stripped before it is
stored or shown, else the folder's path on this host. `.git/config` is read as untrusted
input: bounded, never through a symlink out of the workspace, and never executed.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agentos.core.errors import FileRefused
from agentos.core.workspace_files import read_text
from agentos.tracker.base import TrackerConfig

MAX_GIT_CONFIG_BYTES = 256 * 1024
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.\-]+):(?P<path>(?!//)[^\s]+)$")  # git@host:org/repo
CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org"})
_SECTION = re.compile(r'^\s*\[\s*remote\s+"(?P<name>[^"]*)"\s*\]\s*$')


@dataclass(frozen=True)
class WorkspaceIdentity:
    key: str  # `github:org/repo`, `git:host/org/repo`, or `path:host:/abs/path`
    how: str  # what it was read from, for the operator

    def __str__(self) -> str:
        return self.key


def normalise_remote(url: str) -> str | None:
    """`host/org/repo` of a git remote URL, lower-case host, no credential, no `.git`; None
    for anything that is not a remote (a local path, an empty or garbled value)."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url) or len(url) > 2000:
        return None
    scp = _SCP.match(url) if "://" not in url else None
    if scp:
        host, path = scp["host"], scp["path"]
    else:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""  # userinfo (user:token@) is dropped here
        except ValueError:
            return None
        if parts.scheme not in ("http", "https", "ssh", "git", "git+ssh") or not host:
            return None
        path = parts.path
    path = path.strip("/").removesuffix(".git").strip("/")
    if not path or ".." in path.split("/"):
        return None
    host = host.lower()
    if host in CASE_INSENSITIVE_HOSTS:  # `Org/Repo` and `org/repo` are one repository there
        path = path.lower()
    return f"{host}/{path}"


def origin_url(root: Path) -> str | None:
    """The `url` of `[remote "origin"]` in `<root>/.git/config`, or None."""
    config = root / ".git" / "config"
    try:
        text = read_text(config, root, what="git config", max_bytes=MAX_GIT_CONFIG_BYTES)
    except (FileRefused, OSError):
        return None
    section = None
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            section = header["name"]
            continue
        if line.lstrip().startswith("["):
            section = None
            continue
        if section == "origin":
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "url":
                return value.strip().strip('"')
    return None


def workspace_identity(root: Path, tracker: TrackerConfig | None = None) -> WorkspaceIdentity:
    if tracker is not None and tracker.kind == "github" and tracker.repo:
        return WorkspaceIdentity(f"github:{tracker.repo.lower()}", "the GitHub tracker's repository")
    url = origin_url(root)
    remote = normalise_remote(url) if url else None
    if remote is not None:
        return WorkspaceIdentity(f"git:{remote}", "its git remote origin")
    return WorkspaceIdentity(f"path:{socket.gethostname()}:{root.resolve()}", "its path on this machine")
