"""A worker's session with the team backend for one item (issue 23).

One connection does it all, on purpose: it holds the item's worker lock (session-level
advisory), and it is the connection LangGraph's `PostgresSaver` writes the checkpoints
through. So a worker whose session ended (`pg_terminate_backend`, a restart, a lost network)
has lost both its ownership and any way to write the item's checkpoint: two machines never
write the same item's checkpoint. `check()` runs before each node and ends the item there.

The same connection records the checkpoint's mark (whose thread, for which input), the
filing claim (a primary key: one claim per brief text, whatever the machine), and the item's
result with its output files, so another machine lists it as done and can write them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentos import __version__
from agentos.backend.postgres.connection import BackendUnavailable, connect, described, is_connection_lost
from agentos.backend.postgres.item_ownership import worker_key
from agentos.backend.postgres.team_schema import SEARCH_PATH, ensure_team_schema, setup_saver
from agentos.core.errors import BackendLost

MAX_OUTPUT_FILE_BYTES = 4 * 1024 * 1024  # an output file larger than this is not stored (named instead)

# psycopg warns "error ignored terminating <Pipeline [BAD]>" when a session dies inside a
# checkpoint write: the item already says, in one line, that it lost the backend.
logging.getLogger("psycopg").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Mark:
    """The ownership mark of a backend checkpoint thread (the SQLite DB's `agentos_checkpoint` row)."""

    workspace: str
    workflow: str
    item: str
    input_sha256: str
    agentos_version: str
    host: str


@dataclass(frozen=True)
class DoneElsewhere:
    host: str
    run: str
    finished: float
    output: str | None

    def message(self) -> str:
        return f"done on {self.host} in run {self.run}"


@dataclass(frozen=True)
class FilingClaim:
    """What the filing table says about this brief text: `new` (this worker claimed it now),
    or an earlier claim, with the issue number once it was filed."""

    new: bool
    number: int | None = None
    host: str = ""


def thread_id(identity: str, workflow: str, item: str) -> str:
    """One LangGraph thread per (workflow, workspace identity, item)."""
    return f"{workflow}/{item}@{identity}"


class ItemSession:
    def __init__(
        self,
        url: str,
        identity: str,
        workflow: str,
        item: str,
        run: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url, self.identity, self.workflow, self.item, self.run = url, identity, workflow, item, run
        self.clock = clock
        self.host = socket.gethostname()[:100]
        self.thread_id = thread_id(identity, workflow, item)
        self.where = described(url)
        self._conn: Any = None
        self._saver: Any = None

    # -- ownership -----------------------------------------------------------------
    def open(self) -> bool:
        """Connect and take the item's worker lock. False: another worker holds it."""
        from psycopg.rows import dict_row

        conn = connect(self.url, prepare_threshold=0, row_factory=dict_row, options=SEARCH_PATH)
        try:
            ensure_team_schema(conn, self.url)
            got = conn.execute(
                "SELECT pg_try_advisory_lock(%s) AS got",
                (worker_key(self.identity, self.workflow, self.item),),
            ).fetchone()["got"]
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        if not got:
            with contextlib.suppress(Exception):
                conn.close()
            return False
        self._conn = conn
        return True

    def check(self) -> None:
        """Before each node: is our session (so our lock) still there? BackendLost if not."""
        if self._conn is None:
            raise BackendLost(self.where, "the item's session is closed")
        lock = self._saver.lock if self._saver is not None else contextlib.nullcontext()
        try:
            with lock:
                self._conn.execute("SELECT 1").fetchone()
        except Exception as exc:
            if is_connection_lost(exc):
                raise self.lost(exc) from None
            raise

    def lost(self, exc: BaseException) -> BackendLost:
        first = (str(exc).strip().splitlines() or ["connection lost"])[0]
        return BackendLost(self.where, first[:200])

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # at once: the server ends a session on its own time
                self._conn.execute("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(Exception):
                self._conn.close()  # the worker lock goes with the session anyway
        self._conn = None
        self._saver = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise BackendLost(self.where, "the item's session is closed")
        return self._conn

    # -- checkpoints ---------------------------------------------------------------
    def saver(self, serde: Any) -> Any:
        """LangGraph's PostgresSaver on this session; its tables are set up once per database."""
        if self._saver is None:
            from langgraph.checkpoint.postgres import PostgresSaver

            saver = PostgresSaver(self.conn, serde=serde)
            setup_saver(saver, self.conn)
            self._saver = saver
        return self._saver

    def mark(self) -> Mark | None:
        row = self.conn.execute(
            "SELECT workspace, workflow, item, input_sha256, agentos_version, host "
            "FROM agentos.checkpoint_marks WHERE thread_id = %s",
            (self.thread_id,),
        ).fetchone()
        return Mark(**row) if row is not None else None

    def has_checkpoint(self) -> bool:
        """Rows in LangGraph's table for our thread (whoever wrote them)."""
        if self.conn.execute("SELECT to_regclass('agentos.checkpoints') IS NOT NULL AS t").fetchone()["t"]:
            row = self.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM agentos.checkpoints WHERE thread_id = %s) AS e",
                (self.thread_id,),
            ).fetchone()
            return bool(row["e"])
        return False

    def set_mark(self, input_sha256: str) -> None:
        self.conn.execute(
            "INSERT INTO agentos.checkpoint_marks (thread_id, workspace, workflow, item, input_sha256, "
            "agentos_version, host, created) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (thread_id) DO UPDATE SET input_sha256 = excluded.input_sha256, "
            "agentos_version = excluded.agentos_version, host = excluded.host, created = excluded.created",
            (
                self.thread_id,
                self.identity,
                self.workflow,
                self.item,
                input_sha256,
                __version__,
                self.host,
                self.clock(),
            ),
        )

    def delete_checkpoint(self, serde: Any) -> None:
        """The thread's checkpoints, then its mark (a mark with no checkpoint is harmless;
        checkpoints with no mark would be refused)."""
        self.saver(serde).delete_thread(self.thread_id)
        self.conn.execute("DELETE FROM agentos.checkpoint_marks WHERE thread_id = %s", (self.thread_id,))

    # -- done elsewhere ------------------------------------------------------------
    def done_elsewhere(self, input_sha256: str) -> DoneElsewhere | None:
        """The item approved by some run (any machine) for this very input."""
        row = self.conn.execute(
            "SELECT host, run, finished, output FROM agentos.item_results WHERE workspace = %s "
            "AND workflow = %s AND item = %s AND status = 'approved' AND input_sha256 = %s",
            (self.identity, self.workflow, self.item, input_sha256),
        ).fetchone()
        return DoneElsewhere(**row) if row is not None else None

    def record_result(
        self, input_sha256: str, status: str, output: str | None, files: Mapping[str, str]
    ) -> None:
        self.conn.execute(
            "INSERT INTO agentos.item_results (workspace, workflow, item, input_sha256, status, run, host, "
            "finished, output, files) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (workspace, workflow, item) DO UPDATE SET input_sha256 = excluded.input_sha256, "
            "status = excluded.status, run = excluded.run, host = excluded.host, "
            "finished = excluded.finished, output = excluded.output, files = excluded.files",
            (
                self.identity,
                self.workflow,
                self.item,
                input_sha256,
                status,
                self.run,
                self.host,
                self.clock(),
                output,
                json.dumps(dict(files)),
            ),
        )

    # -- filing exactly once -------------------------------------------------------
    def claim_filing(self, token: str) -> FilingClaim:
        """Claim the filing of this brief text. The table's primary key, not a lookup, makes
        one claim win: a second claim (any machine) reads the first one's row instead."""
        row = self.conn.execute(
            "INSERT INTO agentos.filings (workspace, workflow, item, token, host, run, claimed) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING number",
            (self.identity, self.workflow, self.item, token, self.host, self.run, self.clock()),
        ).fetchone()
        if row is not None:
            return FilingClaim(new=True)
        found = self.conn.execute(
            "SELECT number, host FROM agentos.filings WHERE workspace = %s AND workflow = %s "
            "AND item = %s AND token = %s",
            (self.identity, self.workflow, self.item, token),
        ).fetchone()
        return FilingClaim(new=False, number=found["number"], host=found["host"])

    def record_filed(self, token: str, number: int) -> None:
        self.conn.execute(
            "UPDATE agentos.filings SET number = %s, filed = %s, host = %s, run = %s WHERE workspace = %s "
            "AND workflow = %s AND item = %s AND token = %s",
            (number, self.clock(), self.host, self.run, self.identity, self.workflow, self.item, token),
        )


def open_session(url: str, identity: str, workflow: str, item: str, run: str) -> ItemSession | None:
    """An open session holding the item's worker lock, None when another worker holds it;
    BackendUnavailable when the backend cannot be reached."""
    session = ItemSession(url, identity, workflow, item, run)
    try:
        return session if session.open() else None
    except BackendUnavailable:
        raise
    except Exception as exc:
        if is_connection_lost(exc):
            raise BackendUnavailable(
                described(url), str(exc).splitlines()[0] if str(exc) else "lost"
            ) from None
        raise
