"""ParallelCoordinator: run items at most P at a time, each as soon as a slot frees.

Each item is driven by a supervisor thread that calls `worker_func(item, credential)`;
the CLI's worker_func runs the item in its own OS process. The main thread schedules,
watches the credential pool and handles signals. Signal handlers only set flags; all
messages are printed from the main loop (the huey pattern).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from agentos.errors import Interrupted
from agentos.llm.errors import AuthError, QuotaExhausted, RateLimited
from agentos.workflows.item import ItemStatus
from agentos.workflows.parallel.credential_gate import CredentialGate, CredentialSource
from agentos.workflows.parallel.output import say

DEFAULT_PARALLELISM = 3
MAX_PARALLELISM = 10
SHUTDOWN_GRACE_S = 5.0
DUPLICATE_SIGNAL_S = 1.0
MAX_CREDENTIAL_RETRIES = 50
TICK_S = 0.1


@dataclass
class WorkflowResult:
    item_id: str
    success: bool
    error: str | None = None
    duration: float = 0.0
    status: ItemStatus = ItemStatus.APPROVED
    value: Any = None  # what worker_func returned


@dataclass
class ProgressStats:
    total: int = 0
    completed: int = 0  # every finished item, failures included
    failed: int = 0
    success_count: int = 0
    interrupted: int = 0
    running: list[str] = field(default_factory=list)


class Listener(Protocol):
    def item_started(self, item_id: str, stats: ProgressStats) -> None: ...

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None: ...


class ParallelCoordinator:
    def __init__(
        self,
        max_workers: int | None = None,
        credential_coordinator: CredentialSource | None = None,
        *,
        listener: Listener | None = None,
        no_wait: bool = False,
        acquire_timeout: float | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE_S,
    ) -> None:
        if max_workers is None:
            max_workers = DEFAULT_PARALLELISM
        if max_workers < 1:
            raise ValueError(f"parallelism must be at least 1, got {max_workers}")
        if max_workers > MAX_PARALLELISM:
            say(f"[COORDINATOR] Warning: parallelism {max_workers} capped at {MAX_PARALLELISM}")
            max_workers = MAX_PARALLELISM
        self.max_workers = max_workers
        self.credentials = credential_coordinator
        self.listener = listener
        self.shutdown_grace = shutdown_grace
        self.stop_event = threading.Event()  # first signal: drain
        self.force_event = threading.Event()  # second signal: kill
        self._gate = (
            CredentialGate(
                credential_coordinator,
                max_workers,
                self.stop_event,
                no_wait=no_wait,
                acquire_timeout=acquire_timeout,
            )
            if credential_coordinator is not None
            else None
        )
        self._lock = threading.Condition()
        self._first_signal: float | None = None
        self._announced: set[str] = set()
        self._stats = ProgressStats()
        self._results: list[WorkflowResult] = []
        self._unfinished: list[str] = []
        self._done_ids: list[str] = []

    # -- signals -------------------------------------------------------------------
    def _handle_shutdown_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGINT/SIGTERM: the first drains, a second (>1 s later) kills. Flags only."""
        now = time.monotonic()
        if self._first_signal is None:
            self._first_signal = now
            self.stop_event.set()
        elif now - self._first_signal >= DUPLICATE_SIGNAL_S:
            self.force_event.set()
        with self._lock:
            self._lock.notify_all()

    @property
    def pool_exhausted_stop(self) -> bool:
        """True when --no-wait ended the run because every key was out."""
        return self._gate is not None and self._gate.exhausted_stop

    def get_checkpoints(self) -> list[str]:
        """Ids of items interrupted or never started: the ones a re-run will pick up."""
        return list(self._unfinished)

    # -- main loop -----------------------------------------------------------------
    def execute_parallel(
        self,
        items: Iterable[Any],
        worker_func: Callable[[Any, Any], Any],
        item_id_func: Callable[[Any], str],
        dry_run: bool = False,
    ) -> tuple[ProgressStats, list[WorkflowResult]]:
        items = list(items)
        self._stats = ProgressStats(total=len(items))
        if dry_run:
            say(f"[COORDINATOR] Dry run mode: {len(items)} item(s) would run, parallelism {self.max_workers}")
            for item in items:
                say(f"[COORDINATOR]   {item_id_func(item)}")
            return self._stats, []
        installed = self._install_signal_handlers()
        pending = deque(items)
        threads: dict[str, threading.Thread] = {}
        try:
            while pending or threads:
                self._announce()
                if self.stop_event.is_set():
                    break
                limit = (
                    self._gate.effective_limit(bool(pending or threads)) if self._gate else self.max_workers
                )
                while pending and len(threads) < limit and not self.stop_event.is_set():
                    item = pending.popleft()
                    item_id = item_id_func(item)
                    thread = threading.Thread(
                        target=self._run_item,
                        args=(item, item_id, worker_func),
                        name=f"supervise-{item_id}",
                        daemon=True,
                    )
                    threads[item_id] = thread
                    with self._lock:
                        self._stats.running.append(item_id)
                    if self.listener:
                        self.listener.item_started(item_id, self._stats)
                    thread.start()
                with self._lock:
                    if not self._done_ids:
                        self._lock.wait(TICK_S)
                    done, self._done_ids = self._done_ids, []
                for item_id in done:  # free the slot at once: the next item starts now
                    threads.pop(item_id, None)
            if threads:
                self._drain(threads)
        finally:
            self._restore_signal_handlers(installed)
        with self._lock:
            finished = {r.item_id for r in self._results}
            self._unfinished = [i for i in map(item_id_func, items) if i not in finished] + [
                r.item_id for r in self._results if r.status is ItemStatus.INTERRUPTED
            ]
            return self._stats, list(self._results)

    def _drain(self, threads: dict[str, threading.Thread]) -> None:
        """After the first signal: let running items reach a checkpoint, then return."""
        if self._gate is not None:
            self._gate.close()  # wake items waiting for a key: they stop too
        deadline = time.monotonic() + self.shutdown_grace
        while threads and time.monotonic() < deadline:
            self._announce()
            for item_id in [i for i, t in threads.items() if not t.is_alive()]:
                del threads[item_id]
            with self._lock:
                self._lock.wait(TICK_S)
        self._announce()

    def _announce(self) -> None:
        if self.stop_event.is_set() and "stop" not in self._announced:
            self._announced.add("stop")
            reason = "" if not self.pool_exhausted_stop else " (credential pool exhausted, --no-wait)"
            say(f"[COORDINATOR] Shutting down{reason}... waiting for workers to checkpoint")
        if self.force_event.is_set() and "force" not in self._announced:
            self._announced.add("force")
            say("[COORDINATOR] Second interrupt: stopping workers now")

    def _run_item(self, item: Any, item_id: str, worker_func: Callable[[Any, Any], Any]) -> None:
        started = time.monotonic()
        result = WorkflowResult(
            item_id, False, "gave up after repeated credential errors", status=ItemStatus.FAILED
        )
        for _attempt in range(MAX_CREDENTIAL_RETRIES):
            credential = None
            if self._gate is not None:
                credential = self._gate.acquire(item_id)
                if credential is None:
                    result = self._no_credential(item_id)
                    break
            try:
                value = worker_func(item, credential)
            except (RateLimited, QuotaExhausted, AuthError) as exc:
                if credential is None or self._gate is None:
                    result = WorkflowResult(item_id, False, str(exc), status=ItemStatus.FAILED)
                    break
                self._gate.report(credential, exc)  # gives the key back, marked
                if self.stop_event.is_set():
                    result = WorkflowResult(item_id, False, str(exc), status=ItemStatus.INTERRUPTED)
                    break
                continue  # resume from the checkpoint with another (or the cooled) key
            except Interrupted as exc:
                result = WorkflowResult(item_id, False, str(exc), status=ItemStatus.INTERRUPTED)
            except Exception as exc:
                outcome = getattr(exc, "outcome", None)
                result = WorkflowResult(
                    item_id,
                    False,
                    str(exc) or type(exc).__name__,
                    status=ItemStatus.FAILED,
                    value=outcome,
                )
            else:
                status = getattr(value, "status", ItemStatus.APPROVED)
                result = WorkflowResult(item_id, True, None, status=status, value=value)
            if credential is not None and self._gate is not None:
                self._gate.release(credential)
            break
        result.duration = time.monotonic() - started
        self._finish(result)

    def _no_credential(self, item_id: str) -> WorkflowResult:
        if self.stop_event.is_set():
            return WorkflowResult(
                item_id, False, "interrupted before it started", status=ItemStatus.INTERRUPTED
            )
        return WorkflowResult(
            item_id, False, f"Failed to acquire credential for {item_id}", status=ItemStatus.FAILED
        )

    def _finish(self, result: WorkflowResult) -> None:
        with self._lock:
            self._results.append(result)
            stats = self._stats
            if result.item_id in stats.running:
                stats.running.remove(result.item_id)
            if result.status is ItemStatus.INTERRUPTED:
                stats.interrupted += 1
            else:
                stats.completed += 1
                if result.success:
                    stats.success_count += 1
                else:
                    stats.failed += 1
            self._done_ids.append(result.item_id)
            self._lock.notify_all()
        if self.listener:
            self.listener.item_finished(result, stats)

    # -- signal handler installation -----------------------------------------------
    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle_shutdown_signal)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
