"""Run one item in its own OS process and carry its output, a whole line at a time.

Processes come from a multiprocessing *forkserver* that has the heavy modules
(LangGraph, the provider SDKs, the workflows) preloaded, so each item costs a fork,
not a 1-second interpreter start. The item's outcome comes back on its own pipe, so
garbage on stdout can never be mistaken for a result.
"""

from __future__ import annotations

import codecs
import contextlib
import multiprocessing
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from agentos import stop_signals
from agentos.core import environment
from agentos.core.durations import format_duration
from agentos.core.errors import StartupStalled
from agentos.core.redaction import StreamRedactor
from agentos.keys.sources import Credential
from agentos.std_streams import TextSink
from agentos.workflows.item import ItemJob, ItemOutcome, ItemStatus
from agentos.workflows.parallel.children import ChildRegistry, pid_running
from agentos.workflows.parallel.output_prefixer import OutputPrefixer
from agentos.workflows.parallel.timestamped_log import TimestampedLog
from agentos.workflows.worker import EXIT_AFTER_STOP_ENV, credential_env, worker_main

READ_CHUNK = 65536
MAX_CONSOLE_LINE = 16384
# The worker stack, plus the CLI modules multiprocessing re-imports as __mp_main__ in each child.
BASE_PRELOAD = [
    "agentos.workflows.worker",
    "agentos.workflows.item_execution",
    "agentos.cli.lld",
    "agentos.cli.issue",
]


def start_method() -> str:
    """`forkserver` (fast, safe with threads); AGENTOS_START_METHOD=spawn for comparison."""
    method = environment.START_METHOD.get() or "forkserver"
    return method if method in multiprocessing.get_all_start_methods() else "spawn"


WorkerContext = ForkServerContext | SpawnContext  # the two ways agentos starts workers


def make_context(preload: Iterable[str]) -> WorkerContext:
    if start_method() != "forkserver":
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        [
            "agentos.workflows.parallel.forkserver_begin",
            *BASE_PRELOAD,
            *preload,
            "agentos.workflows.parallel.forkserver_setup",
        ]
    )
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()  # it blocks, then unblocks, the signals itself
    # Start preloading now, while the coordinator sets up. The server shares the
    # terminal's process group: it is born with SIGINT/SIGTERM blocked, so a Ctrl+C
    # during its preload never prints a KeyboardInterrupt; the coordinator owns it.
    with stop_signals.blocked_during_spawn():
        forkserver.ensure_running()
    return ctx


def _ready() -> None:
    """Target of the warm-up process: returns at once."""


DEFAULT_STARTUP_TIMEOUT_S = 120.0


def startup_timeout() -> float:
    """AGENTOS_STARTUP_TIMEOUT in seconds (default 120): how long a start may take."""
    raw = environment.STARTUP_TIMEOUT.get_stripped()
    try:
        value = float(raw) if raw else DEFAULT_STARTUP_TIMEOUT_S
    except ValueError:
        return DEFAULT_STARTUP_TIMEOUT_S
    return value if 0 < value < 86400 else DEFAULT_STARTUP_TIMEOUT_S


STOP_GRACE_S = 0.5  # a start under way when a stop comes may finish; then it is tracked


def _start_within(process: BaseProcess, what: str, stop: threading.Event | None = None) -> bool:
    """`process.start()` with a deadline: it blocks on the fork server, which may be
    stopped (SIGSTOP) or stuck. On the deadline the fork server is killed (the blocked
    `start()` then fails) and StartupStalled names it. On a stop (Ctrl+C), a start that
    does not finish within STOP_GRACE_S is ended the same way, and False says it never ran."""
    started = time.monotonic()
    limit = startup_timeout()
    failure: list[BaseException] = []

    def start() -> None:
        try:
            process.start()
        except BaseException as exc:
            failure.append(exc)

    starter = threading.Thread(target=start, name=f"start-{what}", daemon=True)
    starter.start()
    stopping_since: float | None = None
    while starter.is_alive():
        now = time.monotonic()
        if stopping_since is None and (stop_signals.requested() or (stop is not None and stop.is_set())):
            stopping_since = now
        if stopping_since is not None and now - stopping_since > STOP_GRACE_S:
            stop_helpers()
            starter.join(5)
            return False
        if now - started > limit:
            stop_helpers()
            starter.join(5)
            raise StartupStalled(f"the fork server ({what})", limit)
        starter.join(0.05)
    if failure:
        if stopping_since is not None:
            return False
        raise failure[0]
    return True


def warm_up(ctx: WorkerContext, stop: threading.Event | None = None) -> float:
    """Wait until the fork server has imported the stack, so no item pays for it. Seconds taken.

    `Process.start()` blocks until the server has finished its preload, so it runs on a
    helper thread: a Ctrl+C (`stop`, or a request seen by `stop_signals`) ends the wait, and
    so does AGENTOS_STARTUP_TIMEOUT (StartupStalled)."""
    started = time.monotonic()
    process = ctx.Process(target=_ready, name="warm-up")
    if _start_within(process, "preloading the stack", stop):
        _wait_for_exit(process)
    return time.monotonic() - started


