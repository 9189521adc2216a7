"""Whose checkpoint is this? agentos's mark on its DBs, the owner record, and what to do.

Every DB agentos creates carries `PRAGMA application_id = APPLICATION_ID` in its header and
an `agentos_checkpoint` row: workspace, workflow, item, sha256 of the item's input and the
agentos version. Both are written in rollback-journal mode into a temporary file that is
then linked into place, so a file at a DB path is either fully marked or not ours. Only
after that does LangGraph switch the DB to WAL, so the mark always sits in the main file and
can be read with `immutable=1`, which creates no -wal or -shm file (dry runs). See ADR 0002.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from agentos import __version__
from agentos.core.errors import CheckpointError, CheckpointRefused, ItemNotFound
from agentos.core.paths import Workspace
from agentos.core.workspace_files import read_input
from agentos.tracker.base import Tracker
from agentos.workflows.item import WorkflowKind

APPLICATION_ID = 0x41674F73  # "AgOs"
SQLITE_MAGIC = b"SQLite format 3\x00"
MARK_TABLE = "agentos_checkpoint"
_HEADER = 100


@dataclass(frozen=True)
class Owner:
    """Who a checkpoint belongs to: (workflow, workspace, item), and the input it was made for."""

    workspace: str
    workflow: str
    item: str
    input_sha256: str
    agentos_version: str = __version__

    def same_item(self, other: Owner) -> bool:
        return (self.workspace, self.workflow, self.item) == (other.workspace, other.workflow, other.item)


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def item_input(kind: WorkflowKind, key: str, workspace: Workspace, tracker: Tracker) -> str:
    """The text the item's first node reads: the issue (tracker) or the brief file."""
    if kind is WorkflowKind.LLD:
        return tracker.get_issue(int(key)).text
    path = workspace.brief_file(key)
    if not path.is_file():
        raise ItemNotFound("brief", key, str(workspace.ideas_active))
    return read_input(workspace, path, what="brief")  # bounded, like the node that reads it


def owner_for(kind: WorkflowKind, key: str, workspace: Workspace, tracker: Tracker) -> Owner:
    text = item_input(kind, key, workspace, tracker)
    return Owner(str(workspace.root.resolve()), kind.db_prefix, key, fingerprint(text))


