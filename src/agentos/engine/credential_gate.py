"""How the coordinator talks to any credential source (ours, or any object with
`acquire(timeout=...)` and `release(key, ...)`): announce waits, simulate a 429, report
provider errors, and turn pool health into an effective parallelism.

Anything beyond `acquire` and `release` (`report`, `close`, `usable_count`,
`earliest_available`) is a capability the source's *class* must define: it is looked
up on `type(source)`, never on the instance, because a `unittest.mock.Mock()` answers
every attribute with another Mock. Whatever a source raises becomes a
`CredentialSourceError`, which fails one item and never the run.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from agentos.core.errors import CredentialSourceError
from agentos.core.printing import STDOUT, Console
from agentos.llm.errors import LLMError, RateLimited
from agentos.llm.mock import simulate_429_enabled, simulated_retry_after

LeaseT = TypeVar("LeaseT")
DEAD_KEYS_ADVICE = (
    "Stopped: no usable key left (see above). Fix or replace the key(s), then run the same "
    "command again to resume."
)


class CredentialSource(Protocol[LeaseT]):
    """The whole contract: `acquire` gives a lease (a key, or a provider -> key mapping) or
    None; `release` gives it back. Everything else is an optional capability."""

    def acquire(self, timeout: float | None = ...) -> LeaseT | None: ...

    def release(self, key: LeaseT, rate_limited: bool = ..., backoff_seconds: float | None = ...) -> None: ...


def capability(source: object, name: str) -> Callable[..., Any] | None:
    """`source.<name>` if the source's class defines it as a method, else None."""
    if not callable(getattr(type(source), name, None)):
        return None
    method: Callable[..., Any] = getattr(source, name)
    return method


