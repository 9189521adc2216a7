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
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

from agentos.credentials import Credential
from agentos.errors import AgentosError, Interrupted
from agentos.llm.errors import AuthError, LLMError, QuotaExhausted, RateLimited
from agentos.secrets import redact
from agentos.workflows.item import ItemJob, ItemOutcome, ItemStatus
from agentos.workflows.parallel.output import OutputPrefixer
from agentos.workflows.worker import credential_env, worker_main

READ_CHUNK = 65536
MAX_CONSOLE_LINE = 16384
# The worker stack, plus the CLI modules multiprocessing re-imports as __mp_main__ in each child.
BASE_PRELOAD = [
    "agentos.workflows.worker",
    "agentos.workflows.runner",
    "agentos.cli.lld",
    "agentos.cli.issue",
]


class WorkerFailed(AgentosError):
    """The item failed; `outcome` holds the details for the summary."""

    def __init__(self, outcome: ItemOutcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.error or "failed")


def start_method() -> str:
    """`forkserver` (fast, safe with threads); AGENTOS_START_METHOD=spawn for comparison."""
    method = os.environ.get("AGENTOS_START_METHOD", "forkserver")
    return method if method in multiprocessing.get_all_start_methods() else "spawn"


def make_context(preload: Iterable[str]) -> Any:
    ctx = multiprocessing.get_context(start_method())
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload([*BASE_PRELOAD, *preload, "agentos.workflows.parallel.forkserver_setup"])
        from multiprocessing import forkserver

        forkserver.ensure_running()  # start preloading now, while the coordinator sets up
    return ctx


def _ready() -> None:
    """Target of the warm-up process: returns at once."""


def warm_up(ctx: Any) -> float:
    """Wait until the fork server has imported the stack, so no item pays for it. Seconds taken."""
    started = time.monotonic()
    process = ctx.Process(target=_ready, name="warm-up")
    process.start()
    process.join()
    return time.monotonic() - started


def _credential_error(outcome: ItemOutcome) -> LLMError:
    message = outcome.error or "credential problem"
    error: LLMError
    if outcome.credential_problem == "rate_limited":
        error = RateLimited(outcome.retry_after, key_name=outcome.key_name, message=message)
    elif outcome.credential_problem == "quota":
        error = QuotaExhausted(outcome.reset_at, key_name=outcome.key_name, message=message)
    else:
        error = AuthError(message, key_name=outcome.key_name)
    error.provider = outcome.provider
    return error


def raise_for_outcome(outcome: ItemOutcome) -> ItemOutcome:
    """Speak ParallelCoordinator's language: return success, raise everything else."""
    if outcome.status is ItemStatus.CREDENTIAL:
        raise _credential_error(outcome)
    if outcome.status is ItemStatus.INTERRUPTED:
        raise Interrupted(outcome.error or "interrupted")
    if outcome.status is ItemStatus.FAILED:
        raise WorkerFailed(outcome)
    return outcome


class ProcessRunner:
    """The CLI's `worker_func`: one process per item, output to console and item log."""

    def __init__(
        self,
        ctx: Any,
        console: TextIO,
        log_path_for: Callable[[ItemJob], Path],
        stop: threading.Event,
        force: threading.Event,
        base_env: dict[str, str],
        target: Callable[..., None] = worker_main,
    ) -> None:
        self.ctx = ctx
        self.console = console
        self.log_path_for = log_path_for
        self.stop = stop
        self.force = force
        self.base_env = base_env
        self.target = target  # the process entry point; tests inject hostile workers here
        self.pids: dict[str, int] = {}  # running workers, for tests and diagnostics

    def __call__(self, job: ItemJob, credential: dict[str, Credential] | Credential | None) -> ItemOutcome:
        creds = self._as_mapping(credential)
        out_r, out_w = self.ctx.Pipe(duplex=False)
        res_r, res_w = self.ctx.Pipe(duplex=False)
        env = {**self.base_env, "AGENTOS_WORKFLOW_DB": job.db_path, **credential_env(creds)}
        process = self.ctx.Process(
            target=self.target, args=(job, out_w, res_w, env), name=job.item_id, daemon=False
        )
        process.start()
        out_w.close()
        res_w.close()
        self.pids[job.item_id] = process.pid
        try:
            self._pump(job, process, out_r)
            process.join()
        finally:
            self.pids.pop(job.item_id, None)
            out_r.close()
        outcome = self._outcome(job, process.exitcode, res_r)
        res_r.close()
        return raise_for_outcome(outcome)

    @staticmethod
    def _as_mapping(credential: dict[str, Credential] | Credential | None) -> dict[str, Credential]:
        if credential is None:
            return {}
        if isinstance(credential, Credential):
            return {credential.provider: credential}
        return dict(credential)

    def _pump(self, job: ItemJob, process: Any, out_r: Connection) -> None:
        """Copy the worker's bytes to its log and, line by line, to the console."""
        prefixer = OutputPrefixer(f"[{job.item_id}]", self.console, max_line=MAX_CONSOLE_LINE)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = out_r.fileno()
        sent_term = sent_kill = False
        exited_at: float | None = None
        log_path = self.log_path_for(job)
        with open(log_path, "a", encoding="utf-8", errors="replace") as log:
            while True:
                if self.stop.is_set() and not sent_term:
                    sent_term = self._signal(process, signal.SIGTERM)
                if self.force.is_set() and not sent_kill:
                    sent_kill = self._signal(process, signal.SIGKILL)
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        data = os.read(fd, READ_CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    text = redact(decoder.decode(data))  # keys never reach a log or the console
                    log.write(text)
                    log.flush()
                    prefixer.write(text)
                elif not process.is_alive():
                    # A grandchild may hold the pipe open; do not wait on it for long.
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 1.0:
                        break
            tail = decoder.decode(b"", final=True)
            log.write(tail)
            prefixer.write(tail)
            prefixer.flush()

    @staticmethod
    def _signal(process: Any, sig: int) -> bool:
        with contextlib.suppress(ProcessLookupError, TypeError):
            if process.pid and process.exitcode is None:
                os.kill(process.pid, sig)
        return True

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