def _file_type(mode: int) -> str | None:
    for test, name in (
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def is_ours(path: Path) -> bool:
    """True when `path` is a regular file whose SQLite header carries agentos's mark.

    False when it is missing. Raises CheckpointRefused for anything else. Reads 100 bytes
    with O_NOFOLLOW | O_NONBLOCK, so a FIFO or a symlink swapped in meanwhile cannot hang it.
    """
    try:
        kind = _file_type(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CheckpointRefused(path, exc.strerror or str(exc)) from None
    if kind:
        raise CheckpointRefused(path, f"it is {kind}, not an agentos checkpoint file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise CheckpointRefused(path, exc.strerror or str(exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointRefused(path, "it is not a regular file")
        header = os.read(fd, _HEADER)
    finally:
        os.close(fd)
    if len(header) < _HEADER or not header.startswith(SQLITE_MAGIC):
        raise CheckpointRefused(path, "it is not an SQLite database, so agentos did not create it")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id != APPLICATION_ID:
        raise CheckpointRefused(
            path, f"it is an SQLite database that agentos did not create (application_id {app_id:#x})"
        )
    _check_companions(path)
    return True


COMPANIONS = ("-wal", "-shm", "-journal")


def _check_companions(path: Path) -> None:
    """SQLite opens `<db>-wal`, `-shm` and `-journal` beside the DB, following symlinks and
    writing into them. One planted as a FIFO, a link to /dev/zero or a hard link to a file
    elsewhere is refused by name (it is not a full disk, whatever SQLite would say)."""
    for suffix in COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            info = os.lstat(companion)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CheckpointRefused(companion, exc.strerror or str(exc)) from None
        kind = _file_type(info.st_mode)
        if kind:
            raise CheckpointRefused(companion, f"it is {kind}, not a file SQLite made for {path.name}")
        if info.st_nlink != 1:
            raise CheckpointRefused(
                companion, f"it has {info.st_nlink} hard links; SQLite would write into a file elsewhere"
            )


def _ro_uri(path: Path) -> str:
    """Read-only and immutable: SQLite opens no journal, -wal or -shm file beside it."""
    return f"file:{quote(str(path))}?mode=ro&immutable=1"


def read_owner(path: Path) -> Owner:
    """The owner row of a marked DB, read without creating any file. CheckpointError if unreadable."""
    try:
        conn = sqlite3.connect(_ro_uri(path), uri=True)
        try:
            row = conn.execute(
                f"SELECT workspace, workflow, item, input_sha256, agentos_version FROM {MARK_TABLE}"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CheckpointError(path, str(exc)) from None
    if row is None:
        raise CheckpointError(path, "its agentos owner record is missing")
    return Owner(*(str(v) for v in row))


def has_checkpoint(path: Path) -> bool:
    """Read-only: does the DB hold a checkpoint (so the item would resume)?

    Checkpoint rows written since the last WAL checkpoint live in the -wal file, which an
    immutable reader cannot see; a non-empty -wal means LangGraph wrote after set-up.
    """
    wal = Path(f"{path}-wal")
    with contextlib.suppress(OSError):
        if wal.stat().st_size > 0:
            return True
    try:
        conn = sqlite3.connect(_ro_uri(path), uri=True)
        try:
            row = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return bool(row and row[0])


class Action(StrEnum):
    NEW = "new"  # nothing there: create a marked DB
    RESUME = "resume"  # ours, same item, same input
    DISCARD_FRESH = "discard_fresh"  # ours, same item; --fresh
    DISCARD_CHANGED = "discard_changed"  # ours, same item; the input changed since


def check_same_item(path: Path, found: Owner, owner: Owner) -> None:
    """A checkpoint is never used, nor discarded, for another workspace or item."""
    if not found.same_item(owner):
        raise CheckpointRefused(
            path,
            f"it is the checkpoint of {found.workflow} item {found.item} in workspace {found.workspace}, "
            f"not of {owner.workflow} item {owner.item} in {owner.workspace}",
        )


def decide(path: Path, owner: Owner, fresh: bool) -> Action:
    """What to do with whatever is at `path`. Read-only; raises CheckpointRefused / CheckpointError."""
    if not is_ours(path):
        return Action.NEW
    try:
        found = read_owner(path)
    except CheckpointError:
        if fresh:
            return Action.DISCARD_FRESH  # ours by its header, but unreadable: --fresh may discard it
        raise
    check_same_item(path, found, owner)
    if fresh:
        return Action.DISCARD_FRESH
    if found.input_sha256 != owner.input_sha256:
        return Action.DISCARD_CHANGED
    return Action.RESUME


def create_marked(path: Path, owner: Owner) -> None:
    """Create the DB with agentos's mark, atomically: a complete marked file or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(
                f"CREATE TABLE {MARK_TABLE} (workspace TEXT NOT NULL, workflow TEXT NOT NULL, "
                "item TEXT NOT NULL, input_sha256 TEXT NOT NULL, agentos_version TEXT NOT NULL, "
                "created TEXT NOT NULL)"
            )
            conn.execute(
                f"INSERT INTO {MARK_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                (
                    owner.workspace,
                    owner.workflow,
                    owner.item,
                    owner.input_sha256,
                    owner.agentos_version,
                    time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                ),
            )
            conn.commit()
        finally:
            conn.close()
        try:
            os.link(tmp, path)  # fails if anything appeared at `path` meanwhile: never overwrite
        except FileExistsError:
            raise CheckpointRefused(path, "a file appeared there while agentos was creating it") from None
    finally:
        tmp.unlink(missing_ok=True)
