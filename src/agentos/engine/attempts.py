"""One item's runs: lease its keys, run it, and after a 429, a quota or a rejected key, report
the key and resume the item (from its checkpoint) with another.

The credential attempt loop, apart from the scheduling around it (`coordinator`). It keeps
when each item's current run began, so the coordinator's tick can time it, and how many of
its runs started, for the joblog.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from agentos.core.errors import CredentialSourceError
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.engine.children import ChildRegistry
from agentos.engine.credential_gate import CredentialGate, LeaseT
from agentos.engine.outcomes import call_worker
from agentos.engine.result import UNSUCCESSFUL, WorkflowResult
from agentos.keys.problems import error_from_outcome

ItemT = TypeVar("ItemT")
MAX_CREDENTIAL_RETRIES = 50


@dataclass(frozen=True)
class _Lease(Generic[LeaseT]):
    credential: LeaseT | None  # what the credential source's acquire() returned; None without one


class Attempts(Generic[LeaseT]):
    def __init__(
        self,
        gate: CredentialGate[LeaseT] | None,
        stop: threading.Event,
        admission_stop: Callable[[], str | None],
        children: ChildRegistry,
        clock: Callable[[], float],
    ) -> None:
        self._gate = gate
        self._stop = stop
        self._admission_stop = admission_stop  # why no new item starts (--fail-fast, --max-cost)
        self._children = children
        self._clock = clock
        self._lock = threading.Lock()
        self._started_runs: dict[str, int] = {}  # item -> its runs that started
        self._running_since: dict[str, float] = {}  # item -> when its current run began (clock)

    # -- for the coordinator's tick and record ---------------------------------------
    def overdue(self, now: float, limit: float) -> list[str]:
        """Items whose current run began `limit` seconds ago or more; each is named once per run."""
        with self._lock:
            due = [i for i, since in self._running_since.items() if now - since >= limit]
            for item_id in due:
                del self._running_since[item_id]
        return due

    def done(self, item_id: str) -> int:
        """The item has its result: forget it. Returns how many of its runs started."""
        with self._lock:
            self._running_since.pop(item_id, None)
            return self._started_runs.pop(item_id, 0)

    # -- the loop ----------------------------------------------------------------------
    def run(
        self, item: ItemT, item_id: str, worker_func: Callable[[ItemT, LeaseT | None], object]
    ) -> WorkflowResult:
        """Lease keys, run the item, and resume it with another key after a credential error."""
        previous = ""
        for attempt in range(MAX_CREDENTIAL_RETRIES):
            lease = self._lease(item_id, first=attempt == 0)
            if isinstance(lease, WorkflowResult):
                if attempt > 0 and lease.status is ItemStatus.INTERRUPTED:  # it ran: not "before it started"
                    lease.error = f"{previous}; interrupted: resumable from its checkpoint"
                return lease
            with self._lock:
                self._running_since[item_id] = self._clock()
            outcome, value = call_worker(worker_func, item, lease.credential)
            with self._lock:
                self._running_since.pop(item_id, None)
                if outcome.started:
                    self._started_runs[item_id] = self._started_runs.get(item_id, 0) + 1
            self._children.pop_failure(item_id)  # a mark that came as the run ended: not the next run's
            if outcome.status is ItemStatus.CREDENTIAL:
                previous = outcome.error or "credential problem"
                retry = self._after_credential_error(item_id, lease, outcome)
                if retry is None:
                    continue  # resume from the checkpoint with another (or the cooled) key
                return retry
            return self._record(item_id, outcome, value, lease)
        return WorkflowResult(
            item_id, False, "gave up after repeated credential errors", status=ItemStatus.FAILED
        )

    def _lease(self, item_id: str, *, first: bool) -> _Lease[LeaseT] | WorkflowResult:
        """The item's keys, or the result that ends the item without running it."""
        if self._gate is None:
            return _Lease[LeaseT](None)
        try:
            credential = self._gate.acquire(item_id)
        except CredentialSourceError as exc:
            message = f"Failed to acquire credential for {item_id}: {exc}"
            return WorkflowResult(item_id, False, message, status=ItemStatus.FAILED)
        if credential is None:
            return self._no_credential(item_id)
        stopped = self._admission_stop()
        if first and stopped is not None:  # stop_admitting() while this item waited for a key
            self._release_quietly(credential)
            return WorkflowResult(item_id, False, f"not started: {stopped}", status=ItemStatus.NOT_STARTED)
        return _Lease[LeaseT](credential)

    def _after_credential_error(
        self, item_id: str, lease: _Lease[LeaseT], outcome: ItemOutcome
    ) -> WorkflowResult | None:
        """Give the key back, marked (429, quota, rejected). None: try again with another key."""
        error = outcome.error or "credential problem"
        if lease.credential is None or self._gate is None:
            return WorkflowResult(item_id, False, error, status=ItemStatus.FAILED, outcome=outcome)
        try:
            self._gate.report(lease.credential, error_from_outcome(outcome))
        except CredentialSourceError as err:
            return WorkflowResult(
                item_id, False, f"{error}; then {err}", status=ItemStatus.FAILED, outcome=outcome
            )
        if self._stop.is_set():
            return WorkflowResult(item_id, False, error, status=ItemStatus.INTERRUPTED, outcome=outcome)
        return None

    def _record(
        self, item_id: str, outcome: ItemOutcome, value: object, lease: _Lease[LeaseT]
    ) -> WorkflowResult:
        """The one place an outcome becomes the public WorkflowResult; the lease goes back."""
        success = outcome.status not in UNSUCCESSFUL
        error = None if success else outcome.error or outcome.status.value
        result = WorkflowResult(item_id, success, error, status=outcome.status, value=value, outcome=outcome)
        if lease.credential is not None and self._gate is not None:
            try:
                self._gate.release(lease.credential)
            except CredentialSourceError as exc:
                message = f"Failed to release credential for {item_id}: {exc}"
                return WorkflowResult(
                    item_id, False, message, status=ItemStatus.FAILED, value=result.value, outcome=outcome
                )
        return result

    def _release_quietly(self, credential: LeaseT | None) -> None:
        if credential is not None and self._gate is not None:
            with contextlib.suppress(CredentialSourceError):
                self._gate.release(credential)

    def _no_credential(self, item_id: str) -> WorkflowResult:
        if self._stop.is_set():
            return WorkflowResult(
                item_id, False, "interrupted before it started", status=ItemStatus.INTERRUPTED
            )
        return WorkflowResult(
            item_id, False, f"Failed to acquire credential for {item_id}", status=ItemStatus.FAILED
        )
