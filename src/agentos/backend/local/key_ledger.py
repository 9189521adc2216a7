"""The local key ledger: `$AGENTOS_HOME/keys.db`, SQLite in WAL mode (ADR 0011).

Short transactions (`BEGIN IMMEDIATE`, a 5 s busy timeout), so nothing here waits for a lock
another run could hold forever. The file is untrusted: a symlink, a folder, a foreign or
corrupt database is refused by name (`KeyLedgerRefused`, exit 2) and left untouched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

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
    LedgerCall,
    Slot,
    as_count,
    bounded_text,
    finite,
    model_from_row,
    pid_alive,
)
from agentos.core.errors import KeyLedgerRefused

SCHEMA_VERSION = 2
# What takes a ledger of an earlier schema to the next one, in order (`PRAGMA user_version`).
MIGRATIONS = {2: ("ALTER TABLE calls ADD COLUMN latency_s REAL",)}
APPLICATION_ID = 0x41474B4C  # "AGKL" in the SQLite header: this file is agentos's key ledger
BUSY_TIMEOUT_MS = 5000
SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    fp TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    cooldown_until REAL NOT NULL DEFAULT 0,
    quota_until REAL NOT NULL DEFAULT 0,
    rejected_at REAL NOT NULL DEFAULT 0,
    rejected TEXT,
    limit_n INTEGER,
    window_s REAL,
    limit_from TEXT,
    strict INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started REAL NOT NULL,
    what TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS calls (
    run TEXT NOT NULL,
    call INTEGER NOT NULL,
    fp TEXT NOT NULL,
    granted_at REAL NOT NULL,
    expires_at REAL,
    outcome TEXT,
    latency_s REAL,
    PRIMARY KEY (run, call)
);
CREATE INDEX IF NOT EXISTS calls_by_key ON calls (fp, expires_at);
CREATE TABLE IF NOT EXISTS waiting (
    run TEXT NOT NULL,
    provider TEXT NOT NULL,
    since REAL NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (run, provider)
);
"""


