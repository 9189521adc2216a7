"""Coordinator side of the permit channel: serve `BudgetBook` permits to the workers.

One thread accepts connections (a `selectors` loop on a non-blocking listener, woken by a
pipe to stop); each worker gets a thread that answers its `acquire` (blocking until the
book grants a key) and applies its `done` reports. A worker that goes away while waiting
is noticed within `MAX_WAIT_S` and leaves the queue; grants it never reported are
abandoned (counted as sent, to be safe). The socket lives in a fresh 0700 directory and
every connection must prove it knows the run's random authentication key.

Connections are bounded: at most MAX_HANDSHAKES unauthenticated at once, each with
HANDSHAKE_S to finish, and MAX_CONNECTIONS in all; the rest are closed at once. A flood
of connections that never authenticate (same user or root only) cannot exhaust the
coordinator's descriptors or threads, and `close()` never waits on anything a client does.

`AGENTOS_RATE_STRATEGY=reactive` turns pacing off: each item uses its reserved key until a
429, as before. The benchmark uses it to measure both strategies in the same run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shutil
import socket
import struct
import tempfile
import threading
import time
from enum import StrEnum
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path

from agentos.core import environment
from agentos.core.errors import ConfigError
from agentos.core.redaction import register_secret
from agentos.core.retry_hints import clamp_retry_after
from agentos.keys.budget_book import BudgetBook
from agentos.keys.permit_client import (
    ADDRESS_ENV,
    AUTHKEY_ENV,
    MAX_MESSAGE,
    PERMIT_AUTHKEY_NAME,
    STRATEGY_ENV,
    decode,
    encode,
    finite,
)
from agentos.llm.rate_limits import Outcome, RateLimitInfo

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


MAX_HANDSHAKES = 32  # unauthenticated connections at once
MAX_CONNECTIONS = 256  # in all: one per worker is the norm (parallelism is at most 10)
HANDSHAKE_S = 2.0
CLOSE_JOIN_S = 2.0  # close() waits this long in all for the serving threads, then moves on


class PermitServer:
    def __init__(self, book: BudgetBook) -> None:
        self.book = book
        self._dir = Path(tempfile.mkdtemp(prefix="agentos-permits-"))  # 0700
        self.address = str(self._dir / "permits.sock")
        self._authkey = secrets.token_bytes(32)
        # No authkey on the listener: the handshake runs on each connection's own thread,
        # with a deadline, so a client that connects and stalls blocks nobody.
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.address)
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[Connection] = set()
        self._handshaking = 0
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
        """Stop serving; bounded in time whatever clients do (never connects to itself)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.book.close()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")  # wakes the accept loop's selector
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
        give_up = time.monotonic() + CLOSE_JOIN_S
        for thread in list(self._threads):
            thread.join(timeout=max(0.0, give_up - time.monotonic()))
        with contextlib.suppress(OSError):
            self._listener.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- threads -----------------------------------------------------------------------
    def _accept(self) -> None:
        with selectors.DefaultSelector() as watch:
            watch.register(self._listener, selectors.EVENT_READ)
            watch.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed.is_set():
                watch.select()
                while not self._closed.is_set():
                    try:
                        sock, _ = self._listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        return  # the listener closed
                    self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        """Serve `sock` on its own thread, or close it at once past the bounds."""
        with self._lock:
            if self._handshaking >= MAX_HANDSHAKES or len(self._conns) >= MAX_CONNECTIONS:
                sock.close()
                return
            self._handshaking += 1
            sock.setblocking(True)
            sock.settimeout(None)
            _set_receive_timeout(sock, HANDSHAKE_S)
            conn = Connection(sock.detach())
            self._conns.add(conn)
        thread = threading.Thread(target=self._serve, args=(conn,), name="permit-worker", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _serve(self, conn: Connection) -> None:
        outstanding: set[int] = set()
        try:
            try:  # the same challenge Listener(authkey=...) runs, here off the accept thread
                deliver_challenge(conn, self._authkey)
                answer_challenge(conn, self._authkey)
            except (AuthenticationError, OSError, EOFError, ValueError, TypeError):
                return  # not one of our workers (or too slow to say so): drop it, nothing granted
            finally:
                with self._lock:
                    self._handshaking -= 1
            with contextlib.suppress(OSError):  # one of ours: it may stay quiet between calls
                _set_receive_timeout_fd(conn.fileno(), 0.0)
            while not self._closed.is_set():
                try:
                    message = decode(conn.recv_bytes(MAX_MESSAGE))
                except (OSError, EOFError, TypeError, ValueError):  # closed under us by close()
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
            except (OSError, EOFError, TypeError, ValueError):  # closed by close()
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
        except (OSError, ValueError, TypeError):
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


def _set_receive_timeout(sock: socket.socket, seconds: float) -> None:
    """SO_RCVTIMEO: a blocking receive on this socket fails after `seconds` (0: never)."""
    whole = int(seconds)
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", whole, int((seconds - whole) * 1e6))
    )


def _set_receive_timeout_fd(fd: int, seconds: float) -> None:
    probe = socket.socket(fileno=os.dup(fd))  # socket options belong to the socket, not the fd
    try:
        _set_receive_timeout(probe, seconds)
    finally:
        probe.close()
