"""The live worker processes, with one owner, and the one TERM -> wait -> KILL sequence.

Every worker process is registered here from its start until it is reaped. Stopping a
worker, for a shutdown, a second Ctrl+C or an item timeout, always follows
`TermSequence`: SIGTERM and SIGCONT to the worker's process group (workers call
`setpgid(0, 0)`; SIGCONT wakes a SIGSTOPped one so it can honour the TERM), then SIGKILL
to the group once `grace` has passed. The models are rq's `stop_workers`/`reap_workers`
and GNU parallel's `--termseq`. `escalate()` is called on every coordinator tick, which
decides every deadline (`ParallelCoordinator._tick`); this module only carries them out.

A worker stopped for a reason of its own (its --item-timeout, its log's disk) is marked
with `fail(key, reason)`, before or after it registers; its launcher reads the mark when
the process has ended (`pop_failure`) and fails the item with it.

Signal handlers never call in here: the coordinator's main loop does.
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

SHUTDOWN_GRACE_S = 5.0


@dataclass(frozen=True)
class TermSequence:
    """Every stop timing in one place."""

    grace: float = SHUTDOWN_GRACE_S  # TERM -> KILL
    reap: float = 3.0  # KILL -> stop waiting for the supervisor threads

    @property
    def worker_exit(self) -> float:
        """A stopped worker leaves by itself (os._exit) this long after its stop flag,
        before the coordinator's KILL; passed to workers in the environment."""
        return max(0.1, self.grace * 0.8)


@dataclass
class _Child:
    process: BaseProcess
    term_at: float | None = None
    killed: bool = False


def signal_group(pid: int | None, sig: int) -> None:
    """Signal the process group a worker leads; the worker alone if it has not made it yet.

    Only a group whose id is the worker's own pid is ever signalled, never the
    coordinator's or the terminal's.
    """
    if pid is None:  # never started: nothing to signal
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError:
        pass


class ChildRegistry:
    def __init__(
        self, sequence: TermSequence | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sequence = sequence or TermSequence()
        self._clock = clock
        self._lock = threading.Lock()
        self._children: dict[str, _Child] = {}
        self._failures: dict[str, str] = {}  # key -> why it was stopped (timeout, disk)
        self._stopping = False
        self._killing = False

    # -- membership ------------------------------------------------------------------
    def add(self, key: str, process: BaseProcess) -> None:
        """Register a started process. During a shutdown it is stopped at once."""
        with self._lock:
            child = self._children[key] = _Child(process)
            stopping, killing, failed = self._stopping, self._killing, key in self._failures
        if killing:
            self._kill(child)
        elif stopping or failed:
            self._term(child)

    def discard(self, key: str) -> None:
        with self._lock:
            self._children.pop(key, None)

    def live(self) -> list[str]:
        with self._lock:
            items = list(self._children.items())
        return [key for key, child in items if _alive(child.process)]

    def pid(self, key: str) -> int | None:
        with self._lock:
            child = self._children.get(key)
        return child.process.pid if child else None

    # -- the sequence ----------------------------------------------------------------
    def stop(self, key: str) -> None:
        """TERM one worker (an item timeout); `escalate` KILLs it after the grace."""
        with self._lock:
            child = self._children.get(key)
        if child is not None:
            self._term(child)

    def fail(self, key: str, reason: str) -> bool:
        """Stop `key`'s worker like a drain (TERM, grace, KILL), now or as soon as it registers,
        and mark why. False when it was marked already (the first reason wins)."""
        with self._lock:
            if key in self._failures:
                return False
            self._failures[key] = reason
            child = self._children.get(key)
        if child is not None:
            self._term(child)
        return True

    def pop_failure(self, key: str) -> str | None:
        """Why `key` was stopped, if it was; the mark is cleared for its next run."""
        with self._lock:
            return self._failures.pop(key, None)

    def stop_all(self) -> None:
        """TERM every worker, and every worker started from now on."""
        with self._lock:
            self._stopping = True
            children = list(self._children.values())
        for child in children:
            self._term(child)

    def kill_all(self) -> None:
        """KILL every worker group now (second Ctrl+C, or the drain deadline)."""
        with self._lock:
            self._stopping = self._killing = True
            children = list(self._children.values())
        for child in children:
            self._kill(child)

    def escalate(self) -> list[str]:
        """KILL the workers whose TERM is older than the grace. Returns their keys."""
        now = self._clock()
        with self._lock:
            due = [
                (key, child)
                for key, child in self._children.items()
                if child.term_at is not None
                and not child.killed
                and now - child.term_at >= self.sequence.grace
            ]
        for _key, child in due:
            self._kill(child)
        return [key for key, child in due if child.killed]

    def _term(self, child: _Child) -> None:
        if child.term_at is not None or not _alive(child.process):
            return
        child.term_at = self._clock()
        signal_group(child.process.pid, signal.SIGTERM)
        signal_group(child.process.pid, signal.SIGCONT)  # a stopped worker must see the TERM

    def _kill(self, child: _Child) -> None:
        if child.killed or not _alive(child.process):
            return
        child.killed = True
        if child.term_at is None:
            child.term_at = self._clock()
        signal_group(child.process.pid, signal.SIGKILL)

    # -- the end -----------------------------------------------------------------------
    def reap(self, timeout: float) -> list[str]:
        """Join every registered process; KILL and forget any that will not end.

        Afterwards nothing is left for multiprocessing's exit-time join, which would
        otherwise block the coordinator's exit forever on a stuck child.
        """
        deadline = self._clock() + timeout
        with self._lock:
            items = list(self._children.items())
        stuck = []
        for key, child in items:
            process = child.process
            if _alive(process):
                self._kill(child)
                with contextlib.suppress(Exception):
                    process.join(max(0.0, deadline - self._clock()))
            if _alive(process):
                stuck.append(key)
                _forget(process)
        return stuck


def _alive(process: BaseProcess) -> bool:
    """Whether the process still runs, without reaping it: the supervisor thread reads
    its exit status, and two readers of a fork-server sentinel could race. Its pid decides,
    not the sentinel: a killed fork server reads as "exited" for every running worker, and
    a stopped one never reports a worker that has ended (pid_running)."""
    try:
        return pid_running(process.pid)
    except (ValueError, OSError, AttributeError):
        return False


def pid_running(pid: int | None) -> bool:
    """Whether `pid` still runs (not gone, not a zombie).

    A fork-server worker's exit status comes from the fork server. Once the server is killed
    (a stalled start, `stop_helpers`), every running worker reads as "exited, 255"; while it
    is stopped, an ended worker stays its zombie and is never reported. So the pid has the
    last word: a worker is never left unsupervised or unkilled, nor waited for forever.
    The server reaps a worker before it reports its status, so an ended one is gone here.
    """
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended; whoever is its parent now reaps it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _forget(process: BaseProcess) -> None:
    """Drop a process that survived SIGKILL (uninterruptible I/O) from multiprocessing's
    list of children, which its atexit handler joins without a timeout."""
    children = getattr(multiprocessing.process, "_children", None)
    if isinstance(children, set):
        children.discard(process)
