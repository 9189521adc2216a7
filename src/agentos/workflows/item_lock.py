"""One owner per item across every run on the machine: the coordinator holds the item's lock.

The lock is `<workspace>/.agentos/locks/<workflow>_<key>.lock` (see `agentos.core.file_lock`).
The coordinator takes it when the item's first attempt starts and keeps it until the item's
final outcome, across credential retries, when one worker process ends and the next
resumes the item with another key. A worker lock would be free in that gap, and another
run could take the item halfway. Under the lock, the worker checks again that the item is
still to do (`pending.already_done`): another run may have finished it since this run listed it.

With a team backend (issue 23) the coordinator also takes the item's advisory lock there,
alongside the flock: one owner across every machine (`backend.postgres.item_ownership`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from agentos.backend.postgres.item_ownership import ItemOwnership
from agentos.core.file_lock import FileLock, lock_path, probe
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.printing import STDOUT, Console
from agentos.workflows.item import ItemJob


def item_lock_path(job: ItemJob) -> Path:
    return lock_path(Path(job.workspace), f"{job.kind.db_prefix}_{job.key}")


def worker_lock_path(job: ItemJob) -> Path:
    """Held by the worker process for its life: an orphan of a killed coordinator still has it."""
    return lock_path(Path(job.workspace), f"{job.kind.db_prefix}_{job.key}.worker")


def holder_of(job: ItemJob) -> int | None:
    """Read-only (dry runs): the pid of the run working on the item (0: unknown), or None."""
    return probe(item_lock_path(job))


def skipped_message(pid: int | None) -> str:
    return f"being processed by another run (pid {pid or 'unknown'})"


ELSEWHERE = "being processed by another machine (the backend holds its lock)"


LeaseT = TypeVar("LeaseT")  # what the coordinator hands a worker_func: keys, or None


class ItemLocks(Generic[LeaseT]):
    """Wrap a coordinator `worker_func`: take the item's lock before its first attempt.

    An item whose lock another process holds is not run: it ends as SKIPPED, with the
    holder's pid. The lock is released when the item reaches an outcome; a credential
    error (the coordinator retries with another key) keeps it.
    """

    def __init__(
        self,
        worker_func: Callable[[ItemJob, LeaseT], ItemOutcome],
        console: Console = STDOUT,
        ownership: ItemOwnership | None = None,
    ) -> None:
        self.worker_func = worker_func
        self.console = console
        self.ownership = ownership
        self._jobs: dict[str, ItemJob] = {}
        self._held: dict[str, FileLock] = {}
        self._mutex = threading.Lock()

    def __call__(self, job: ItemJob, credential: LeaseT) -> ItemOutcome:
        with self._mutex:
            lock = self._held.get(job.item_id)
        if lock is None:
            lock = FileLock(item_lock_path(job))
            orphan = None
            if lock.try_acquire():
                orphan = probe(worker_lock_path(job))  # a killed run's worker still finishing
                if orphan is not None:
                    lock.release()
            if not lock.held:
                message = skipped_message(lock.holder if orphan is None else orphan)
                self.console.line(f"[{job.item_id}] skipped: {message}")
                return ItemOutcome(ItemStatus.SKIPPED, error=message)
            refused = self._take_elsewhere(job) if self.ownership is not None else None
            if refused is not None:
                lock.release()
                self.console.line(f"[{job.item_id}] {refused.status.value}: {refused.error}")
                return refused
            with self._mutex:
                self._held[job.item_id] = lock
                self._jobs[job.item_id] = job
        try:
            value = self.worker_func(job, credential)
        except BaseException:
            self._release(job.item_id)
            raise
        if not (isinstance(value, ItemOutcome) and value.status is ItemStatus.CREDENTIAL):
            self._release(job.item_id)  # a credential error keeps it: the item resumes with another key
        return value

    def _take_elsewhere(self, job: ItemJob) -> ItemOutcome | None:
        """Take the backend's lock on the item: None when taken, else why the item is not run
        (another machine has it, or the backend did not answer: not started, resumable)."""
        assert self.ownership is not None
        try:
            if self.ownership.try_take(job.workspace_identity, job.kind.db_prefix, job.key):
                return None
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            error = f"not started: the backend did not answer ({first})"
            return ItemOutcome(ItemStatus.INTERRUPTED, error=error, backend_lost=True, started=False)
        return ItemOutcome(ItemStatus.SKIPPED, error=ELSEWHERE)

    def _release(self, item_id: str) -> None:
        with self._mutex:
            lock = self._held.pop(item_id, None)
            job = self._jobs.pop(item_id, None)
        if job is not None and self.ownership is not None:
            self.ownership.release(job.workspace_identity, job.kind.db_prefix, job.key)
        if lock is not None:
            lock.release()

    def release_all(self) -> None:
        """At the end of a run: items stopped after a credential error still hold theirs."""
        with self._mutex:
            held, self._held = list(self._held.values()), {}
            jobs, self._jobs = list(self._jobs.values()), {}
        if self.ownership is not None:
            for job in jobs:
                self.ownership.release(job.workspace_identity, job.kind.db_prefix, job.key)
        for lock in held:
            lock.release()
