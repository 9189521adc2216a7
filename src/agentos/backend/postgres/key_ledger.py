"""The key ledger on Postgres: every machine's runs share each key's budget (issue 23).

The same interface and rules as the local ledger (`backend.local.key_ledger`), on the
engine's own tools instead of file locks and pids:

- A run's liveness is a session-level advisory lock, `(LOCK_SPACE, run number)`, held on
  its connection for the run's life. It dies with the connection: a machine killed with
  `kill -9`, or a connection ended by `pg_terminate_backend`, leaves no live mark, and the
  other runs time its calls in flight out at `granted_at + window`.
- The schema is versioned (`agentos.meta`), created idempotently under a transaction-level
  advisory lock, and one written by a newer agentos is refused untouched.
- Only fingerprints, names and times are stored: the secrets stay on each machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from agentos.backend.key_ledger import (
    KEEP_HISTORY_S,
    REJECTED_FOR_S,
    WAITER_SLACK_S,
    WAITER_STALE_S,
    BoundAdmission,
    Capacity,
    KeyActivity,
    KeyAdmission,
    KeyMarks,
    KeyModel,
    KeyRef,
    Slot,
    as_count,
    bounded_text,
    finite,
    model_from_row,
)
from agentos.backend.postgres.connection import connect
from agentos.backend.postgres.team_schema import LOCK_SPACE, apply_schema

SCHEMA_VERSION = 1

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS agentos;
CREATE TABLE IF NOT EXISTS agentos.meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE SEQUENCE IF NOT EXISTS agentos.run_numbers MINVALUE 2 MAXVALUE 2147483647 CYCLE;
CREATE TABLE IF NOT EXISTS agentos.key_runs (
    run TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started DOUBLE PRECISION NOT NULL,
    what TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS agentos.keys (
    fp TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    cooldown_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    quota_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    rejected_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    rejected TEXT,
    limit_n INTEGER,
    window_s DOUBLE PRECISION,
    limit_from TEXT,
    strict BOOLEAN NOT NULL DEFAULT false,
    updated DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agentos.key_calls (
    run TEXT NOT NULL,
    call INTEGER NOT NULL,
    fp TEXT NOT NULL,
    granted_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    outcome TEXT,
    latency_s DOUBLE PRECISION,
    PRIMARY KEY (run, call)
);
CREATE INDEX IF NOT EXISTS key_calls_by_key ON agentos.key_calls (fp, expires_at);
CREATE TABLE IF NOT EXISTS agentos.key_waiting (
    run TEXT NOT NULL,
    provider TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    seen DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run, provider)
)
"""

# Whether the run that owns a row is alive: its advisory lock is held by some session.
ALIVE = (
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    f"AND l.classid = {LOCK_SPACE} AND l.objid = r.number AND l.objsubid = 2)"
)


