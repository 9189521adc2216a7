"""Several "machines" on one team backend: each a clone of one repository (the same origin,
written in a different form) with its own AGENTOS_HOME, and what their runs left behind."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from agentos.core.events import read_audit

# One repository, as three machines' clones spell its origin (one with a token in the URL).
ORIGINS = (
    "git@github.com:Team/Backlog.git",
    "https://x-access-token:ghp_tok3nInTheUrl@github.com/team/backlog",
    "ssh://git@github.com/team/backlog.git",
)
IDENTITY = "git:github.com/team/backlog"


def brief_text(n: int) -> str:
    # One revision: N0 load, N1 draft, N2 review, N1, N2, N3 file, N4 archive: seven nodes.
    return f"# Feature {n}\n\nShip feature number {n} to the team.\n\n<!-- mock-review: revisions=1 -->\n"


def clone(root: Path, name: str, briefs: int, origin: str = ORIGINS[0]) -> tuple[Path, Path]:
    """`<name>-ws` (a clone: `.git/config` with the origin) and `<name>-home`."""
    ws, home = root / f"{name}-ws", root / f"{name}-home"
    (ws / ".git").mkdir(parents=True)
    (ws / ".git" / "config").write_text(f'[core]\n\tbare = false\n[remote "origin"]\n\turl = {origin}\n')
    (ws / "ideas" / "active").mkdir(parents=True)
    for n in range(1, briefs + 1):
        (ws / "ideas" / "active" / f"feature-{n:02d}.md").write_text(brief_text(n))
    home.mkdir()
    return ws, home


def audits(*homes: Path) -> list[Path]:
    return [p for home in homes for p in (home / "logs" / "parallel").glob("*/workflow-audit-*.jsonl")]


def events(files: list[Path], kind: str) -> list[dict[str, object]]:
    return [e for path in files for e in read_audit(path) if e["event"] == kind]


def ok_calls(files: list[Path]) -> Counter[str]:
    return Counter(str(e["item"]) for e in events(files, "llm_call") if e["outcome"] == "ok")


def completions(files: list[Path]) -> Counter[str]:
    return Counter(str(e["item"]) for e in events(files, "workflow_complete"))


def filed(*workspaces: Path) -> Counter[str]:
    """How often each brief was filed, over every clone's local issues folder."""
    found: Counter[str] = Counter()
    for ws in workspaces:
        for path in (ws / "issues").glob("*.md"):
            for slug in re.findall(r"<!-- agentos-filing: ([\w-]+)/", path.read_text()):
                found[slug] += 1
    return found


def node_runs(path: Path) -> list[tuple[str, str]]:
    """(event, node) of one audit file, in order: node_start and node_end."""
    return [
        (str(e["event"]), str(e["node"]))
        for e in read_audit(path)
        if e["event"] in ("node_start", "node_end")
    ]
