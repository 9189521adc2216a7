"""Run records and item events in the team backend, so every machine's runs are listed (issue 23).

The coordinator writes a row when its run starts and when it ends, and one event per item
outcome as it comes; `agentos runs` and `agentos show` read them with the host and user that
ran them. A run is going while its coordinator's session holds the run's advisory lock: a
machine killed with `kill -9` leaves a run no longer going, never one that looks alive.
Writing is best effort after the start: a lost backend never costs the run an item.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentos.backend.postgres.connection import connect_prepared
from agentos.backend.postgres.team_schema import ensure_team_schema, held_anywhere, lock_key

RUNS_CHANNEL = "agentos_runs"  # NOTIFY after every record: the dashboard listens instead of polling


def team_run_id(run_dir: Path, pid: int | None = None) -> str:
    """A run's id in the backend: its folder's name, its coordinator's pid and its host (two
    machines, or two homes on one machine, may start a run in the same second)."""
    return f"{run_dir.name}-{pid or os.getpid()}@{socket.gethostname()[:100]}"


def _user() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()[:100]
    return str(os.getuid())


@dataclass(frozen=True)
class TeamRun:
    run: str
    host: str
    username: str
    workspace: str
    workflow: str
    items: int
    started: float
    ended: float | None
    exit_code: int | None
    totals: dict[str, int]
    going: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "host": self.host,
            "user": self.username,
            "workspace": self.workspace,
            "workflow": self.workflow,
            "items": self.items,
            "started": self.started,
            "ended": self.ended,
            "exit_code": self.exit_code,
            "totals": self.totals,
            "state": "running" if self.going else ("finished" if self.ended is not None else "stopped"),
        }


@dataclass(frozen=True)
class ItemEvent:
    item: str
    status: str
    at: float
    host: str
    rounds: int
    output: str | None
    error: str | None


@dataclass(frozen=True)
class KeptThread:
    workspace: str
    workflow: str
    item: str
    host: str  # the machine that wrote its mark (started the item)
    created: float


@dataclass(frozen=True)
class PlanView:
    """What the backend holds of one item, for --dry-run."""

    kept_sha256: str | None  # the input fingerprint of its kept checkpoint, if any
    done: tuple[str, str, str] | None  # (input_sha256, host, run) of its approval, if any
    held: bool  # another run (any machine) holds it now


class RunRecords:
    def __init__(self, url: str, clock: Callable[[], float] = time.time, readonly: bool = False) -> None:
        self.url = url
        self.clock = clock
        self.readonly = readonly  # --dry-run: create nothing, not even the schema
        self.host = socket.gethostname()[:100]
        self._conn: Any = None
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._conn is None:
            self._conn = connect_prepared(self.url, self._prepare)

    def _prepare(self, conn: Any) -> None:
        if self.readonly:
            conn.execute("SET default_transaction_read_only = on")
        else:
            ensure_team_schema(conn, self.url)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

    def __enter__(self) -> RunRecords:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _best_effort(self, sql: str, params: tuple[Any, ...], run: str) -> bool:
        with self._lock:
            if self._conn is None:
                return False
            try:
                self._conn.execute(sql, params)
                self._conn.execute("SELECT pg_notify(%s, %s)", (RUNS_CHANNEL, run))
            except Exception:
                return False
            return True

    # -- the coordinator's side ----------------------------------------------------
    def start(self, run: str, workspace: str, workflow: str, command: str, items: int) -> None:
        self.open()
        with self._lock:
            self._conn.execute(
                "INSERT INTO agentos.runs (run, host, username, pid, workspace, workflow, command, items, started) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run) DO NOTHING",
                (
                    run,
                    self.host,
                    _user(),
                    os.getpid(),
                    workspace,
                    workflow,
                    command[:2000],
                    items,
                    self.clock(),
                ),
            )
            self._conn.execute(
                "SELECT pg_advisory_lock(%s)", (lock_key("run", run),)
            )  # going while connected
            self._conn.execute("SELECT pg_notify(%s, %s)", (RUNS_CHANNEL, run))

    def item_event(
        self, run: str, item: str, status: str, rounds: int, output: str | None, error: str | None
    ) -> bool:
        return self._best_effort(
            "INSERT INTO agentos.item_events (run, item, status, at, host, rounds, output, error) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (run, item, status, self.clock(), self.host, rounds, output, (error or "")[:2000] or None),
            run,
        )

    def finish(self, run: str, exit_code: int, totals: Mapping[str, int]) -> bool:
        return self._best_effort(
            "UPDATE agentos.runs SET ended = %s, exit_code = %s, totals = %s WHERE run = %s",
            (self.clock(), exit_code, json.dumps(dict(totals)), run),
            run,
        )

    # -- readers (`agentos runs`, `show`, `pull`, the dashboard) -----------------------
    def has_records(self) -> bool:
        """Whether any run ever wrote to this backend (a reader creates no schema)."""
        self.open()
        return bool(self._conn.execute("SELECT to_regclass('agentos.runs') IS NOT NULL").fetchone()[0])

    def newest(self) -> str:
        """A value that moves with every new run or item event (for a reader that lost its
        LISTEN session)."""
        self.open()
        row = self._conn.execute(
            "SELECT (SELECT max(id) FROM agentos.item_events), (SELECT count(*) FROM agentos.runs)"
        ).fetchone()
        return f"{row[0]}:{row[1]}"

    def runs(self, limit: int) -> list[TeamRun]:
        self.open()
        rows = self._conn.execute(
            "SELECT run, host, username, workspace, workflow, items, started, ended, exit_code, totals "
            "FROM agentos.runs ORDER BY started DESC LIMIT %s",
            (limit,),
        ).fetchall()
        found = []
        for run, host, user, workspace, workflow, items, started, ended, code, totals in rows:
            going = self._conn.execute(f"SELECT {held_anywhere(lock_key('run', run))}").fetchone()[0]
            found.append(
                TeamRun(
                    run, host, user, workspace, workflow, items, started, ended, code, _counts(totals), going
                )
            )
        return found

    def find(self, run: str) -> TeamRun | None:
        self.open()
        return next((r for r in self.runs(10_000) if r.run == run or r.run.startswith(run + "@")), None)

    def events(self, run: str) -> list[ItemEvent]:
        self.open()
        rows = self._conn.execute(
            "SELECT item, status, at, host, rounds, output, error FROM agentos.item_events WHERE run = %s ORDER BY id",
            (run,),
        ).fetchall()
        return [ItemEvent(*row) for row in rows]

    def result(self, workspace: str, workflow: str, item: str) -> tuple[str, str, str, dict[str, str]] | None:
        """(status, host, run, files) of the item's last recorded result in this workspace."""
        self.open()
        row = self._conn.execute(
            "SELECT status, host, run, files FROM agentos.item_results WHERE workspace = %s AND workflow = %s "
            "AND item = %s",
            (workspace, workflow, item),
        ).fetchone()
        if row is None:
            return None
        files = row[3] if isinstance(row[3], dict) else {}
        return row[0], row[1], row[2], {str(k): str(v) for k, v in files.items() if isinstance(v, str)}

    def plan_view(self, workspace: str, workflow: str, items: list[str]) -> dict[str, PlanView]:
        """Read-only, for --dry-run: each item's backend checkpoint mark, result and holder."""
        from agentos.backend.postgres.item_ownership import item_key, worker_key

        self.open()
        if not self._conn.execute("SELECT to_regclass('agentos.checkpoint_marks') IS NOT NULL").fetchone()[0]:
            return {}
        marks = dict(
            self._conn.execute(
                "SELECT item, input_sha256 FROM agentos.checkpoint_marks WHERE workspace = %s AND workflow = %s",
                (workspace, workflow),
            ).fetchall()
        )
        done = self.done_items(workspace, workflow)
        found = {}
        for item in items:
            held = any(
                self._conn.execute(f"SELECT {held_anywhere(key(workspace, workflow, item))}").fetchone()[0]
                for key in (item_key, worker_key)
            )
            found[item] = PlanView(marks.get(item), done.get(item), held)
        return found

    def kept_threads(self) -> list[KeptThread]:
        """Every checkpoint kept in the backend (any workspace, any machine), oldest first."""
        self.open()
        if not self._conn.execute("SELECT to_regclass('agentos.checkpoint_marks') IS NOT NULL").fetchone()[0]:
            return []
        rows = self._conn.execute(
            "SELECT workspace, workflow, item, host, created FROM agentos.checkpoint_marks ORDER BY created"
        ).fetchall()
        return [KeptThread(*row) for row in rows]

    def kept_items(self, workspace: str, workflow: str) -> set[str]:
        """Items of this workspace with a checkpoint kept in the backend (any machine's)."""
        self.open()
        rows = self._conn.execute(
            "SELECT item FROM agentos.checkpoint_marks WHERE workspace = %s AND workflow = %s",
            (workspace, workflow),
        ).fetchall()
        return {str(row[0]) for row in rows}

    def done_items(self, workspace: str, workflow: str) -> dict[str, tuple[str, str, str]]:
        """{item: (input_sha256, host, run)} of every item approved in this workspace."""
        self.open()
        rows = self._conn.execute(
            "SELECT item, input_sha256, host, run FROM agentos.item_results WHERE workspace = %s "
            "AND workflow = %s AND status = 'approved'",
            (workspace, workflow),
        ).fetchall()
        return {item: (sha, host, run) for item, sha, host, run in rows}


def _counts(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}
