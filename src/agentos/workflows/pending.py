"""Which items are pending: issues without an approved LLD, and every active brief."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from agentos.core.errors import FileRefused
from agentos.core.item_identity import (
    BRIEF_NAME_RULE,
    ISSUE_NUMBER_RULE,
    scan_briefs,
    scan_issues,
    skip_line,
    the_one_file,
)
from agentos.core.paths import Workspace
from agentos.core.workspace_files import check_file, read_input
from agentos.tracker.base import Tracker
from agentos.workflows.item import ItemJob, WorkflowKind


def lld_status(workspace: Workspace, number: int) -> str | None:
    """The recorded status of issue `number`'s LLD ("approved", "needs_revision"), if any."""
    path = workspace.lld_status_file(number)
    try:
        record = json.loads(read_input(workspace, path, what="LLD status record"))
    except (OSError, FileRefused, json.JSONDecodeError):
        return None  # unreadable or unsafe: the issue is pending, and its run rewrites the record
    status = record.get("status") if isinstance(record, dict) else None
    return status if isinstance(status, str) else None


STATUS_LINE_PREFIX = b"<!-- agentos-status:"  # the first line of every LLD agentos writes


def hand_written_lld(workspace: Workspace, number: int) -> bool:
    """An LLD at our path that agentos did not write (no status record, no status line):
    someone's work, to be kept aside, never overwritten (issue 20 finding 9)."""
    path = workspace.lld_file(number)
    if workspace.lld_status_file(number).exists() or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO swapped in: no hang
    except OSError:
        return False
    try:
        return not os.read(fd, 64).startswith(STATUS_LINE_PREFIX)
    except OSError:
        return False
    finally:
        os.close(fd)


def pending_issues(workspace: Workspace, tracker: Tracker) -> list[int]:
    return [n for n in tracker.open_issue_numbers() if lld_status(workspace, n) != "approved"]


def pending_briefs(workspace: Workspace) -> list[str]:
    """Slugs of `ideas/active/*.md`, each once. A brief file that is unsafe to read (a
    symlink out of the workspace, a FIFO, a directory, too big) is still listed: it is
    refused by name when its workflow reads it, and that item fails."""
    return scan_briefs(workspace.ideas_active).item_keys()


def skipped_briefs(workspace: Workspace) -> list[str]:
    """Brief files that cannot become items because their names are not safe identifiers."""
    return scan_briefs(workspace.ideas_active).skipped


def skipped_issue_files(workspace: Workspace) -> list[str]:
    """`.md` files in `issues/` whose names are not issue numbers (e.g. `٨.md`, `0.md`)."""
    return scan_issues(workspace.issues_dir).skipped


def skip_warnings(workspace: Workspace, *, issues: bool) -> list[str]:
    """One visible line per `.md` file that is not an item, in the same words for both kinds."""
    if issues:
        folder, names = workspace.issues_dir, skipped_issue_files(workspace)
        what, rule = "issue", f"{ISSUE_NUMBER_RULE}, e.g. 42.md"
    else:
        folder, names = workspace.ideas_active, skipped_briefs(workspace)
        what, rule = "brief", BRIEF_NAME_RULE
    return [skip_line(str((folder / n).relative_to(workspace.root)), what, rule) for n in names]


def refusal(workspace: Workspace, key: str, *, issue: bool) -> str | None:
    """Why the local item `key` would be refused when read (None: it would be read).
    Only the file's type, place and size are checked; nothing is read."""
    try:
        if issue:
            path = the_one_file(scan_issues(workspace.issues_dir), int(key), "issue", workspace.root)
        else:
            path = workspace.brief_file(key)
        if path is not None:
            check_file(
                path, workspace.root, what="issue" if issue else "brief", max_bytes=workspace.max_item_bytes
            )
    except FileRefused as exc:
        return str(exc)
    except FileNotFoundError:
        return None
    return None


def _finished_since(workspace: Workspace, job: ItemJob) -> bool:
    """Did a run write this item's final lineage file after this run listed the item?"""
    if not job.listed_at:
        return False
    folder = workspace.lineage_dir(job.item_id)
    with contextlib.suppress(OSError):
        return any(p.stat().st_mtime > job.listed_at for p in folder.glob("*-final.md"))
    return False


def already_done(job: ItemJob) -> str | None:
    """Why the item needs no work any more, or None. Read under the item's lock."""
    workspace = Workspace(Path(job.workspace))
    if _finished_since(workspace, job):
        return "finished by another run since this run listed it"
    if job.kind is WorkflowKind.LLD:
        number = int(job.key)
        if not job.force and lld_status(workspace, number) == "approved":
            name = workspace.lld_file(number).relative_to(workspace.root)
            return f"already approved ({name}); use --force to design it again"
        return None
    done = workspace.ideas_done / f"{job.key}.md"
    if not workspace.brief_file(job.key).exists() and done.is_file():
        return f"already filed (the brief is in {done.relative_to(workspace.root)})"
    return None
