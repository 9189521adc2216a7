"""Coordinator side of the permit channel: serve `BudgetBook` permits to the workers.

One thread accepts connections; each worker gets a thread that answers its `acquire`
(blocking until the book grants a key) and applies its `done` reports. A worker that goes
away while waiting is noticed within `MAX_WAIT_S` and leaves the queue; grants it never
reported are abandoned (counted as sent, to be safe). The socket lives in a fresh 0700
directory and every connection must prove it knows the run's random authentication key.

`AGENTOS_RATE_STRATEGY=reactive` turns pacing off: each item uses its reserved key until a
429, as before. The benchmark uses it to measure both strategies in the same run.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import threading
from enum import StrEnum
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path

from agentos import environment
from agentos.errors import ConfigError
from agentos.llm.rate_limits import Outcome, RateLimitInfo
from agentos.redaction import register_secret
from agentos.retry_hints import clamp_retry_after
from agentos.workflows.parallel.budget_book import BudgetBook
from agentos.workflows.permit_client import (
    ADDRESS_ENV,
    AUTHKEY_ENV,
    MAX_MESSAGE,
    PERMIT_AUTHKEY_NAME,
    STRATEGY_ENV,
    decode,
    encode,
    finite,
)

MAX_TOKENS_ESTIMATE = 10**9


class RateStrategy(StrEnum):
    PACED = "paced"  # each call waits for a permit from the coordinator's budgets
    REACTIVE = "reactive"  # the old way: use the item's key until a 429, then cool it down


def rate_strategy() -> RateStrategy:
    raw = environment.RATE_STRATEGY.get_stripped().lower()
    if not raw:
        return RateStrategy.PACED
    try:
        return RateStrategy(raw)
    except ValueError:
        raise ConfigError(f"{STRATEGY_ENV} must be paced or reactive, got {raw!r}") from None


class PermitServer:
    def __init__(self, book: BudgetBook) -> None:
        self.book = book
        self._dir = Path(tempfile.mkdtemp(prefix="agentos-permits-"))  # 0700
        self.address = str(self._dir / "permits.sock")
        self._authkey = secrets.token_bytes(32)
        # No authkey on the listener: its accept() would run the handshake on the one accept
        # thread, where a client that connects and then stalls (a SIGSTOPped worker) would
        # block every other worker. Each connection's own thread authenticates it instead.
        self._listener = Listener(self.address, family="AF_UNIX")
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[Connection] = set()
        self._lock = threading.Lock()

    def start(self) -> dict[str, str]:
        """Serve in the background; the environment entries a worker needs to connect."""
        key = self._authkey.hex()
        register_secret(key, PERMIT_AUTHKEY_NAME)
        thread = threading.Thread(target=self._accept, name="permit-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return {ADDRESS_ENV: self.address, AUTHKEY_ENV: key}

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self.book.close()
        with contextlib.suppress(Exception):  # wake accept() with a connection of our own
            Client(self.address, family="AF_UNIX").close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
        for thread in self._threads:
            thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- threads -----------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn = self._listener.accept()
            except Exception:  # the listener closed
                self._closed.wait(0.05)
                continue
            if self._closed.is_set():
                conn.close()
                return
            with self._lock:
                self._conns.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="permit-worker", daemon=True)
            thread.start()

    def _serve(self, conn: Connection) -> None:
        outstanding: set[int] = set()
        try:
            try:  # the same challenge Listener(authkey=...) runs, here off the accept thread
                deliver_challenge(conn, self._authkey)
                answer_challenge(conn, self._authkey)
            except (AuthenticationError, OSError, EOFError, ValueError):
                return  # not one of our workers: drop it, nothing granted
            while not self._closed.is_set():
                try:
                    message = decode(conn.recv_bytes(MAX_MESSAGE))
                except (OSError, EOFError):
                    return
                op = message.get("op")
                if op == "acquire":
                    if not self._acquire(conn, message, outstanding):
                        return
                elif op == "done":
                    self._done(message, outstanding)
                else:
                    return  # not our protocol: drop the connection
        finally:
            for grant in outstanding:
                self.book.abandon(grant)
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _acquire(self, conn: Connection, message: dict[str, object], outstanding: set[int]) -> bool:
        provider, tokens = message.get("provider"), message.get("tokens")
        if not isinstance(provider, str) or isinstance(tokens, bool) or not isinstance(tokens, int):
            return False
        tokens = min(max(tokens, 0), MAX_TOKENS_ESTIMATE)

        def gone() -> bool:  # the worker says nothing while it waits: readable means EOF
            try:
                return conn.poll(0)
            except (OSError, EOFError):
                return True

        urgent = message.get("purpose") != "review"  # a draft leads to more calls: it goes first
        grant = self.book.acquire(provider, tokens, cancelled=gone, urgent=urgent)
        if grant is None:
            reply: dict[str, object] = {"closed": True}
        else:
            outstanding.add(grant.id)
            reply = {"grant": grant.id, "key": grant.key, "secret": grant.secret, "waited": grant.waited}
        try:
            conn.send_bytes(encode(reply))
        except (OSError, ValueError):
            return False
        return grant is not None

    def _done(self, message: dict[str, object], outstanding: set[int]) -> None:
        grant = message.get("grant")
        if not isinstance(grant, int) or grant not in outstanding:
            return
        outstanding.discard(grant)
        try:
            outcome = Outcome(str(message.get("outcome")))
        except ValueError:
            outcome = Outcome.ERROR
        self.book.complete(
            grant,
            outcome,
            RateLimitInfo.from_dict(message.get("info")),
            finite(message.get("sent_at")),
            clamp_retry_after(finite(message.get("retry_after"))),
        )
