"""One SQLite checkpoint DB per workflow, through LangGraph's SqliteSaver.

The connection is opened here and injected into the saver. A DB that SQLite cannot read
becomes a `CheckpointError` that names the file and suggests `--fresh`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite import SqliteSaver

from agentos.errors import CheckpointError

_SIDE_FILES = ("-wal", "-shm", "-journal")


def db_path_from_env(default: Path) -> Path:
    """A worker finds its DB in `AGENTOS_WORKFLOW_DB`; otherwise the AGENTOS_HOME default."""
    configured = os.environ.get("AGENTOS_WORKFLOW_DB")
    return Path(configured) if configured else default


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def open(self) -> SqliteSaver:
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(self.path), check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            saver = SqliteSaver(conn)
            saver.setup()
            conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CheckpointError(self.path, str(exc)) from None
        self._conn = conn
        return saver

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def delete(self) -> None:
        """Remove the DB and its WAL/SHM/journal side files (after a successful run)."""
        self.close()
        for suffix in ("", *_SIDE_FILES):
            Path(str(self.path) + suffix).unlink(missing_ok=True)


def has_checkpoint(path: Path) -> bool:
    """True when a DB with at least one checkpoint exists: the item would resume."""
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return True  # unreadable: the run will report it, with the fix
    return bool(row and row[0])
