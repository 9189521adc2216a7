"""How the coordinator talks to any credential source (ours, or any object with
`acquire(timeout=...)` and `release(key, ...)`): announce waits, simulate a 429, report
provider errors, and turn pool health into an effective parallelism.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from agentos.llm.errors import LLMError, RateLimited
from agentos.llm.mock import simulate_429_enabled, simulated_retry_after
from agentos.workflows.parallel.output import say


class CredentialSource(Protocol):
    def acquire(self, timeout: float | None = ...) -> Any: ...

    def release(self, key: Any, rate_limited: bool = ..., backoff_seconds: float | None = ...) -> None: ...


class CredentialGate:
    def __init__(
        self,
        source: CredentialSource,
        max_workers: int,
        stop: threading.Event,
        *,
        no_wait: bool = False,
        acquire_timeout: float | None = None,
    ) -> None:
        self.source = source
        self.max_workers = max_workers
        self.stop = stop
        self.no_wait = no_wait
        self.acquire_timeout = acquire_timeout
        self.exhausted_stop = False  # set when --no-wait ended the run on an empty pool
        self._state = "full"
        self._simulated = False
        self._lock = threading.Lock()

    def acquire(self, item_id: str) -> Any:
        """A credential, or None (the source gave none, or a shutdown closed it)."""
        credential = self.source.acquire(timeout=0)
        if credential is None and not self.stop.is_set():
            say(f"[COORDINATOR] Credential pool exhausted: {item_id} waits for a free credential")
            credential = self.source.acquire(timeout=self.acquire_timeout)
        if credential is not None and simulate_429_enabled() and self._take_simulation():
            say("[COORDINATOR] Simulated HTTP 429 on the first credential (AGENTOS_SIMULATE_429)")
            self.source.release(credential, rate_limited=True, backoff_seconds=simulated_retry_after())
            return self.acquire(item_id)
        return credential

    def release(self, credential: Any) -> None:
        self.source.release(credential)

    def report(self, credential: Any, error: LLMError) -> None:
        """Give the key back marked with what the error means (our pool), or rate-limited."""
        report = getattr(self.source, "report", None)
        if report is not None:
            report(credential, error)
        elif isinstance(error, RateLimited):
            self.source.release(credential, rate_limited=True, backoff_seconds=error.retry_after)
        else:
            self.source.release(credential)

    def close(self) -> None:
        """Wake every item waiting for a key (shutdown), if the source supports it."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    def effective_limit(self, work_waiting: bool) -> int:
        """Fewer than 2 usable keys: parallelism drops to that number; none: pause all."""
        usable_count = getattr(self.source, "usable_count", None)
        if usable_count is None:
            return self.max_workers
        usable = int(usable_count())
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
            say(f"[COORDINATOR] Credential pool exhausted. Pausing all workflows... {self._eta()}")
            if self.no_wait:
                self.exhausted_stop = True
                self.stop.set()
        elif self._state == "paused":
            say("[COORDINATOR] Credentials available. Resuming...")
        if state == "reduced":
            say(
                f"[COORDINATOR] Credential pool exhausted for parallelism {self.max_workers}: "
                f"only {usable} usable credential, parallelism reduced to {usable}"
            )
        elif state == "full" and self._state == "reduced":
            say(f"[COORDINATOR] {usable} usable credentials: parallelism back to {self.max_workers}")

    def _eta(self) -> str:
        earliest = getattr(self.source, "earliest_available", lambda: None)()
        if earliest is None:
            return "No key frees up by itself: add or enable a key in the credentials file."
        wait = max(0.0, earliest - time.time())
        return f"Earliest key free in {wait:.0f}s (at {time.strftime('%H:%M:%S', time.localtime(earliest))})."

    def _take_simulation(self) -> bool:
        with self._lock:
            if self._simulated:
                return False
            self._simulated = True
            return True
