"""Which items are pending: issues without an approved LLD, and every active brief."""

from __future__ import annotations

import json
import re

from agentos.paths import Workspace
from agentos.tracker.base import Tracker

_SLUG_FILE = re.compile(r"^([A-Za-z0-9_-]+)\.md$")


def lld_status(workspace: Workspace, number: int) -> str | None:
    """The recorded status of issue `number`'s LLD ("approved", "needs_revision"), if any."""
    path = workspace.lld_status_file(number)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    status = record.get("status") if isinstance(record, dict) else None
    return status if isinstance(status, str) else None


def pending_issues(workspace: Workspace, tracker: Tracker) -> list[int]:
    return [n for n in tracker.open_issue_numbers() if lld_status(workspace, n) != "approved"]


def pending_briefs(workspace: Workspace) -> list[str]:
    """Slugs of `ideas/active/*.md`. Files whose names are not safe identifiers are skipped."""
    folder = workspace.ideas_active
    if not folder.is_dir():
        return []
    slugs = []
    for entry in sorted(folder.iterdir()):
        match = _SLUG_FILE.match(entry.name)
        if match and entry.is_file():
            slugs.append(match.group(1))
    return slugs


def skipped_briefs(workspace: Workspace) -> list[str]:
    """Brief files that cannot become items because their names are not safe identifiers."""
    folder = workspace.ideas_active
    if not folder.is_dir():
        return []
    return sorted(e.name for e in folder.iterdir() if e.suffix == ".md" and not _SLUG_FILE.match(e.name))
