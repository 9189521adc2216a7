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
from collections.abc import Iterator
from typing import Any

from agentos.backend.postgres.connection import BackendUnavailable, described

TEAM_SCHEMA_VERSION = 1
LOCK_SPACE = 0x4147  # as the key ledger's: "AG"
SCHEMA_LOCK = 1  # (LOCK_SPACE, SCHEMA_LOCK): held while a schema is set up
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
    """SQL: is the one-key advisory lock `key` held by some session (pg_locks splits it)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return (
        "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
        f"AND l.classid = {unsigned >> 32} AND l.objid = {unsigned & 0xFFFFFFFF} AND l.objsubid = 1)"
    )


def ensure_team_schema(conn: Any, url: str) -> None:
    """Create the team tables if missing; refuse (BackendUnavailable) a newer version, untouched."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, SCHEMA_LOCK))
        exists = conn.execute("SELECT to_regclass('agentos.meta') IS NOT NULL").fetchone()
        if _first(exists):
            row = conn.execute("SELECT value FROM agentos.meta WHERE name = 'team_schema'").fetchone()
            value = str(_first(row)) if row is not None else "0"
            version = int(value) if value.isdigit() else 0
            if version > TEAM_SCHEMA_VERSION:
                raise BackendUnavailable(
                    described(url),
                    f"its team schema is version {version}, written by a newer agentos; "
                    "upgrade agentos on this machine (nothing was changed)",
                )
            if version == TEAM_SCHEMA_VERSION:
                return
        for statement in filter(str.strip, TEAM_SCHEMA.split(";")):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO agentos.meta (name, value) VALUES ('team_schema', %s) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(TEAM_SCHEMA_VERSION),),
        )


@contextlib.contextmanager
def schema_lock(conn: Any) -> Iterator[None]:
    """The schema lock at session level: for set-ups that run their own statements (LangGraph's
    migrations hold `CREATE INDEX CONCURRENTLY`, which no transaction may hold)."""
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_SPACE, SCHEMA_LOCK))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, SCHEMA_LOCK))


def _first(row: Any) -> Any:
    """The first column of a row, whatever the connection's row factory (tuple or dict)."""
    if row is None:
        return None
    if isinstance(row, dict):
        return next(iter(row.values()))
    return row[0]