class PostgresKeyLedger:
    """One connection, guarded by a lock (the coordinator's threads share it), in autocommit
    with explicit short transactions; opened lazily, set up idempotently."""

    def __init__(
        self, url: str, *, run: str | None = None, what: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self.url = url
        self.clock = clock
        self.host = socket.gethostname()[:100]
        self.pid = os.getpid()
        self.run = run or f"{self.host}:{self.pid}:{int(clock() * 1000)}"
        self.what = bounded_text(what, 200)
        self._lock = threading.Lock()
        self._conn: Any = None

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> PostgresKeyLedger:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()  # the run's advisory lock goes with its session
                self._conn = None

    def _connect(self) -> Any:
        conn = connect(self.url)
        try:
            with conn.transaction():
                apply_schema(conn, self.url, "key_ledger_schema", SCHEMA_VERSION, SCHEMA, "key ledger")
                number = conn.execute("SELECT nextval('agentos.run_numbers')::int").fetchone()[0]
                conn.execute(
                    "INSERT INTO agentos.key_runs (run, number, host, pid, started, what) VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (run) DO UPDATE SET number = excluded.number",
                    (self.run, number, self.host, self.pid, self.clock(), self.what),
                )
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_SPACE, number))  # alive while connected
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            with self._conn.transaction():
                yield self._conn

    # -- marks ---------------------------------------------------------------------
    def register(self, keys: Sequence[KeyRef]) -> None:
        with self._tx() as conn:
            for key in keys:
                self._ensure(conn, key)

    def marks(self, fps: Sequence[str]) -> dict[str, KeyMarks]:
        if not fps:
            return {}
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT fp, cooldown_until, quota_until, rejected_at, rejected FROM agentos.keys WHERE fp = ANY(%s)",
                (list(fps),),
            ).fetchall()
        now = self.clock()
        found: dict[str, KeyMarks] = {}
        for fp, cooldown, quota, rejected_at, rejected in rows:
            recent = rejected is not None and 0 <= now - finite(rejected_at) < REJECTED_FOR_S
            found[fp] = KeyMarks(
                finite(cooldown),
                finite(quota),
                finite(rejected_at) if recent else 0.0,
                rejected if recent else None,
            )
        return found

    def mark(
        self,
        key: KeyRef,
        *,
        cooldown_until: float = 0.0,
        quota_until: float = 0.0,
        rejected: str | None = None,
    ) -> None:
        now = self.clock()
        with self._tx() as conn:
            self._ensure(conn, key)
            conn.execute(
                "UPDATE agentos.keys SET cooldown_until = GREATEST(cooldown_until, %s), "
                "quota_until = GREATEST(quota_until, %s), updated = %s WHERE fp = %s",
                (finite(cooldown_until), finite(quota_until), now, key.fp),
            )
            if rejected is not None:
                conn.execute(
                    "UPDATE agentos.keys SET rejected_at = %s, rejected = %s WHERE fp = %s",
                    (now, bounded_text(rejected), key.fp),
                )

    # -- what was learned ----------------------------------------------------------
    def model(self, fp: str) -> KeyModel | None:
        with self._tx() as conn:
            return _model(conn, fp)

    def learn(self, key: KeyRef, model: KeyModel) -> None:
        with self._tx() as conn:
            self._ensure(conn, key)
            conn.execute(
                "UPDATE agentos.keys SET limit_n = %s, window_s = %s, limit_from = %s, strict = strict OR %s, "
                "updated = %s WHERE fp = %s",
                (
                    model.limit,
                    model.window_s,
                    bounded_text(model.limit_from, 20),
                    model.strict,
                    self.clock(),
                    key.fp,
                ),
            )

    # -- call slots ----------------------------------------------------------------
    def hold(self, key: KeyRef, call: int, granted_at: float) -> None:
        with self._tx() as conn:
            self._ensure(conn, key)
            self._hold(conn, key.fp, call, granted_at)

    @contextlib.contextmanager
    def admission(self, key: KeyRef) -> Iterator[KeyAdmission]:
        """The key's row lock (`FOR UPDATE`), held for one decision: a run on any machine that
        decides on the same key waits for it, and the lock dies with our session."""
        with self._tx() as conn:
            self._ensure(conn, key)
            conn.execute("SELECT 1 FROM agentos.keys WHERE fp = %s FOR UPDATE", (key.fp,))
            yield BoundAdmission(
                model=lambda: _model(conn, key.fp),
                blocked_until=lambda: _blocked_until(conn, key.fp),
                others=lambda now, window: self._others(conn, key.fp, now, window),
                hold=lambda call, at: self._hold(conn, key.fp, call, at),
            )

    def _hold(self, conn: Any, fp: str, call: int, granted_at: float) -> None:
        conn.execute(
            "INSERT INTO agentos.key_calls (run, call, fp, granted_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (run, call) DO UPDATE SET fp = excluded.fp, granted_at = excluded.granted_at, "
            "expires_at = NULL, outcome = NULL",
            (self.run, call, fp, granted_at),
        )

    def settle(
        self, fp: str, call: int, expires_at: float, outcome: str, latency_s: float | None = None
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE agentos.key_calls SET expires_at = %s, outcome = %s, latency_s = %s WHERE run = %s AND call = %s",
                (finite(expires_at), bounded_text(outcome, 20), latency_s, self.run, call),
            )

    def others(self, fp: str, now: float, window_s: float | None) -> list[Slot]:
        with self._tx() as conn:
            return self._others(conn, fp, now, window_s)

    def _others(self, conn: Any, fp: str, now: float, window_s: float | None) -> list[Slot]:
        window = window_s if window_s is not None else 60.0
        rows = conn.execute(
            f"SELECT c.run, c.granted_at, c.expires_at, c.outcome, {ALIVE} FROM agentos.key_calls c "
            "LEFT JOIN agentos.key_runs r ON r.run = c.run "
            "WHERE c.fp = %s AND c.run != %s AND (c.expires_at IS NULL OR c.expires_at > %s OR c.granted_at > %s)",
            (fp, self.run, now, now - window),
        ).fetchall()
        slots = []
        for run, granted_at, expires_at, outcome, alive in rows:
            if outcome == "rate_limited":
                continue
            if expires_at is None and not alive:
                expires_at = finite(granted_at) + window
                if expires_at <= now:
                    continue
            slots.append(Slot(str(run), finite(granted_at), expires_at, outcome))
        return slots

    def capacity(self, fps: Sequence[str], now: float) -> Capacity:
        if not fps:
            return Capacity(None, None, 0)
        with self._tx() as conn:
            models = conn.execute(
                "SELECT limit_n, window_s FROM agentos.keys WHERE fp = ANY(%s) AND limit_n IS NOT NULL",
                (list(fps),),
            ).fetchall()
            latencies = [
                row[0]
                for row in conn.execute(
                    "SELECT latency_s FROM agentos.key_calls WHERE fp = ANY(%s) AND outcome = 'ok' AND granted_at > %s "
                    "AND latency_s IS NOT NULL ORDER BY granted_at DESC LIMIT 500",
                    (list(fps), now - KEEP_HISTORY_S),
                ).fetchall()
            ]
        rates = [limit / window for limit, window in models if as_count(limit) and finite(window) > 0]
        known = sorted(x for x in (finite(v) for v in latencies) if 0 < x < 3600)
        rate = sum(rates) if len(rates) == len(fps) else None
        return Capacity(rate, known[len(known) // 2] if known else None, len(known))

    # -- fairness among runs -------------------------------------------------------
    def wait(self, provider: str, since: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO agentos.key_waiting (run, provider, since, seen) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (run, provider) DO UPDATE SET since = excluded.since, seen = excluded.seen",
                (self.run, bounded_text(provider, 40), since, self.clock()),
            )

    def unwait(self, provider: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM agentos.key_waiting WHERE run = %s AND provider = %s",
                (self.run, bounded_text(provider, 40)),
            )

    def earlier_waiter(self, provider: str, since: float) -> bool:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT 1 FROM agentos.key_waiting WHERE provider = %s AND run != %s AND since < %s AND seen > %s LIMIT 1",
                (bounded_text(provider, 40), self.run, since - WAITER_SLACK_S, self.clock() - WAITER_STALE_S),
            ).fetchone()
        return row is not None

    # -- for `agentos keys` --------------------------------------------------------
    def activity(self, now: float) -> list[KeyActivity]:
        with self._tx() as conn:
            keys = conn.execute(
                "SELECT fp, provider, name, cooldown_until, quota_until, rejected_at, rejected, "
                "limit_n, window_s, limit_from, strict FROM agentos.keys ORDER BY provider, name"
            ).fetchall()
            counts = {
                fp: (calls, refused)
                for fp, calls, refused in conn.execute(
                    "SELECT fp, count(*), count(*) FILTER (WHERE outcome = 'rate_limited') FROM agentos.key_calls "
                    "WHERE granted_at > %s GROUP BY fp",
                    (now - KEEP_HISTORY_S,),
                ).fetchall()
            }
            using = conn.execute(
                f"SELECT DISTINCT c.fp, r.host, r.pid, r.what FROM agentos.key_calls c JOIN agentos.key_runs r "
                f"ON r.run = c.run WHERE (c.expires_at IS NULL OR c.expires_at > %s) AND {ALIVE}",
                (now,),
            ).fetchall()
        runs_now: dict[str, list[str]] = {}
        for fp, host, pid, what in using:
            runs_now.setdefault(str(fp), []).append(
                f"{bounded_text(host, 60)} pid {as_count(pid)}"
                + (f" ({bounded_text(what, 60)})" if what else "")
            )
        found = []
        for fp, provider, name, cooldown, quota, rejected_at, rejected, limit, window, source, strict in keys:
            model = (
                KeyModel(as_count(limit), finite(window) or None, bounded_text(source, 20), bool(strict))
                if source
                else None
            )
            calls, refused = counts.get(fp, (0, 0))
            recent = rejected is not None and 0 <= now - finite(rejected_at) < REJECTED_FOR_S
            found.append(
                KeyActivity(
                    KeyRef(bounded_text(fp, 40), bounded_text(provider, 40), bounded_text(name, 100)),
                    KeyMarks(
                        finite(cooldown),
                        finite(quota),
                        finite(rejected_at) if recent else 0.0,
                        bounded_text(rejected) if recent else None,
                    ),
                    model,
                    as_count(calls) or 0,
                    as_count(refused) or 0,
                    tuple(sorted(set(runs_now.get(str(fp), [])))),
                )
            )
        return found

    def prune(self, now: float) -> None:
        old = now - KEEP_HISTORY_S
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM agentos.key_calls WHERE expires_at IS NOT NULL AND expires_at < %s", (old,)
            )
            conn.execute("DELETE FROM agentos.key_waiting WHERE seen < %s", (now - 60.0,))
            conn.execute(
                f"DELETE FROM agentos.key_calls c USING agentos.key_runs r WHERE r.run = c.run AND NOT {ALIVE} "
                "AND c.expires_at IS NULL AND c.granted_at < %s",
                (old,),
            )
            conn.execute(
                f"DELETE FROM agentos.key_runs r WHERE NOT {ALIVE} "
                "AND NOT EXISTS (SELECT 1 FROM agentos.key_calls c WHERE c.run = r.run)"
            )

    # -- internals -----------------------------------------------------------------
    def _ensure(self, conn: Any, key: KeyRef) -> None:
        conn.execute(
            "INSERT INTO agentos.keys (fp, provider, name, updated) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (fp) DO UPDATE SET provider = excluded.provider, name = excluded.name",
            (key.fp, bounded_text(key.provider, 40), bounded_text(key.name, 100), self.clock()),
        )


def _model(conn: Any, fp: str) -> KeyModel | None:
    return model_from_row(
        conn.execute(
            "SELECT limit_n, window_s, limit_from, strict FROM agentos.keys WHERE fp = %s", (fp,)
        ).fetchone()
    )


def _blocked_until(conn: Any, fp: str) -> float:
    row = conn.execute("SELECT cooldown_until, quota_until FROM agentos.keys WHERE fp = %s", (fp,)).fetchone()
    return max(finite(row[0]), finite(row[1])) if row is not None else 0.0
