"""Checkpoint DBs kept for resume: whose they are, how old, why they were kept; pruned on request.

A DB stays after a failure or an interruption (ADR 0002). Without a way to list them, a
user could only guess what `$AGENTOS_HOME/checkpoints/` held, or delete by hand. Every fact
shown comes from the DB's own mark (its owner row, read without creating any file) and
from the newest run summary that names it; a summary's path is matched by its last two
parts, never used as a path. Pruning deletes only DBs that carry agentos's mark, never one
whose item a run holds right now.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from agentos.core.errors import CheckpointError, CheckpointRefused
from agentos.core.file_lock import lock_path, probe
from agentos.core.paths import checkpoints_dir
from agentos.runs.history import run_folders
from agentos.runs.run_files import RunHistoryError, clean_text
from agentos.runs.summary import read_summary
from agentos.workflows.checkpoint_identity import is_ours, read_owner

SIDE_FILES = ("-wal", "-shm", "-journal")


def _db_files(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if e.name.endswith(".db") and e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def kept_checkpoints() -> set[str]:
    """The checkpoint DBs kept for resume, relative to `checkpoints/`: `<workspace_key>/<name>.db`
    (ADR 0002), or `<name>.db` from the flat pre-0.2 layout. Regular files in real folders only."""
    root = checkpoints_dir()
    kept = set(_db_files(str(root)))
    try:
        with os.scandir(root) as entries:
            folders = [e for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return kept
    for folder in folders:
        kept |= {f"{folder.name}/{name}" for name in _db_files(folder.path)}
    return kept


def kept_key(checkpoint: str, kept: set[str]) -> str | None:
    """Which kept DB a summary's checkpoint path names: matched by its last two parts, never used as a path."""
    path = PurePath(checkpoint)
    for key in (f"{path.parent.name}/{path.name}", path.name):
        if key in kept:
            return key
    return None


@dataclass
class KeptCheckpoint:
    """One kept DB. `problem`: why it is not agentos's (or unreadable); it is then never pruned."""

    key: str  # `<workspace folder>/<file>.db`, relative to checkpoints/
    path: Path
    age_s: float
    size: int
    workspace: str | None = None
    workflow: str | None = None
    item: str | None = None
    why: str = (
        "no run summary names it (kept by a run whose folder was removed, or by a single item run before 0.4)"
    )
    run: str | None = None  # the run folder that explains it
    in_use_by: int | None = None  # pid of a run holding the item now (0: unknown)
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": clean_text(str(self.path), 1000),
            "workspace": self.workspace,
            "workflow": self.workflow,
            "item": self.item,
            "age_s": round(self.age_s, 1),
            "bytes": self.size,
            "why": self.why,
            "run": self.run,
            "in_use_by": self.in_use_by,
            "problem": self.problem,
        }


def _newest_mtime(path: Path) -> tuple[float, int]:
    """The newest modification time of the DB and its side files, and their total size."""
    info = os.lstat(path)
    newest, size = info.st_mtime, info.st_size
    for suffix in SIDE_FILES:
        with contextlib.suppress(OSError):
            side = os.lstat(f"{path}{suffix}")
            if stat.S_ISREG(side.st_mode):
                newest, size = max(newest, side.st_mtime), size + side.st_size
    return newest, size


def _reasons() -> dict[str, tuple[str, str]]:
    """Kept DB key -> (why, run folder name), from the newest run summary naming it."""
    kept = kept_checkpoints()
    found: dict[str, tuple[str, str]] = {}
    for run_dir in run_folders():  # oldest first: the newest wins
        try:
            run = read_summary(run_dir)
        except RunHistoryError:
            continue
        for entry in run.items:
            key = kept_key(entry.checkpoint, kept) if entry.checkpoint else None
            if key is None:
                continue
            status = entry.status
            error = clean_text(entry.error, 200) if entry.error else ""
            why = error if error.startswith(status) else f"{status}: {error}" if error else status
            found[key] = (why, run_dir.name)
    return found


def list_kept(now: float | None = None) -> list[KeptCheckpoint]:
    """Every kept DB under checkpoints/, oldest first."""
    now = time.time() if now is None else now
    root = checkpoints_dir()
    reasons = _reasons()
    found: list[KeptCheckpoint] = []
    for key in sorted(kept_checkpoints()):
        path = root / key
        try:
            mtime, size = _newest_mtime(path)
        except OSError:
            continue  # removed meanwhile
        entry = KeptCheckpoint(key, path, max(now - mtime, 0.0), size)
        if key in reasons:
            entry.why, entry.run = reasons[key]
        try:
            is_ours(path)
            owner = read_owner(path)
        except (CheckpointRefused, CheckpointError) as exc:
            entry.problem = clean_text(exc.cause)
            found.append(entry)
            continue
        entry.workspace = clean_text(owner.workspace, 1000)
        entry.workflow = clean_text(owner.workflow, 40)
        entry.item = clean_text(owner.item, 80)
        if os.path.isabs(owner.workspace) and "/" not in owner.workflow + owner.item:
            entry.in_use_by = probe(lock_path(Path(owner.workspace), f"{owner.workflow}_{owner.item}"))
        found.append(entry)
    return sorted(found, key=lambda e: -e.age_s)


def prune(entry: KeptCheckpoint) -> None:
    """Delete one kept DB and its side files, only when it still carries agentos's mark.

    CheckpointRefused when it is not ours (or changed since it was listed)."""
    if not is_ours(entry.path):
        return  # gone meanwhile
    for suffix in ("", *SIDE_FILES):
        Path(f"{entry.path}{suffix}").unlink(missing_ok=True)
