"""ParallelCoordinator: run items at most P at a time, each as soon as a slot frees.

Each item is driven by a supervisor thread that calls `worker_func(item, credential)`;
in a batch, the CLI's worker_func runs the item in its own OS process (`WorkerLauncher`).
The main thread schedules, watches the credential pool and handles signals. Signal
handlers only set flags; all messages are printed from the main loop (the huey pattern).

Every deadline is decided in one place, the main loop's `_tick` (gunicorn's
`murder_workers`): an item past its --item-timeout is stopped, a stopped worker past its
grace is killed (`ChildRegistry.escalate`), and a drain past its grace kills what is left,
then stops waiting. The only deadline outside it is a worker's own, when it finds its
coordinator gone (`engine.worker`): nobody is left to decide it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from agentos.core.durations import format_duration
from agentos.core.outcome import ItemStatus
from agentos.core.printing import STDOUT, Console
from agentos.engine.attempts import Attempts
from agentos.engine.children import SHUTDOWN_GRACE_S, ChildRegistry, TermSequence
from agentos.engine.credential_gate import CredentialGate, CredentialSource, LeaseT
from agentos.engine.result import Listener, ProgressStats, WorkflowResult
from agentos.engine.shutdown import ShutdownRequest

DEFAULT_PARALLELISM = 3
MAX_PARALLELISM = 10
TICK_S = 0.1


ItemT = TypeVar("ItemT")


class ParallelCoordinator(Generic[LeaseT]):
    DEFAULT_PARALLELISM = DEFAULT_PARALLELISM  # when max_workers is None
    MAX_PARALLELISM = MAX_PARALLELISM  # higher values are capped, with a warning

    def __init__(
        self,
        max_workers: int | None = None,
        credential_coordinator: CredentialSource[LeaseT] | None = None,
        *,
        listener: Listener | None = None,
        no_wait: bool = False,
        acquire_timeout: float | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE_S,
        item_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        console: Console = STDOUT,
        on_tick: Callable[[float], None] | None = None,
    ) -> None:
        self.console = console  # every line the coordinator says: the run's console, passed in
        self.on_tick = on_tick  # told the time on each pass of the main loop (the live panel redraws)
        if max_workers is None:
            max_workers = self.DEFAULT_PARALLELISM
        if max_workers < 1:
            raise ValueError(f"parallelism must be at least 1, got {max_workers}")
        if max_workers > self.MAX_PARALLELISM:
            console.line(f"[COORDINATOR] Warning: parallelism {max_workers} capped at {self.MAX_PARALLELISM}")
            max_workers = self.MAX_PARALLELISM
        self.max_workers = max_workers
        self.credentials = credential_coordinator
        self.listener = listener
        self.shutdown_grace = shutdown_grace
        self.item_timeout = item_timeout or None  # seconds per run of an item; None: no limit
        self._clock = clock
        self.shutdown = ShutdownRequest(self._wake)  # SIGINT/SIGTERM: flags only
        self.stop_event = self.shutdown.stop  # first signal: drain
        self.force_event = self.shutdown.force  # second signal: kill
        # Worker processes register here; the drain stops them (TERM, grace, KILL).
        self.children = ChildRegistry(TermSequence(grace=shutdown_grace), clock=clock)
        self._gate = (
            CredentialGate(
                credential_coordinator,
                max_workers,
                self.stop_event,
                no_wait=no_wait,
                acquire_timeout=acquire_timeout,
                console=console,
            )
            if credential_coordinator is not None
            else None
        )
        self._lock = threading.Condition()
        self.admission_stop_reason: str | None = None  # set by stop_admitting()
        self._announced: set[str] = set()
        self._stats = ProgressStats()
        self._results: list[WorkflowResult] = []
        self._unfinished: list[str] = []
        self._done_ids: list[str] = []
        self._attempts = Attempts[LeaseT](
            self._gate, self.stop_event, lambda: self.admission_stop_reason, self.children, clock
        )
        self._expiry_hooks: dict[str, Callable[[str], None]] = {}  # in-process items' stop flags
        self._drain_deadline: float | None = None  # set when the drain starts
        self._give_up_at: float | None = None  # set when the drain kills what is left

    # -- signals -------------------------------------------------------------------
    @property
    def stop_signal(self) -> int | None:
        """The signal that started the shutdown; None when none did."""
        return self.shutdown.signum

    def _wake(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def stop_admitting(self, reason: str) -> None:
        """Start no new item; running items finish. Items never started are reported as
        NOT_STARTED with `reason`. Thread-safe; the first reason wins (--fail-fast, --max-cost)."""
        with self._lock:
            if self.admission_stop_reason is None:
                self.admission_stop_reason = reason
            self._lock.notify_all()

    @property
    def admitting(self) -> bool:
        return self.admission_stop_reason is None

    def interrupted_by(self) -> str | None:
        """Why the run stopped, in the operator's words: `Ctrl+C`, `SIGTERM`; None if it did not."""
        if self.stop_signal is None:
            if self.dead_keys:
                return "no usable key left"
            return "credential pool exhausted, --no-wait" if self.pool_exhausted_stop else None
        return self.shutdown.words()

    @property
    def pool_exhausted_stop(self) -> bool:
        """True when --no-wait ended the run because every key was out."""
        return self._gate is not None and self._gate.exhausted_stop

    @property
    def dead_keys(self) -> list[str]:
        """One line per key when the run stopped because every key of a provider was rejected."""
        return list(self._gate.dead) if self._gate is not None else []

    def get_checkpoints(self) -> list[str]:
        """Ids of items interrupted or never started: the ones a re-run will pick up."""
        return list(self._unfinished)

    # -- main loop -----------------------------------------------------------------
    def execute_parallel(
        self,
        items: Iterable[ItemT],
        worker_func: Callable[[ItemT, LeaseT | None], object],
        item_id_func: Callable[[ItemT], str],
        dry_run: bool = False,
    ) -> tuple[ProgressStats, list[WorkflowResult]]:
        items = list(items)
        self._stats = ProgressStats(total=len(items))
        if dry_run:
            self.console.line(
                f"[COORDINATOR] Dry run mode: {len(items)} item(s) would run, parallelism {self.max_workers}"
            )
            for item in items:
                self.console.line(f"[COORDINATOR]   {item_id_func(item)}")
            return self._stats, []
        installed = self.shutdown.install()
        pending = deque(items)
        threads: dict[str, threading.Thread] = {}
        try:
            while (pending and self.admitting and not self.stop_event.is_set()) or threads:
                self._announce()
                if self.stop_event.is_set():
                    self._begin_drain()
                else:
                    self._admit(pending, threads, worker_func, item_id_func)
                if self._tick(threads):
                    break  # the drain's last deadline: what is left is reported, not awaited
                with self._lock:
                    if not self._done_ids:
                        self._lock.wait(TICK_S)
                    done, self._done_ids = self._done_ids, []
                for item_id in done:  # free the slot at once: the next item starts now
                    threads.pop(item_id, None)
        finally:
            self.children.reap(self.children.sequence.reap)  # nothing left for an exit-time join
            self.shutdown.restore(installed)
        self._announce()
        for item_id, thread in threads.items():  # a supervisor that never came back
            if thread.is_alive():  # (not a process, or unkillable)
                self._finish(
                    WorkflowResult(
                        item_id,
                        False,
                        "still running at the shutdown deadline",
                        status=ItemStatus.INTERRUPTED,
                    )
                )
        with self._lock:
            if self.admission_stop_reason is not None and not self.stop_event.is_set():
                self._results.extend(self._never_started(pending, item_id_func))
            finished = {r.item_id for r in self._results if r.status is not ItemStatus.NOT_STARTED}
            self._unfinished = [i for i in map(item_id_func, items) if i not in finished] + [
                r.item_id for r in self._results if r.status is ItemStatus.INTERRUPTED
            ]
            return self._stats, list(self._results)

    def _admit(
        self,
        pending: deque[ItemT],
        threads: dict[str, threading.Thread],
        worker_func: Callable[[ItemT, LeaseT | None], object],
        item_id_func: Callable[[ItemT], str],
    ) -> None:
        """Start items while slots (and keys) allow."""
        limit = self._gate.effective_limit(bool(pending or threads)) if self._gate else self.max_workers
        while pending and len(threads) < limit and not self.stop_event.is_set() and self.admitting:
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

    # -- deadlines -----------------------------------------------------------------
    def _tick(self, threads: dict[str, threading.Thread]) -> bool:
        """Every deadline, decided on each pass of the main loop. True: the drain gives up."""
        now = self._clock()
        if self.item_timeout is not None:
            for item_id in self._attempts.overdue(now, self.item_timeout):
                self._expire(item_id)
        self.children.escalate()  # KILL the workers stopped longer ago than the grace
        if self.on_tick is not None:
            self.on_tick(now)
        if self._drain_deadline is None:
            return False
        for item_id in [i for i, t in threads.items() if not t.is_alive()]:
            del threads[item_id]
        if not threads:
            return False
        if self._give_up_at is None and (now >= self._drain_deadline or self.force_event.is_set()):
            if not self.force_event.is_set():
                self.console.line(
                    f"[COORDINATOR] Still running after {self.shutdown_grace:g}s: "
                    f"{', '.join(sorted(threads))}; killing"
                )
            self.children.kill_all()
            self._give_up_at = now + self.children.sequence.reap
        return self._give_up_at is not None and now >= self._give_up_at

    def _expire(self, item_id: str) -> None:
        """--item-timeout: stop this item's run (its process, or its in-process stop flag)."""
        limit = format_duration(self.item_timeout or 0)
        reason = f"timed out after {limit} (--item-timeout)"
        with self._lock:
            hook = self._expiry_hooks.get(item_id)
        self.console.line(f"[{item_id}] TIMED OUT after {limit} (--item-timeout); stopping this item")
        self.children.fail(item_id, reason)  # a worker process: TERM now, KILL after the grace
        if hook is not None:
            hook(reason)

    def on_expiry(self, item_id: str, hook: Callable[[str], None]) -> None:
        """For a worker_func that runs the item in this process: `hook(reason)` when the item's
        run passes --item-timeout (it sets the item's stop flag). Cleared when the item ends."""
        with self._lock:
            self._expiry_hooks[item_id] = hook

    def _begin_drain(self) -> None:
        """After the first signal: TERM every worker; the tick KILLs them after the grace (at
        once on a second signal), and stops waiting `reap` seconds after that."""
        if self._drain_deadline is not None:
            return
        self._drain_deadline = self._clock() + self.shutdown_grace
        if self._gate is not None:
            self._gate.close()  # wake items waiting for a key: they stop too
        self.children.stop_all()

    def _never_started(
        self, pending: Iterable[ItemT], item_id_func: Callable[[ItemT], str]
    ) -> list[WorkflowResult]:
        reason = f"not started: {self.admission_stop_reason}"
        return [
            WorkflowResult(item_id_func(item), False, reason, status=ItemStatus.NOT_STARTED)
            for item in pending
        ]

    def _announce(self) -> None:
        if self.stop_event.is_set() and "stop" not in self._announced:
            self._announced.add("stop")
            reason = (
                f" ({self.interrupted_by()})" if self.stop_signal is None and self.interrupted_by() else ""
            )
            self.console.line(f"[COORDINATOR] Shutting down{reason}... waiting for workers to checkpoint")
        if self.admission_stop_reason is not None and "admission" not in self._announced:
            self._announced.add("admission")
            self.console.line(
                f"[COORDINATOR] Stopping early: {self.admission_stop_reason}. "
                "No new item starts; running items finish."
            )
        if self.force_event.is_set() and "force" not in self._announced:
            self._announced.add("force")
            self.console.line("[COORDINATOR] Second interrupt: stopping workers now")

    def _run_item(
        self, item: ItemT, item_id: str, worker_func: Callable[[ItemT, LeaseT | None], object]
    ) -> None:
        started, started_at = self._clock(), time.time()
        try:
            result = self._attempts.run(item, item_id, worker_func)
        except Exception as exc:  # never lose the item: the run must go on and count it
            result = WorkflowResult(item_id, False, f"{type(exc).__name__}: {exc}", status=ItemStatus.FAILED)
        finally:
            with self._lock:
                self._expiry_hooks.pop(item_id, None)
        result.duration = self._clock() - started
        result.attempts = self._attempts.done(item_id)
        if result.attempts:
            result.started_at, result.ended_at = started_at, time.time()
        by = self.interrupted_by()
        if result.status is ItemStatus.INTERRUPTED and by is not None:  # the operator's words
            killed = result.outcome.killed_by if result.outcome is not None else None
            detail = f"; did not stop in time, killed by signal {killed}" if killed else ""  # the escalation
            result.error = f"interrupted ({by}){detail}" + (
                "; resumable from the last checkpoint" if result.attempts else " before it started"
            )
        self._finish(result)

    def _finish(self, result: WorkflowResult) -> None:
        with self._lock:
            if any(r.item_id == result.item_id for r in self._results):
                return  # the drain gave up on it and reported it already
            self._results.append(result)
            stats = self._stats
            if result.item_id in stats.running:
                stats.running.remove(result.item_id)
            if result.status is ItemStatus.INTERRUPTED:
                stats.interrupted += 1
            elif result.status is ItemStatus.NOT_STARTED:
                pass  # stop_admitting() came first: neither complete nor failed
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
