"""Run one item in its own OS process and carry its output, a whole line at a time.

Processes come from the fork server (`fork_server`). The item's outcome comes back on its
own pipe, so garbage on stdout can never be mistaken for a result. Ahead of the outcome,
that pipe carries the worker's progress notes (`core.progress_note`: JSON, never
unpickled), read as they come and handed to `on_progress` for the live panel; the first
message that is not a note is the outcome candidate, checked as before. What runs in the
process is the injected item runner (`worker.Runner`).
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any, Generic

from agentos.core import environment
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.progress_note import PAUSED, WAITING, ProgressNote
from agentos.core.redaction import StreamRedactor
from agentos.core.std_streams import TextSink
from agentos.engine.children import ChildRegistry
from agentos.engine.fork_server import WorkerContext, running, start_within, wait_for_exit
from agentos.engine.item_log import ItemLog
from agentos.engine.output_prefixer import OutputPrefixer
from agentos.engine.worker import EXIT_AFTER_STOP_ENV, JobT, Runner, RunnerRef, runner_module, worker_main
from agentos.keys.sources import Credential, credential_env

READ_CHUNK = 65536
MAX_CONSOLE_LINE = 16384


class WorkerLauncher(Generic[JobT]):
    """A coordinator `worker_func`: one process per item, output to console and item log."""

    def __init__(
        self,
        ctx: WorkerContext,
        console: TextSink,
        log_path_for: Callable[[JobT], Path],
        stop: threading.Event,
        force: threading.Event,
        base_env: dict[str, str],
        runner: Runner[JobT] | RunnerRef | None = None,
        *,
        target: Callable[..., None] | None = None,
        children: ChildRegistry | None = None,
        on_outcome: Callable[[JobT, ItemOutcome], None] | None = None,
        on_progress: Callable[[str, ProgressNote], None] | None = None,
    ) -> None:
        if target is None:
            if runner is None:
                raise ValueError("WorkerLauncher needs the item runner (or a process target)")
            if isinstance(runner, str):
                runner_module(runner)  # malformed: fail here, not in every worker
            target = functools.partial(worker_main, runner)
        self.ctx = ctx
        self.console = console
        self.log_path_for = log_path_for
        self.stop = stop
        self.force = force
        self.base_env = base_env
        self.target = target  # the process entry point: (job, output, result, env); tests inject hostile ones
        self.pids: dict[str, int] = {}  # running workers, for tests and diagnostics
        self.last_pids: dict[str, int] = {}  # each item's latest worker, running or not: the joblog
        # The one owner of every live worker: it stops them (TERM, grace, KILL).
        self.children = children or ChildRegistry()
        self.on_outcome = on_outcome  # told every attempt's outcome as reported (its token usage)
        self.on_progress = on_progress  # told each progress note of a running worker (the live panel)

    def __call__(self, job: JobT, credential: dict[str, Credential] | Credential | None) -> ItemOutcome:
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
                started = start_within(process, f"starting {job.item_id}", self.stop)
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
            self.children.pop_failure(job.item_id)
            return ItemOutcome(ItemStatus.INTERRUPTED, error="interrupted before it started", started=False)
        if process.pid is not None:  # set by a successful start()
            self.pids[job.item_id] = self.last_pids[job.item_id] = process.pid
        self.children.add(job.item_id, process)
        reports = _Reports(job.item_id, res_r, self.on_progress)
        reports.tell(ProgressNote.worker_started())
        try:
            self._pump(job, process, out_r, reports)
            wait_for_exit(process)  # the registry KILLs it if it outlives a stop
        finally:
            self.children.discard(job.item_id)
            self.pids.pop(job.item_id, None)
            out_r.close()
        outcome = self._outcome(job, process.exitcode, reports)
        res_r.close()
        if outcome.status is ItemStatus.CREDENTIAL:  # the item waits for a key, then resumes
            reports.tell(ProgressNote(node=PAUSED, key=WAITING))
        if self.on_outcome is not None:
            with contextlib.suppress(Exception):  # accounting never costs the item its outcome
                self.on_outcome(job, outcome)
        failure = self.children.pop_failure(job.item_id)  # its --item-timeout, or its log's disk
        if failure is not None and not outcome.status.succeeded:
            kept = f"; checkpoint kept at {job.db_path}" if os.path.exists(job.db_path) else ""
            outcome = ItemOutcome(ItemStatus.FAILED, error=f"{failure}{kept}", rounds=outcome.rounds)
        return outcome

    @staticmethod
    def _as_mapping(credential: dict[str, Credential] | Credential | None) -> dict[str, Credential]:
        if credential is None:
            return {}
        if isinstance(credential, Credential):
            return {credential.provider: credential}
        return dict(credential)

    def _pump(self, job: JobT, process: BaseProcess, out_r: Connection, reports: _Reports) -> None:
        """Copy the worker's bytes to its log and, line by line, to the console; pass its
        progress notes on as they come."""
        prefixer = OutputPrefixer(f"[{job.item_id}]", self.console, max_line=MAX_CONSOLE_LINE)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        redactor = StreamRedactor()  # on the assembled stream: a key split across reads is caught
        fd = out_r.fileno()
        exited_at: float | None = None
        log_path = self.log_path_for(job)

        def log_failed(why: str) -> None:  # the item's record is incomplete: stop and fail it
            prefixer.write(f"ERROR: {why}; stopping this item\n")
            self.children.fail(job.item_id, why)

        watch = selectors.DefaultSelector()  # epoll: any descriptor number (select() stops at 1024)
        watch.register(fd, selectors.EVENT_READ)
        watch.register(reports.fileno(), selectors.EVENT_READ, reports)
        with ItemLog(log_path, log_failed) as log, contextlib.closing(watch):
            while True:
                ready = watch.select(0.1)
                if any(key.data is reports for key, _ in ready):
                    if not reports.read_one():  # the outcome (or EOF) came: notes are over
                        watch.unregister(reports.fileno())
                    ready = [(key, events) for key, events in ready if key.data is not reports]
                    if not ready:
                        continue
                if ready:
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
                elif not running(process):
                    # A grandchild may hold the pipe open; do not wait on it for long.
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 1.0:
                        break
            tail = redactor.feed(decoder.decode(b"", final=True)) + redactor.flush()
            log.write(tail)
            prefixer.write(tail)
            prefixer.flush()

    def _outcome(self, job: JobT, exitcode: int | None, reports: _Reports) -> ItemOutcome:
        data = reports.outcome()
        if isinstance(data, ItemOutcome) and data.valid:
            return data
        kept = f"; checkpoint kept at {job.db_path}" if os.path.exists(job.db_path) else ""
        if exitcode is not None and exitcode < 0:
            signum = -exitcode
            reason = f"killed by signal {signum}"
            if self.stop.is_set() and signum in (signal.SIGTERM, signal.SIGKILL):
                return ItemOutcome(
                    ItemStatus.INTERRUPTED, error=f"interrupted ({reason}){kept}", killed_by=signum
                )
            return ItemOutcome(ItemStatus.FAILED, error=f"worker {reason}{kept}", killed_by=signum)
        if self.stop.is_set():
            return ItemOutcome(
                ItemStatus.INTERRUPTED, error=f"interrupted (worker exit code {exitcode}){kept}"
            )
        return ItemOutcome(
            ItemStatus.FAILED, error=f"worker exited with code {exitcode} without reporting an outcome{kept}"
        )


class _Reports:
    """The reading end of a worker's result pipe: progress notes, then the outcome.

    Each message is read whole (`recv_bytes`): a note is decoded as JSON and handed on;
    the first message that is not a note is kept, unread, as the outcome candidate, and
    unpickled only once the worker has ended, exactly as the outcome always was."""

    def __init__(
        self, item_id: str, conn: Connection, on_progress: Callable[[str, ProgressNote], None] | None
    ) -> None:
        self.item_id = item_id
        self.conn = conn
        self.on_progress = on_progress
        self.final: bytes | None = None
        self.ended = False  # the outcome candidate came, or the pipe ended

    def fileno(self) -> int:
        return self.conn.fileno()

    def tell(self, note: ProgressNote) -> None:
        if self.on_progress is not None:
            with contextlib.suppress(Exception):  # the panel is a view: never the item's failure
                self.on_progress(self.item_id, note)

    def read_one(self) -> bool:
        """Read one message; False once nothing but the outcome is left to read."""
        if self.ended:
            return False
        try:
            data = self.conn.recv_bytes()
        except (EOFError, OSError):
            self.ended = True
            return False
        note = ProgressNote.decode(data)
        if note is not None:
            self.tell(note)
            return True
        if data.startswith(b"{"):
            return True  # JSON that is not a note: dropped, like any garbage
        self.final, self.ended = data, True
        return False

    def outcome(self) -> Any:
        """What the worker sent as its outcome (None when it sent none), after the notes
        still in the pipe; the worker has ended, so nothing more comes."""
        with contextlib.suppress(EOFError, OSError, ValueError):
            while not self.ended and self.conn.poll(0):
                self.read_one()
        if self.final is None:
            return None
        with contextlib.suppress(Exception):  # a worker's garbage: no outcome
            return ForkingPickler.loads(self.final)
        return None
