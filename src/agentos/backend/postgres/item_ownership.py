"""One owner per item across every machine: session-level advisory locks (issue 23).

Two locks per (workspace identity, workflow, item), as with the machine's `flock`s
(`workflows.item_lock`): the coordinator's, held from the item's first attempt to its final
outcome (across credential retries, when one worker ends and the next resumes), and the
worker's, held by the worker process for its life on the very connection that writes the
item's checkpoints. Both die with their session: `kill -9` of a machine, a network gone, or
`pg_terminate_backend` frees the item for the next run, on any machine; no lease to expire,
no polling.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from agentos.backend.postgres.connection import connect_prepared, is_connection_lost
from agentos.backend.postgres.team_schema import ensure_team_schema, held_anywhere, lock_key


def item_key(identity: str, workflow: str, item: str) -> int:
    """The coordinator's lock on an item (one owner across machines)."""
    return lock_key("item", identity, workflow, item)


def worker_key(identity: str, workflow: str, item: str) -> int:
    """The worker's lock on an item: an orphan of a killed coordinator still has it."""
    return lock_key("item-worker", identity, workflow, item)


class ItemOwnership:
    """The coordinator's side: one connection, many item locks; thread-safe (one supervisor
    thread per running item). A lost connection loses every lock: `alive()` says so."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn: Any = None
        self._held: set[int] = set()

    def open(self) -> None:
        with self._lock:
            if self._conn is None:
                self._conn = connect_prepared(self.url, lambda conn: ensure_team_schema(conn, self.url))

    def try_take(self, identity: str, workflow: str, item: str) -> bool:
        """True when this run now owns the item: nobody held its lock, nor its worker lock
        (an orphaned worker of a killed coordinator still finishing it)."""
        key, worker = item_key(identity, workflow, item), worker_key(identity, workflow, item)
        with self._lock:
            if key in self._held:
                return True
            conn = self._conn
            if conn is None:
                return False
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                return False
            if conn.execute(f"SELECT {held_anywhere(worker)}").fetchone()[0]:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                return False
            self._held.add(key)
            return True

    def release(self, identity: str, workflow: str, item: str) -> None:
        key = item_key(identity, workflow, item)
        with self._lock:
            if key not in self._held:
                return
            self._held.discard(key)
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def alive(self) -> bool:
        """Is the session (so every lock it holds) still there? One round trip."""
        with self._lock:
            if self._conn is None:
                return False
            try:
                self._conn.execute("SELECT 1").fetchone()
            except Exception as exc:
                if is_connection_lost(exc):
                    return False
                raise
            return True

    def close(self) -> None:
        with self._lock:
            self._held.clear()
            if self._conn is not None:
                with contextlib.suppress(Exception):  # at once, not when the server ends the session
                    self._conn.execute("SELECT pg_advisory_unlock_all()")
                with contextlib.suppress(Exception):
                    self._conn.close()  # every item lock goes with the session anyway
                self._conn = None