class SqliteKeyLedger:
    """The local ledger. One connection, guarded by a lock (the coordinator's threads share it);
    opened lazily and set up idempotently; `close()` or a `with` block ends it."""

    def __init__(
        self,
        path: Path,
        *,
        run: str | None = None,
        what: str = "",
        clock: Callable[[], float] = time.time,
        pid: int | None = None,
        readonly: bool = False,
    ) -> None:
        self.path = path
        self.readonly = readonly  # `agentos keys`: look, never write (and never create the file)
        self.clock = clock
        self.pid = os.getpid() if pid is None else pid
        self.host = socket.gethostname()[:100]
        self.run = run or f"{self.host}:{self.pid}:{int(clock() * 1000)}"
        self.what = bounded_text(what, 200)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> SqliteKeyLedger:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open (creating the file if need be), check it is ours, set it up. KeyLedgerRefused
        when it is not ours or is corrupt; the file is then left untouched."""
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            # Calls still in flight stay as they are: once this process is gone, `others` holds
            # them until the provider has let them go (granted_at + window).
            self._conn.close()
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        if path.is_symlink():
            raise KeyLedgerRefused(path, "it is a symlink")
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):
            raise KeyLedgerRefused(path, "it is not a regular file")
        existed = path.exists() and path.stat().st_size > 0
        if self.readonly and not path.exists():
            raise FileNotFoundError(path)
        try:
            if self.readonly:
                target: str | Path = f"{path.resolve().as_uri()}?mode=ro"
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                target = path
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                uri=self.readonly,
            )
        except sqlite3.Error as exc:
            raise KeyLedgerRefused(path, f"cannot open it ({exc})") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if existed and application_id != APPLICATION_ID and tables:
                raise KeyLedgerRefused(path, "it is a SQLite database that agentos did not create")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise KeyLedgerRefused(path, f"it was written by a newer agentos (schema {version})")
            if self.readonly:
                if application_id != APPLICATION_ID:
                    raise KeyLedgerRefused(path, "it is not an agentos key ledger")
                conn.execute("SELECT fp FROM keys LIMIT 1")  # corrupt pages fail here, not mid-listing
                return conn
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            with _transaction(conn):
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for step in range(version + 1, SCHEMA_VERSION + 1) if version else ():
                    for statement in MIGRATIONS.get(step, ()):
                        conn.execute(statement)
                for statement in filter(str.strip, SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute(
                    "INSERT OR REPLACE INTO runs (run, pid, host, started, what) VALUES (?, ?, ?, ?, ?)",
                    (self.run, self.pid, self.host, self.clock(), self.what),
                )
        except KeyLedgerRefused:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise KeyLedgerRefused(path, f"it is corrupt or not a database ({exc})") from None
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            with _transaction(self._conn):
                yield self._conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            yield self._conn

    # -- marks ---------------------------------------------------------------------
    def register(self, keys: Sequence[KeyRef]) -> None:
        """The keys a run will use: listed by `agentos keys` from now on, under these names."""
        with self._tx() as conn:
            for key in keys:
                self._ensure(conn, key)

    def marks(self, fps: Sequence[str]) -> dict[str, KeyMarks]:
        if not fps:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT fp, cooldown_until, quota_until, rejected_at, rejected FROM keys "
                f"WHERE fp IN ({','.join('?' * len(fps))})",
                list(fps),
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
        """Record what happened to a key; a later mark never shortens an earlier one."""
        now = self.clock()
        with self._tx() as conn:
            self._ensure(conn, key)
            conn.execute(
                "UPDATE keys SET cooldown_until = max(cooldown_until, ?), quota_until = max(quota_until, ?), "
                "updated = ? WHERE fp = ?",
                (finite(cooldown_until), finite(quota_until), now, key.fp),
            )
            if rejected is not None:
                conn.execute(
                    "UPDATE keys SET rejected_at = ?, rejected = ? WHERE fp = ?",
                    (now, bounded_text(rejected), key.fp),
                )

    # -- what was learned ----------------------------------------------------------
    def model(self, fp: str) -> KeyModel | None:
        with self._read() as conn:
            return _model(conn, fp)

    def learn(self, key: KeyRef, model: KeyModel) -> None:
        """What one run learned of a key's limit, for every run: the latest reading (a limit
        read from headers is the provider's word; a learned one grows back), and strict once any
        run was surprised by a 429."""
        with self._tx() as conn:
            self._ensure(conn, key)
            conn.execute(
                "UPDATE keys SET limit_n = ?, window_s = ?, limit_from = ?, strict = max(strict, ?), updated = ? "
                "WHERE fp = ?",
                (
                    model.limit,
                    model.window_s,
                    bounded_text(model.limit_from, 20),
                    int(model.strict),
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
        """An IMMEDIATE transaction: the store's write lock, held for one decision (well under
        a millisecond), so that no other run holds a slot between our read and our hold."""
        with self._tx() as conn:
            self._ensure(conn, key)
            yield BoundAdmission(
                model=lambda: _model(conn, key.fp),
                blocked_until=lambda: _blocked_until(conn, key.fp),
                others=lambda now, window: self._others(conn, key.fp, now, window),
                hold=lambda call, at: self._hold(conn, key.fp, call, at),
            )

    def _hold(self, conn: sqlite3.Connection, fp: str, call: int, granted_at: float) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO calls (run, call, fp, granted_at, expires_at, outcome) "
            "VALUES (?, ?, ?, ?, NULL, NULL)",
            (self.run, call, fp, granted_at),
        )

    def settle(
        self, fp: str, call: int, expires_at: float, outcome: str, latency_s: float | None = None
    ) -> None:
        """The call's answer came (or its worker went away): its slot ends at `expires_at`;
        `latency_s`: from grant to answer, for `--parallel auto`."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE calls SET expires_at = ?, outcome = ?, latency_s = ? WHERE run = ? AND call = ?",
                (finite(expires_at), bounded_text(outcome, 20), latency_s, self.run, call),
            )

    def capacity(self, fps: Sequence[str], now: float) -> Capacity:
        """What these keys can carry, as measured: calls per second where their limits are
        known, and the median latency of their answered calls in the last hour."""
        if not fps:
            return Capacity(None, None, 0)
        marks = ",".join("?" * len(fps))
        with self._read() as conn:
            models = conn.execute(
                f"SELECT limit_n, window_s FROM keys WHERE fp IN ({marks}) AND limit_n IS NOT NULL", list(fps)
            ).fetchall()
            latencies = [
                row[0]
                for row in conn.execute(
                    f"SELECT latency_s FROM calls WHERE fp IN ({marks}) AND outcome = 'ok' AND granted_at > ? "
                    "AND latency_s IS NOT NULL ORDER BY granted_at DESC LIMIT 500",
                    [*fps, now - KEEP_HISTORY_S],
                ).fetchall()
            ]
        rates = [limit / window for limit, window in models if as_count(limit) and finite(window) > 0]
        known = [x for x in (finite(v) for v in latencies) if 0 < x < 3600]
        median = sorted(known)[len(known) // 2] if known else None
        rate = sum(rates) if len(rates) == len(fps) else None  # every key's limit known, or no rate
        return Capacity(rate, median, len(known))

    def others(self, fp: str, now: float, window_s: float | None) -> list[Slot]:
        """Other runs' slots on this key still held at `now`, and their calls sent within the
        last `window` (a run that knew no limit let its slots go at once; one that learns it
        counts them). A dead run's calls in flight are held until the provider has let them
        go: `granted_at + window` (a minute if unknown)."""
        with self._read() as conn:
            return self._others(conn, fp, now, window_s)

    def _others(self, conn: sqlite3.Connection, fp: str, now: float, window_s: float | None) -> list[Slot]:
        window = window_s if window_s is not None else 60.0
        rows = conn.execute(
            "SELECT calls.run, calls.granted_at, calls.expires_at, runs.pid, runs.host, calls.outcome FROM calls "
            "LEFT JOIN runs ON runs.run = calls.run "
            "WHERE calls.fp = ? AND calls.run != ? "
            "AND (calls.expires_at IS NULL OR calls.expires_at > ? OR calls.granted_at > ?)",
            (fp, self.run, now, now - window),
        ).fetchall()
        slots = []
        for run, granted_at, expires_at, pid, host, outcome in rows:
            if outcome == "rate_limited":
                continue  # refused: the provider does not count it
            if expires_at is None:
                alive = pid is not None and (host != self.host or pid_alive(int(pid)))
                if not alive:
                    expires_at = finite(granted_at) + window
                    if expires_at <= now:
                        continue
            slots.append(Slot(str(run), finite(granted_at), expires_at, outcome))
        return slots

    # -- fairness among runs -------------------------------------------------------
    def wait(self, provider: str, since: float) -> None:
        """This run's oldest call for `provider` has waited since `since`; refreshed while it waits."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO waiting (run, provider, since, seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run, provider) DO UPDATE SET since = excluded.since, seen = excluded.seen",
                (self.run, bounded_text(provider, 40), since, self.clock()),
            )

    def unwait(self, provider: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM waiting WHERE run = ? AND provider = ?", (self.run, bounded_text(provider, 40))
            )

    def earlier_waiter(self, provider: str, since: float) -> bool:
        """Whether another run's call for `provider` has waited longer than ours: it goes first.
        A waiter not seen for WAITER_STALE_S (a run killed, or stuck) is passed over."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT 1 FROM waiting WHERE provider = ? AND run != ? AND since < ? AND seen > ? LIMIT 1",
                (bounded_text(provider, 40), self.run, since - WAITER_SLACK_S, self.clock() - WAITER_STALE_S),
            ).fetchone()
        return row is not None

    # -- for `agentos keys` --------------------------------------------------------
    def activity(self, now: float) -> list[KeyActivity]:
        since = now - KEEP_HISTORY_S
        with self._read() as conn:
            keys = conn.execute(
                "SELECT fp, provider, name, cooldown_until, quota_until, rejected_at, rejected, "
                "limit_n, window_s, limit_from, strict FROM keys ORDER BY provider, name"
            ).fetchall()
            counts = {
                fp: (calls, refused)
                for fp, calls, refused in conn.execute(
                    "SELECT fp, count(*), sum(outcome = 'rate_limited') FROM calls WHERE granted_at > ? GROUP BY fp",
                    (since,),
                ).fetchall()
            }
            using = conn.execute(
                "SELECT DISTINCT calls.fp, runs.run, runs.pid, runs.host, runs.what FROM calls "
                "JOIN runs ON runs.run = calls.run WHERE calls.expires_at IS NULL OR calls.expires_at > ?",
                (now,),
            ).fetchall()
        runs_now: dict[str, list[str]] = {}
        for fp, _run, pid, host, what in using:
            number = as_count(pid)
            if number is not None and (host != self.host or pid_alive(number)):
                runs_now.setdefault(str(fp), []).append(
                    f"pid {number}" + (f" ({bounded_text(what, 60)})" if what else "")
                )
        found = []
        for fp, provider, name, cooldown, quota, rejected_at, rejected, limit, window, source, strict in keys:
            model = None
            if source is not None:
                model = KeyModel(
                    as_count(limit),
                    finite(window) or None,
                    bounded_text(source, 20),
                    strict == 1,
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

    # -- internals -----------------------------------------------------------------
    def _ensure(self, conn: sqlite3.Connection, key: KeyRef) -> None:
        conn.execute(
            "INSERT INTO keys (fp, provider, name, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (fp) DO UPDATE SET provider = excluded.provider, name = excluded.name",
            (key.fp, bounded_text(key.provider, 40), bounded_text(key.name, 100), self.clock()),
        )

    def history(self, since: float, until: float, limit: int = 20_000) -> list[LedgerCall]:
        """Every run's calls granted between `since` and `until` (the last hour is kept), oldest
        first, at most `limit`: the dashboard's key pool over time. Read only."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT calls.fp, keys.provider, keys.name, runs.pid, runs.what, calls.granted_at, "
                "calls.latency_s, calls.outcome FROM calls "
                "LEFT JOIN keys ON keys.fp = calls.fp LEFT JOIN runs ON runs.run = calls.run "
                "WHERE calls.granted_at >= ? AND calls.granted_at <= ? ORDER BY calls.granted_at LIMIT ?",
                (since, until, max(0, limit)),
            ).fetchall()
        found = []
        for fp, provider, name, pid, what, granted_at, latency, outcome in rows:
            number = as_count(pid)
            label = (f"pid {number}" if number is not None else "a run") + (
                f" ({bounded_text(what, 60)})" if what else ""
            )
            found.append(
                LedgerCall(
                    KeyRef(
                        bounded_text(fp, 40),
                        bounded_text(provider or "?", 40),
                        bounded_text(name or "?", 100),
                    ),
                    label,
                    finite(granted_at),
                    finite(latency) if latency is not None else None,
                    bounded_text(outcome, 20) if outcome is not None else None,
                )
            )
        return found

    def prune(self, now: float) -> None:
        """Drop what no run needs any more: answered calls older than the history kept, calls a
        killed run left in flight an hour ago, waiting marks of runs gone, and runs with no call."""
        old = now - KEEP_HISTORY_S
        with self._tx() as conn:
            conn.execute("DELETE FROM calls WHERE expires_at IS NOT NULL AND expires_at < ?", (old,))
            conn.execute("DELETE FROM waiting WHERE seen < ?", (now - 60.0,))
            for run, pid, host in conn.execute("SELECT run, pid, host FROM runs").fetchall():
                number = as_count(pid)
                gone = host == self.host and run != self.run and (number is None or not pid_alive(number))
                if not gone:
                    continue
                conn.execute(
                    "DELETE FROM calls WHERE run = ? AND expires_at IS NULL AND granted_at < ?", (run, old)
                )
                left = conn.execute("SELECT count(*) FROM calls WHERE run = ?", (run,)).fetchone()[0]
                if not left:
                    conn.execute("DELETE FROM runs WHERE run = ?", (run,))


def _model(conn: sqlite3.Connection, fp: str) -> KeyModel | None:
    return model_from_row(
        conn.execute("SELECT limit_n, window_s, limit_from, strict FROM keys WHERE fp = ?", (fp,)).fetchone()
    )


def _blocked_until(conn: sqlite3.Connection, fp: str) -> float:
    row = conn.execute("SELECT cooldown_until, quota_until FROM keys WHERE fp = ?", (fp,)).fetchone()
    return max(finite(row[0]), finite(row[1])) if row is not None else 0.0


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A short write transaction: IMMEDIATE, so two runs never deadlock upgrading a read."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
