"""Worker side of the permit channel: ask the coordinator before each call, report after it.

The channel is a `multiprocessing.connection` Unix socket in a 0700 directory; its address
and authentication key reach the worker in its environment (never argv). Messages are
small JSON objects, not pickles, so neither side ever unpickles what the other sent.
A grant names the key to use and carries its secret: a call may go out on any key of its
provider, and keys added to the credentials file during the run work at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection
from typing import Any

from agentos.core import environment
from agentos.core.errors import AgentosError
from agentos.core.redaction import register_secret
from agentos.llm.rate_limits import RateLimitInfo

STRATEGY_ENV = environment.RATE_STRATEGY.name  # paced (default) or reactive
ADDRESS_ENV = environment.PERMIT_ADDRESS.name
AUTHKEY_ENV = environment.PERMIT_AUTHKEY.name
MAX_MESSAGE = 65536
PERMIT_AUTHKEY_NAME = "permit-channel-key"


class PermitUnavailable(AgentosError):
    """No permit: the coordinator is shutting down (`closed`), or the channel failed."""

    def __init__(self, reason: str, *, closed: bool = False) -> None:
        self.closed = closed
        super().__init__(reason)


@dataclass(frozen=True)
class Permit:
    grant: int
    key: str
    secret: str
    waited: float


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode("utf-8")


def decode(data: bytes) -> dict[str, Any]:
    """A message from the other side, or {} if it is not a JSON object."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class PermitClient:
    def __init__(self, address: str, authkey: bytes) -> None:
        self.address = address
        self._authkey = authkey
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PermitClient | None:
        source = os.environ if env is None else env
        address, key = source.get(ADDRESS_ENV), source.get(AUTHKEY_ENV)
        if not address or not key:
            return None
        try:
            authkey = bytes.fromhex(key)
        except ValueError:
            return None
        register_secret(key, PERMIT_AUTHKEY_NAME)
        return cls(address, authkey)

    def _connection(self) -> Connection:
        if self._conn is None:
            try:
                self._conn = Client(self.address, family="AF_UNIX", authkey=self._authkey)
            except (OSError, EOFError, ValueError) as exc:
                raise PermitUnavailable(f"cannot reach the coordinator's permit channel ({exc})") from None
            except Exception as exc:  # AuthenticationError
                raise PermitUnavailable(f"permit channel refused us ({type(exc).__name__})") from None
        return self._conn

    def acquire(self, provider: str, tokens: int, purpose: str = "draft") -> Permit:
        """Block until the coordinator grants a key for one call to `provider`."""
        message = {"op": "acquire", "provider": provider, "tokens": tokens, "purpose": purpose}
        with self._lock:
            conn = self._connection()
            try:
                conn.send_bytes(encode(message))
                reply = decode(conn.recv_bytes(MAX_MESSAGE))
            except (OSError, EOFError) as exc:
                self._drop()
                raise PermitUnavailable(
                    f"permit channel closed ({type(exc).__name__})", closed=True
                ) from None
        grant, key, secret = reply.get("grant"), reply.get("key"), reply.get("secret")
        if reply.get("closed") or not isinstance(grant, int) or not isinstance(key, str):
            raise PermitUnavailable("the coordinator is stopping", closed=True)
        if not isinstance(secret, str) or not secret:
            raise PermitUnavailable("malformed permit")
        register_secret(secret, key)
        return Permit(grant, key, secret, finite(reply.get("waited")) or 0.0)

    def done(
        self,
        grant: int,
        outcome: str,
        info: RateLimitInfo | None,
        sent_at: float | None,
        retry_after: float | None,
    ) -> None:
        """Report the answer to a granted call (fire and forget: a lost report only costs pace)."""
        message = {
            "op": "done",
            "grant": grant,
            "outcome": outcome,
            "info": info.to_dict() if info is not None else None,
            "sent_at": finite(sent_at),
            "retry_after": finite(retry_after),
        }
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.send_bytes(encode(message))
            except (OSError, ValueError):
                self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None


_shared: list[PermitClient | None] = []


def shared_client() -> PermitClient | None:
    """This process's one connection to the coordinator (drafter and reviewer share it)."""
    if not _shared:
        _shared.append(PermitClient.from_env())
    return _shared[0]
