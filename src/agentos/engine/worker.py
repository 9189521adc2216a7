"""The worker process: runs one item and reports its outcome. Child side of the engine.

Modelled on huey's consumer: `initialize` (own process group, output, signals, watchdog),
`run` (call the injected item runner), `shutdown` (report, exit with the outcome's code).
Signal handlers only set the stop flag; the runner stops at its next safe point. What an
item *is* belongs to the runner (`runs/` injects the workflows'); the engine only needs a
job's id and checkpoint path.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from types import FrameType
from typing import Generic, Protocol, TypeVar

from agentos.core import environment, progress_note, stop_signals
from agentos.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_POOL_EXHAUSTED
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.printing import STDOUT, Console
from agentos.core.stop_flag import StopFlag


class Job(Protocol):
    """What the engine needs of an item's job; the rest is the runner's."""

    @property
    def item_id(self) -> str: ...

    @property
    def db_path(self) -> str: ...


JobT = TypeVar("JobT", bound=Job)
JobT_contra = TypeVar("JobT_contra", bound=Job, contravariant=True)


class Runner(Protocol[JobT_contra]):
    """Runs one item in the worker process, to an honest outcome. A module-level function:
    it is pickled by reference to reach the fork server."""

    def __call__(self, job: JobT_contra, stop: StopFlag, console: Console) -> ItemOutcome: ...


RunnerRef = str  # "package.module:function": a Runner named, so the coordinator never imports it


def runner_module(ref: RunnerRef) -> str:
    """The module of `ref`, for the fork server to preload; ValueError on a malformed one."""
    module, sep, name = ref.partition(":")
    if not sep or not module or not name.isidentifier():
        raise ValueError(f"an item runner is named 'package.module:function', got {ref!r}")
    return module


def resolve_runner(ref: Runner[JobT] | RunnerRef) -> Runner[JobT]:
    """The runner itself. Named ones are imported here, in the worker, from the preloaded stack:
    the coordinator stays light (it never imports LangGraph)."""
    if not isinstance(ref, str):
        return ref
    module = importlib.import_module(runner_module(ref))
    runner: Runner[JobT] = getattr(module, ref.partition(":")[2])
    return runner


WATCHDOG_S = 0.2
# Set by the coordinator from its TermSequence (children.py), where every stop timing lives.
EXIT_AFTER_STOP_ENV = environment.WORKER_EXIT_AFTER_STOP_S.name
DEFAULT_EXIT_AFTER_STOP_S = 4.0
EXIT_CODES = {
    ItemStatus.APPROVED: EXIT_OK,
    ItemStatus.NEEDS_REVISION: EXIT_OK,
    ItemStatus.FAILED: EXIT_FAILED,
    ItemStatus.INTERRUPTED: EXIT_INTERRUPTED,
    ItemStatus.CREDENTIAL: EXIT_POOL_EXHAUSTED,
    ItemStatus.SKIPPED: EXIT_OK,
}


class Worker(Generic[JobT]):
    def __init__(
        self, runner: Runner[JobT], job: JobT, output: Connection, result: Connection, env: dict[str, str]
    ) -> None:
        self.runner = runner
        self.console: Console = STDOUT  # after initialize(): the item's output pipe
        self.job = job
        self.output = output
        self.result = result
        self.env = env
        self.stop = StopFlag()
        self.parent = os.getppid()
        self._result_lock = threading.Lock()  # notes (any thread) and the outcome: one message at a time

    def initialize(self) -> None:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # out of the terminal's group: the coordinator decides when we stop
        fd = self.output.fileno()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        os.environ.update(self.env)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        stop_signals.unblock_in_child()  # the fork server holds them blocked; pending ones arrive now
        progress_note.install(self._send_note)
        threading.Thread(target=self._watchdog, name="watchdog", daemon=True).start()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set(f"signal {signum}")

    def _watchdog(self) -> None:
        """Stop when the coordinator (our parent's side) is gone; never outlive it.

        The one deadline a worker decides for itself: with its coordinator gone, nobody else
        can. A stop the coordinator asked for (TERM) is timed by the coordinator's tick, which
        KILLs the worker's group once the grace has passed."""
        coordinator = int(environment.COORDINATOR_PID.get(self.env) or 0)
        while True:
            time.sleep(WATCHDOG_S)
            gone = os.getppid() != self.parent
            if coordinator and not gone:
                try:
                    os.kill(coordinator, 0)
                except ProcessLookupError:
                    gone = True
                except PermissionError:
                    pass
            if gone:
                self.stop.set("coordinator exited")
                break
        time.sleep(self._exit_after_stop())  # a stop that is not honoured in time: leave anyway
        os._exit(EXIT_INTERRUPTED)

    def _exit_after_stop(self) -> float:
        try:
            value = float(self.env.get(EXIT_AFTER_STOP_ENV, DEFAULT_EXIT_AFTER_STOP_S))
        except ValueError:
            value = DEFAULT_EXIT_AFTER_STOP_S
        return min(max(value, 0.1), 60.0) if value == value else DEFAULT_EXIT_AFTER_STOP_S

    def _send_note(self, note: progress_note.ProgressNote) -> None:
        """A progress note for the coordinator's panel, on the result pipe ahead of the outcome."""
        with self._result_lock, contextlib.suppress(OSError, ValueError):
            self.result.send_bytes(note.encode())

    def run(self) -> ItemOutcome:
        self.console.line(f">>> Worker process {os.getpid()} started; checkpoint DB {self.job.db_path}")
        return self.runner(self.job, self.stop, self.console)

    def shutdown(self, outcome: ItemOutcome) -> int:
        progress_note.install(None)  # the outcome is the pipe's last message
        with self._result_lock, contextlib.suppress(OSError, ValueError):
            self.result.send(outcome)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        return EXIT_CODES[outcome.status]


def worker_main(
    runner: Runner[JobT] | RunnerRef, job: JobT, output: Connection, result: Connection, env: dict[str, str]
) -> None:
    """Process target. Exits with os._exit so abandoned LLM threads cannot delay the exit."""
    worker = Worker(resolve_runner(runner), job, output, result, env)
    worker.initialize()
    try:
        outcome = worker.run()
    except BaseException as exc:
        outcome = ItemOutcome(ItemStatus.FAILED, error=f"worker crashed: {type(exc).__name__}: {exc}")
    os._exit(worker.shutdown(outcome))
