"""The team tables (issue 23): checkpoint marks, filings, run records, item events and results.

Versioned apart from the key ledger's tables (`agentos.meta` row `team_schema`), created
idempotently under the same transaction-level advisory lock, and refused untouched when a
newer agentos wrote them. LangGraph's own checkpoint tables (`PostgresSaver.setup()`) live in
the same `agentos` schema, set up under a session advisory lock so two machines starting at
once do not race its migrations.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from agentos.backend.postgres.connection import BackendUnavailable, described

TEAM_SCHEMA_VERSION = 1
LOCK_SPACE = 0x4147  # as the key ledger's: "AG"
SCHEMA_LOCK = 1  # (LOCK_SPACE, SCHEMA_LOCK): held while a schema is set up
# (LOCK_SPACE, n >= 2) are the key ledger's run locks: LangGraph's set-up has a one-key lock
SAVER_LOCK_NAME = "langgraph-setup"
SEARCH_PATH = "-c search_path=agentos"  # LangGraph's tables are unqualified: they go into `agentos`

TEAM_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS agentos;
CREATE TABLE IF NOT EXISTS agentos.meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agentos.checkpoint_marks (
    thread_id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    item TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    agentos_version TEXT NOT NULL,
    host TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS agentos.filings (
    workspace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    item TEXT NOT NULL,
    token TEXT NOT NULL,
    number INTEGER,
    host TEXT NOT NULL,
    run TEXT NOT NULL,
    claimed DOUBLE PRECISION NOT NULL,
    filed DOUBLE PRECISION,
    PRIMARY KEY (workspace, workflow, item, token)
);
CREATE TABLE IF NOT EXISTS agentos.runs (
    run TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    username TEXT NOT NULL,
    pid INTEGER NOT NULL,
    workspace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    command TEXT NOT NULL DEFAULT '',
    items INTEGER NOT NULL DEFAULT 0,
    started DOUBLE PRECISION NOT NULL,
    ended DOUBLE PRECISION,
    exit_code INTEGER,
    totals JSONB
);
CREATE TABLE IF NOT EXISTS agentos.item_events (
    id BIGSERIAL PRIMARY KEY,
    run TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    host TEXT NOT NULL,
    rounds INTEGER NOT NULL DEFAULT 0,
    output TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS item_events_by_run ON agentos.item_events (run, id);
CREATE TABLE IF NOT EXISTS agentos.item_results (
    workspace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    item TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    run TEXT NOT NULL,
    host TEXT NOT NULL,
    finished DOUBLE PRECISION NOT NULL,
    output TEXT,
    files JSONB NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (workspace, workflow, item)
)
"""


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for `parts` (sha256-based: stable on every machine)."""
    digest = hashlib.sha256("\x1f".join(("agentos", *parts)).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def held_anywhere(key: int) -> str:
    """SQL: is the one-key advisory lock `key` held by some session of this database (pg_locks
    lists every database's, and splits a `bigint` key into classid and objid)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return (
        "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"AND l.classid = {unsigned >> 32} AND l.objid = {unsigned & 0xFFFFFFFF} AND l.objsubid = 1)"
    )


def apply_schema(conn: Any, url: str, name: str, version: int, ddl: str, label: str) -> None:
    """Create a versioned schema's tables if missing, inside the caller's transaction, under
    the schema lock; a version written by a newer agentos is refused (BackendUnavailable) and
    nothing is touched. `name` is its row in `agentos.meta`; `label` names it in the refusal."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, SCHEMA_LOCK))
    exists = conn.execute("SELECT to_regclass('agentos.meta') IS NOT NULL").fetchone()
    if _first(exists):
        row = conn.execute("SELECT value FROM agentos.meta WHERE name = %s", (name,)).fetchone()
        value = str(_first(row)) if row is not None else "0"
        found = int(value) if value.isdigit() else 0
        if found > version:
            raise BackendUnavailable(
                described(url),
                f"its {label} schema is version {found}, written by a newer agentos; "
                "upgrade agentos on this machine (nothing was changed)",
            )
        if found == version:
            return
    for statement in filter(str.strip, ddl.split(";")):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO agentos.meta (name, value) VALUES (%s, %s) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, str(version)),
    )


def ensure_team_schema(conn: Any, url: str) -> None:
    """Create the team tables if missing; refuse (BackendUnavailable) a newer version, untouched."""
    with conn.transaction():
        apply_schema(conn, url, "team_schema", TEAM_SCHEMA_VERSION, TEAM_SCHEMA, "team")


SAVER_READY = "agentos_saver_ready"  # NOTIFY channel: LangGraph's tables were just set up
SAVER_WAIT_S = 5.0  # a holder that died without a NOTIFY: look again after this long


def setup_saver(saver: Any, conn: Any) -> None:
    """LangGraph's checkpoint tables, set up once per database: when its migrations are all
    recorded, nothing is run. Otherwise one session sets them up, under a lock of its own, and
    the others wait for its NOTIFY, idle. They must not wait inside a statement: its
    migrations hold `CREATE INDEX CONCURRENTLY`, which waits for every open snapshot, so a
    session blocked in `pg_advisory_lock` would be a deadlock."""
    if _saver_ready(saver, conn):
        return
    conn.execute(f"LISTEN {SAVER_READY}")
    try:
        while not _saver_ready(saver, conn):
            if _first(
                conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(SAVER_LOCK_NAME),)).fetchone()
            ):
                try:
                    if not _saver_ready(saver, conn):
                        saver.setup()
                    conn.execute(f"NOTIFY {SAVER_READY}")
                finally:
                    with contextlib.suppress(Exception):
                        conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(SAVER_LOCK_NAME),))
                return
            for _ in conn.notifies(timeout=SAVER_WAIT_S, stop_after=1):
                pass
    finally:
        with contextlib.suppress(Exception):
            conn.execute(f"UNLISTEN {SAVER_READY}")


def _saver_ready(saver: Any, conn: Any) -> bool:
    if not _first(conn.execute("SELECT to_regclass('agentos.checkpoint_migrations') IS NOT NULL").fetchone()):
        return False
    latest = _first(conn.execute("SELECT max(v) FROM agentos.checkpoint_migrations").fetchone())
    return latest is not None and int(latest) >= len(saver.MIGRATIONS) - 1


def _first(row: Any) -> Any:
    """The first column of a row, whatever the connection's row factory (tuple or dict)."""
    if row is None:
        return None
    if isinstance(row, dict):
        return next(iter(row.values()))
    return row[0]