def stop_helpers() -> None:
    """End the fork server and the resource tracker now (SIGKILL, then reap): a stopped
    one would never notice the coordinator is gone, and both hold the coordinator's
    stdout, so `agentos ... | cat` would not end. They start again when next needed."""
    from multiprocessing import forkserver, resource_tracker

    helpers: tuple[tuple[Any, str], ...] = (
        (forkserver._forkserver, "_forkserver_pid"),
        (resource_tracker._resource_tracker, "_pid"),
    )
    for owner, attribute in helpers:
        pid = getattr(owner, attribute, None)
        if not isinstance(pid, int) or pid <= 0:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):  # closes its pipe and reaps it: dead, so at once
            owner._stop()


class WorkerLauncher:
    """The CLI's `worker_func`: one process per item, output to console and item log."""

    def __init__(
        self,
        ctx: WorkerContext,
        console: TextSink,
        log_path_for: Callable[[ItemJob], Path],
        stop: threading.Event,
        force: threading.Event,
        base_env: dict[str, str],
        target: Callable[..., None] = worker_main,
        *,
        children: ChildRegistry | None = None,
        item_timeout: float | None = None,
        on_outcome: Callable[[ItemJob, ItemOutcome], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.console = console
        self.log_path_for = log_path_for
        self.stop = stop
        self.force = force
        self.base_env = base_env
        self.target = target  # the process entry point; tests inject hostile workers here
        self.pids: dict[str, int] = {}  # running workers, for tests and diagnostics
        self.last_pids: dict[str, int] = {}  # each item's latest worker, running or not: the joblog
        # The one owner of every live worker: it stops them (TERM, grace, KILL).
        self.children = children or ChildRegistry()
        self.item_timeout = item_timeout or None  # seconds per run of an item's process; 0: none
        self._failures: dict[str, str] = {}  # item -> why the runner stopped it (timeout, disk)
        self.on_outcome = on_outcome  # told every attempt's outcome as reported (its token usage)

    def __call__(self, job: ItemJob, credential: dict[str, Credential] | Credential | None) -> ItemOutcome:
        creds = self._as_mapping(credential)
        env = {
            **self.base_env,
            environment.WORKFLOW_DB.name: job.db_path,
            EXIT_AFTER_STOP_ENV: str(self.children.sequence.worker_exit),
            **credential_env(creds),
        }
        for attempt in (1, 2):
            out_r, out_w = self.ctx.Pipe(duplex=False)
            res_r, res_w = self.ctx.Pipe(duplex=False)
            process = self.ctx.Process(
                target=self.target, args=(job, out_w, res_w, env), name=job.item_id, daemon=False
            )
            try:
                started = _start_within(process, f"starting {job.item_id}", self.stop)
                break
            except (EOFError, ConnectionError):
                for end in (out_w, res_w, out_r, res_r):
                    end.close()
                if attempt == 2:
                    raise
                # The server died under this start (another start's stall killed it): once
                # more, on a new server. Nothing of the item ran.
            except BaseException:
                for end in (out_w, res_w, out_r, res_r):
                    end.close()
                raise
        out_w.close()
        res_w.close()
        if not started:  # a stop came while the fork server was slow: the item never ran
            out_r.close()
            res_r.close()
            return ItemOutcome(ItemStatus.INTERRUPTED, error="interrupted before it started")
        if process.pid is not None:  # set by a successful start()
            self.pids[job.item_id] = self.last_pids[job.item_id] = process.pid
        self.children.add(job.item_id, process)
        self._failures.pop(job.item_id, None)
        try:
            self._pump(job, process, out_r)
            _wait_for_exit(process)  # the registry KILLs it if it outlives a stop
        finally:
            self.children.discard(job.item_id)
            self.pids.pop(job.item_id, None)
            out_r.close()
        outcome = self._outcome(job, process.exitcode, res_r)
        res_r.close()
        if self.on_outcome is not None:
            with contextlib.suppress(Exception):  # accounting never costs the item its outcome
                self.on_outcome(job, outcome)
        failure = self._failures.pop(job.item_id, None)
        if failure is not None and not outcome.status.succeeded:
            kept = f"; checkpoint kept at {job.db_path}" if os.path.exists(job.db_path) else ""
            outcome = ItemOutcome(ItemStatus.FAILED, error=f"{failure}{kept}", rounds=outcome.rounds)
        return outcome

    def _fail_item(self, job: ItemJob, reason: str) -> None:
        """Stop this item's worker like a drain (TERM, grace, KILL) and fail the item."""
        if job.item_id not in self._failures:
            self._failures[job.item_id] = reason
            self.children.stop(job.item_id)

    @staticmethod
    def _as_mapping(credential: dict[str, Credential] | Credential | None) -> dict[str, Credential]:
        if credential is None:
            return {}
        if isinstance(credential, Credential):
            return {credential.provider: credential}
        return dict(credential)

    def _pump(self, job: ItemJob, process: BaseProcess, out_r: Connection) -> None:
        """Copy the worker's bytes to its log and, line by line, to the console."""
        prefixer = OutputPrefixer(f"[{job.item_id}]", self.console, max_line=MAX_CONSOLE_LINE)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        redactor = StreamRedactor()  # on the assembled stream: a key split across reads is caught
        fd = out_r.fileno()
        exited_at: float | None = None
        log_path = self.log_path_for(job)
        deadline = time.monotonic() + self.item_timeout if self.item_timeout else None

        def log_failed(why: str) -> None:  # the item's record is incomplete: stop and fail it
            prefixer.write(f"ERROR: {why}; stopping this item\n")
            self._fail_item(job, why)

        watch = selectors.DefaultSelector()  # epoll: any descriptor number (select() stops at 1024)
        watch.register(fd, selectors.EVENT_READ)
        with _ItemLog(log_path, log_failed) as log, contextlib.closing(watch):
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    deadline = None
                    timeout = format_duration(self.item_timeout or 0)
                    prefixer.write(f"TIMED OUT after {timeout} (--item-timeout); stopping this item\n")
                    self._fail_item(job, f"timed out after {timeout} (--item-timeout)")
                if watch.select(0.1):
                    try:
                        data = os.read(fd, READ_CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    text = redactor.feed(decoder.decode(data))  # keys never reach a log or the console
                    log.write(text)
                    log.flush()
                    prefixer.write(text)
                elif not _running(process):
                    # A grandchild may hold the pipe open; do not wait on it for long.
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 1.0:
                        break
            tail = redactor.feed(decoder.decode(b"", final=True)) + redactor.flush()
            log.write(tail)
            prefixer.write(tail)
            prefixer.flush()

    def _outcome(self, job: ItemJob, exitcode: int | None, res_r: Connection) -> ItemOutcome:
        data: Any = None
        with contextlib.suppress(EOFError, OSError, ValueError, TypeError, AttributeError, ImportError):
            if res_r.poll(0):
                data = res_r.recv()
        if isinstance(data, dict):
            with contextlib.suppress(KeyError, ValueError, TypeError):
                return ItemOutcome.from_dict(data)
        kept = f"; checkpoint kept at {job.db_path}" if os.path.exists(job.db_path) else ""
        if exitcode is not None and exitcode < 0:
            reason = f"killed by signal {-exitcode}"
            if self.stop.is_set() and -exitcode in (signal.SIGTERM, signal.SIGKILL):
                return ItemOutcome(ItemStatus.INTERRUPTED, error=f"interrupted ({reason}){kept}")
            return ItemOutcome(ItemStatus.FAILED, error=f"worker {reason}{kept}")
        if self.stop.is_set():
            return ItemOutcome(
                ItemStatus.INTERRUPTED, error=f"interrupted (worker exit code {exitcode}){kept}"
            )
        return ItemOutcome(
            ItemStatus.FAILED, error=f"worker exited with code {exitcode} without reporting an outcome{kept}"
        )


STATUS_WAIT_S = 1.0  # how long an ended worker's exit status may take to arrive


def _wait_for_exit(process: BaseProcess) -> None:
    """`process.join()`, except that the exit status of a fork-server worker is sent by the
    server: a stopped (SIGSTOP) server never sends it, and a plain join waited forever after
    the item had ended. Once the pid has ended, the status gets STATUS_WAIT_S; the outcome
    itself comes on the item's own pipe, so nothing is lost without it."""
    ended_at: float | None = None
    while process.exitcode is None:
        process.join(0.05)
        if process.exitcode is not None or _running(process):
            ended_at = None
            continue
        ended_at = ended_at or time.monotonic()
        if time.monotonic() - ended_at > STATUS_WAIT_S:
            return


def _running(process: BaseProcess) -> bool:
    """Whether the worker still runs. Its pid decides: a killed fork server reads as "exited"
    for every worker, and a stopped one reports none (pid_running)."""
    return pid_running(process.pid)


class _ItemLog:
    """The item's log file. A failed write (disk full, I/O error) fails this item only:
    `on_error` is told once, and the output still reaches the console."""

    def __init__(self, path: Path, on_error: Callable[[str], None]) -> None:
        self.path = path
        self.on_error = on_error
        self._file: TimestampedLog | None = None
        self.failed = False

    def __enter__(self) -> _ItemLog:
        try:
            # every line stamped; the console is not
            self._file = TimestampedLog(open(self.path, "a", encoding="utf-8", errors="replace"))
        except OSError as exc:
            self._fail(exc)
        return self

    def write(self, text: str) -> None:
        if self._file is not None and not self.failed:
            try:
                self._file.write(text)
            except (OSError, ValueError) as exc:
                self._fail(exc)

    def flush(self) -> None:
        if self._file is not None and not self.failed:
            try:
                self._file.flush()
            except (OSError, ValueError) as exc:
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        reason = getattr(exc, "strerror", None) or str(exc)
        self.on_error(f"disk error: cannot write the item log {self.path}: {reason}")

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.close()
