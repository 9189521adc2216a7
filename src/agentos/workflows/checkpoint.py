"""One SQLite checkpoint DB per workflow, through LangGraph's SqliteSaver.

The connection is opened here and injected into the saver. A DB that SQLite cannot read
becomes a `CheckpointError` that names the file and suggests `--fresh`. Only DBs that carry
agentos's mark (checkpoint_identity) are resumed, discarded or deleted.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite import SqliteSaver

from agentos.core import environment
from agentos.core.errors import CheckpointError, CheckpointRefused, DiskError
from agentos.core.printing import Console
from agentos.core.redaction import contains_secret, redact, redact_data
from agentos.workflows.checkpoint_identity import Action, Owner, create_marked, decide, is_ours
from agentos.workflows.disk import disk_problem

_SIDE_FILES = ("-wal", "-shm", "-journal")


def db_path_from_env(default: Path) -> Path:
    """A worker finds its DB in `AGENTOS_WORKFLOW_DB`; otherwise the AGENTOS_HOME default."""
    configured = environment.WORKFLOW_DB.get()
    return Path(configured) if configured else default


@functools.cache
def redacting_serializer_class() -> type[Any]:
    """LangGraph's serializer, except that no registered key is ever written to the DB.

    Errors are redacted at their source already; this is the checkpoint sink's own
    check. Only a value whose bytes hold a key is redacted and serialized again. Built
    on first use, so importing this module does not import LangGraph.
    """
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    class RedactingSerializer(JsonPlusSerializer):
        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            type_, data = super().dumps_typed(obj)
            if not contains_secret(data):
                return type_, data
            type_, data = super().dumps_typed(redact_data(obj))
            if contains_secret(data):  # an object redact_data cannot see into: keep its text only
                return super().dumps_typed(f"<value withheld: it held an API key> {redact(repr(obj))}")
            return type_, data

    return RedactingSerializer


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def prepare(self, owner: Owner, fresh: bool, console: Console) -> Action:
        """Make the path hold this item's own marked DB: keep it, discard it, or create it.

        Refuses (CheckpointRefused) anything agentos did not create, or another item's DB.
        """
        action = decide(self.path, owner, fresh)
        if action is Action.DISCARD_FRESH:
            self.delete()
            console.line(f"    Discarded the kept checkpoint {self.path} (--fresh)")
        elif action is Action.DISCARD_CHANGED:
            self.delete()
            console.line(
                f"    Input changed since the checkpoint {self.path} was written: "
                "discarded it; starting fresh"
            )
        if action is not Action.RESUME:
            create_marked(self.path, owner)
        return action

    def open(self) -> SqliteSaver:
        from langgraph.checkpoint.sqlite import SqliteSaver

        if not is_ours(self.path):
            raise CheckpointRefused(self.path, "it does not exist; agentos creates it before opening")
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            saver = SqliteSaver(conn, serde=redacting_serializer_class()())
            saver.setup()
            # Set-up goes into the WAL; fold it into the main file, so a non-empty -wal
            # means checkpoints were written (dry runs read the main file only).
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        except (sqlite3.DatabaseError, OSError) as exc:
            if conn is not None:  # never leak the handle of a DB we refuse
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            cause = disk_problem(exc)
            if cause is not None:  # not corrupt: --fresh would throw good work away
                raise DiskError(self.path, cause) from None
            if isinstance(exc, OSError):
                raise
            raise CheckpointError(self.path, str(exc)) from None
        self._conn = conn
        return saver

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def delete(self) -> None:
        """Remove the DB and its WAL/SHM/journal side files, only if the DB carries our mark."""
        self.close()
        try:
            ours = is_ours(self.path)
        except CheckpointRefused:
            return  # not ours: never delete it, nor its side files
        if ours:
            for suffix in ("", *_SIDE_FILES):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
