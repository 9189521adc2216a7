"""Connecting to a team's Postgres: one clear line when it cannot be reached, and a password
that never reaches a sink.

The URL may carry a password (`postgresql://user:secret@host/db`): it is registered with the
redactor before anything is said, so no console line, log or file shows it; `PGPASSWORD` and
`~/.pgpass` work as they do for psql. TLS settings (`sslmode`, `sslrootcert`) pass through.
psycopg is imported here only, so a machine without the backend never needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from agentos.core import environment
from agentos.core.errors import ConfigError
from agentos.core.redaction import register_secret

CONNECT_TIMEOUT_S = 10


class BackendUnavailable(ConfigError):
    """The backend cannot be used: unreachable, refused, or of a newer schema (exit 2)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"the backend at {where} cannot be used: {reason}")


def backend_url(configured: str | None) -> str | None:
    """The team backend's URL: AGENTOS_BACKEND_URL, else the workspace's `[backend] url`, else None."""
    return environment.BACKEND_URL.get_stripped() or configured or None


def described(url: str) -> str:
    """`host:port/db` of a URL, with no user or password: safe to print."""
    try:
        parts = urlsplit(url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]  # `?host=/run/postgresql`
        host = parts.hostname or (f"the socket in {socket_dir}" if socket_dir else "local socket")
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the configured backend"
    return f"{host}{port}{parts.path or ''}"


def register_password(url: str) -> None:
    """The URL's password, if any, is redacted at every sink from now on."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        register_secret(unquote(password), "backend-password")
        if unquote(password) != password:
            register_secret(password, "backend-password")


def connect(url: str, **options: Any) -> Any:
    """An autocommit psycopg connection, or BackendUnavailable naming the host (never the password).
    `options` go to psycopg (a row factory, `prepare_threshold`, a search path)."""
    register_password(url)
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "AGENTOS_BACKEND_URL is set but psycopg is not installed: pip install 'psycopg[binary]'"
        ) from None
    try:
        return psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="agentos", **options
        )
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or ["no answer"])[0]
        raise BackendUnavailable(described(url), first) from None


def connect_prepared(url: str, prepare: Callable[[Any], None], **options: Any) -> Any:
    """`connect`, then `prepare(conn)` (a schema, a session setting); closed if that fails."""
    conn = connect(url, **options)
    try:
        prepare(conn)
    except BaseException:
        with contextlib.suppress(Exception):
            conn.close()
        raise
    return conn


def is_connection_lost(exc: BaseException) -> bool:
    """Did a psycopg call fail because the session is gone (terminated, server restarted,
    network down), rather than because of the statement?"""
    try:
        import psycopg
    except ImportError:
        return False
    if isinstance(exc, psycopg.InterfaceError):  # the connection is closed
        return True
    if isinstance(exc, psycopg.OperationalError):  # but not a deadlock, a lock timeout...
        state = getattr(exc, "sqlstate", None)
        return state is None or state.startswith("08") or state in LOST_STATES
    return False


LOST_STATES = ("57P01", "57P02", "57P03")  # admin shutdown, crash shutdown, cannot connect now