class CredentialGate(Generic[LeaseT]):
    def __init__(
        self,
        source: CredentialSource[LeaseT],
        max_workers: int,
        stop: threading.Event,
        *,
        no_wait: bool = False,
        acquire_timeout: float | None = None,
        console: Console = STDOUT,
    ) -> None:
        self.console = console
        self.source = source
        self.max_workers = max_workers
        self.stop = stop
        self.no_wait = no_wait
        self.acquire_timeout = acquire_timeout
        self.exhausted_stop = False  # set when --no-wait ended the run on an empty pool
        self.dead: list[str] = []  # set when every key of a provider was rejected: the run stops
        self._state = "full"
        self._simulated = False
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def acquire(self, item_id: str) -> LeaseT | None:
        """A credential, or None (the source gave none, or a shutdown closed it).

        Raises CredentialSourceError when the source raises."""
        try:
            return self._acquire(item_id)
        except CredentialSourceError:
            raise
        except Exception as exc:
            raise CredentialSourceError("acquire", exc) from exc

    def _acquire(self, item_id: str) -> LeaseT | None:
        credential = self.source.acquire(timeout=0)
        if credential is None and not self.stop.is_set() and not self.stop_if_dead():
            self.console.line(f"[COORDINATOR] {item_id} waiting for a key")
            credential = self.source.acquire(timeout=self.acquire_timeout)
        if credential is not None and simulate_429_enabled() and self._take_simulation():
            self.console.line(
                "[COORDINATOR] Simulated HTTP 429 on the first credential (AGENTOS_SIMULATE_429)"
            )
            self.source.release(credential, rate_limited=True, backoff_seconds=simulated_retry_after())
            return self._acquire(item_id)
        return credential

    def release(self, credential: LeaseT) -> None:
        """Give the key back. Raises CredentialSourceError when the source raises."""
        try:
            self.source.release(credential)
        except Exception as exc:
            raise CredentialSourceError("release", exc) from exc

    def report(self, credential: LeaseT, error: LLMError) -> None:
        """Give the key back marked with what the error means (our pool), or rate-limited.

        Raises CredentialSourceError when the source raises."""
        report = capability(self.source, "report")
        try:
            if report is not None:
                report(credential, error)
            elif isinstance(error, RateLimited):
                self.source.release(credential, rate_limited=True, backoff_seconds=error.retry_after)
            else:
                self.source.release(credential)
        except Exception as exc:
            raise CredentialSourceError("report" if report is not None else "release", exc) from exc

    def close(self) -> None:
        """Wake every item waiting for a key (shutdown), if the source's class supports it."""
        close = capability(self.source, "close")
        if close is None:
            return
        try:
            close()
        except Exception as exc:
            self._warn_once("close", exc)

    def usable(self) -> int | None:
        """The source's `usable_count()`, or None: not supported, raised, or not a count."""
        usable_count = capability(self.source, "usable_count")
        if usable_count is None:
            return None
        try:
            value = usable_count()
        except Exception as exc:
            self._warn_once("usable_count", exc)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._warn_once("usable_count", TypeError(f"returned {type(value).__name__}, not int"))
            return None
        return max(0, value)

    def stop_if_dead(self) -> bool:
        """No key of some provider can ever serve this run again (every one rejected): say
        which, where each came from, and stop the run rather than wait for nothing."""
        dead_keys = capability(self.source, "dead_keys")
        if dead_keys is None:
            return False
        with self._lock:
            if self.dead:
                return True
            try:
                lines = dead_keys()
            except Exception as exc:
                self._warn_once("dead_keys", exc)
                return False
            if not isinstance(lines, list) or not lines:
                return False
            self.dead = [str(line) for line in lines]
            for line in self.dead:
                self.console.line(f"[COORDINATOR] No usable key left: {line}")
            self.stop.set()
        self.close()  # wake items waiting for a key: none will come
        return True

    def _warn_once(self, operation: str, exc: Exception) -> None:
        if operation not in self._warned:
            self._warned.add(operation)
            self.console.line(f"[COORDINATOR] Warning: {CredentialSourceError(operation, exc)}; ignoring it")

    def effective_limit(self, work_waiting: bool) -> int:
        """Fewer than 2 usable keys: parallelism drops to that number; none: pause all."""
        usable = self.usable()
        if usable is None:
            return self.max_workers
        if usable == 0 and work_waiting and self.stop_if_dead():
            return 0
        if usable == 0:
            state = "paused"
        elif usable < 2 and usable < self.max_workers:
            state = "reduced"
        else:
            state = "full"
        if state != self._state and work_waiting:
            self._announce(state, usable)
            self._state = state
        return {"paused": 0, "reduced": usable}.get(state, self.max_workers)

    def _announce(self, state: str, usable: int) -> None:
        if state == "paused":
            self.console.line(
                f"[COORDINATOR] Credential pool exhausted. Pausing all workflows... {self._eta()}"
            )
            if self.no_wait:
                self.exhausted_stop = True
                self.stop.set()
        elif self._state == "paused":
            self.console.line("[COORDINATOR] Credentials available. Resuming...")
        if state == "reduced":  # normal queueing, not an exhausted pool
            self.console.line(
                f"[COORDINATOR] {usable} usable key: running {usable} item at a time "
                f"(parallelism {self.max_workers} when more keys are free)"
            )
        elif state == "full" and self._state == "reduced":
            self.console.line(
                f"[COORDINATOR] {usable} usable credentials: parallelism back to {self.max_workers}"
            )

    def _eta(self) -> str:
        earliest_available = capability(self.source, "earliest_available")
        earliest: Any = None
        if earliest_available is not None:
            try:
                earliest = earliest_available()
            except Exception as exc:
                self._warn_once("earliest_available", exc)
        if isinstance(earliest, bool) or not isinstance(earliest, int | float) or not math.isfinite(earliest):
            earliest = None
        if earliest is None:
            return "No key frees up by itself: add or enable a key in the credentials file."
        wait = max(0.0, earliest - time.time())
        try:
            at = time.strftime("%H:%M:%S", time.localtime(earliest))
        except (OverflowError, ValueError, OSError):
            return f"Earliest key free in {wait:.0f}s."
        return f"Earliest key free in {wait:.0f}s (at {at})."

    def _take_simulation(self) -> bool:
        with self._lock:
            if self._simulated:
                return False
            self._simulated = True
            return True
