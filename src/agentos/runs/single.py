"""One item in this process: the same coordinator, pool and outcomes as a batch."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentos.core.durations import format_duration
from agentos.core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_POOL_EXHAUSTED,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
)
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.printing import Console
from agentos.core.redaction import register_secret
from agentos.core.stop_flag import StopFlag
from agentos.engine.console import ConsoleRouter
from agentos.engine.coordinator import ParallelCoordinator
from agentos.engine.credential_gate import DEAD_KEYS_ADVICE
from agentos.engine.listeners import ListenerGroup
from agentos.engine.result import WorkflowResult
from agentos.engine.timestamped_log import TimestampedLog, quietly_closed
from agentos.engine.verbosity import Verbosity, single_view
from agentos.keys.pools import PoolSet
from agentos.keys.sources import Credential
from agentos.runs import summary
from agentos.runs.item_record import ItemRecord
from agentos.runs.progress import RunProgress
from agentos.runs.spend import SpendMeter
from agentos.runs.team import TeamRun
from agentos.workflows.item import ItemJob
from agentos.workflows.item_execution import run_item
from agentos.workflows.item_lock import ItemLocks


class _ItemStop(StopFlag):
    """Set by the run's stop (Ctrl+C) or by this item's timer, which must not stop the run."""

    def __init__(self, run_stop: threading.Event) -> None:
        super().__init__()
        self._run_stop = run_stop

    def is_set(self) -> bool:
        return self._run_stop.is_set() or super().is_set()

    def check(self) -> None:
        if self._run_stop.is_set():
            self.set("stop requested")
        super().check()


def run_single(
    job: ItemJob,
    pools: PoolSet,
    banner: str,
    no_wait: bool = False,
    item_timeout: float | None = None,
    verbosity: Verbosity = Verbosity.NORMAL,
    spend: SpendMeter | None = None,
    run_dir: Path | None = None,
    run_info: Mapping[str, Any] | None = None,
) -> int:
    """Run `job` here. Console output goes through the same redacting router as a batch's.

    With `run_dir`, the run is recorded like a batch's, so `agentos runs` and `show` see it:
    the item's full log, its audit (the job's audit path is in the folder), `progress.json`
    while it runs and `summary.json` at the end."""
    terminal, errors = sys.stdout, sys.stderr
    started = time.time()
    workflow = str((run_info or {}).get("workflow") or f"{job.kind.value}-workflow")
    with contextlib.ExitStack() as stack:
        log: TimestampedLog | None = None
        record: RunProgress | None = None
        if run_dir is not None:
            with contextlib.suppress(OSError):  # no log file: the console still has it all
                item_log = open(run_dir / f"{job.item_id}.log", "a", encoding="utf-8")  # noqa: SIM115
                raw = stack.enter_context(quietly_closed(item_log))
                log = TimestampedLog(raw)
            record = RunProgress(run_dir, {"workflow": workflow, "workspace": job.workspace}, 1)
            stack.callback(record.close)
        team: TeamRun | None = None
        if run_dir is not None and job.backend_url:  # every machine's `agentos runs` lists it
            command = str((run_info or {}).get("command", ""))
            team = TeamRun(job.backend_url, [job], run_dir, workflow, command)
        # The view filters the console only; the item log gets every line. Every part of agentos
        # is handed `out`; the swap below catches only what third-party code (LangGraph, an SDK)
        # prints in this process, as a worker process's fds 1 and 2 do for a batch.
        out, err = ConsoleRouter(terminal, log, show=single_view(verbosity)), ConsoleRouter(errors, log)
        pools.use_console(out)
        sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
        try:
            code, result = EXIT_FAILED, None
            code, result = _run_single(
                job, pools, banner, no_wait, item_timeout, verbosity, out, spend, record, team
            )
            if run_dir is not None:
                _write_summary(run_dir, workflow, job, result, started, code, run_info, spend, log, out)
            return code
        finally:
            if team is not None:
                status = result.status.value if result is not None else ItemStatus.NOT_STARTED.value
                final = ItemRecord.of(result, None, job.db_path) if result is not None else None
                team.close(code, {"total": 1, status: 1}, [final] if final is not None else [])
            sys.stdout, sys.stderr = terminal, errors
            out.flush()
            err.flush()


def _write_summary(
    run_dir: Path,
    workflow: str,
    job: ItemJob,
    result: WorkflowResult | None,
    started: float,
    code: int,
    run_info: Mapping[str, Any] | None,
    spend: SpendMeter | None,
    log: TimestampedLog | None,
    console: Console,
) -> None:
    """The batch's summary.json, for one item; a full disk is said, never raised."""
    if result is None:
        result = WorkflowResult(
            job.item_id, False, "not started before the shutdown", status=ItemStatus.NOT_STARTED
        )
    usage = spend.item_usage(job.item_id) if spend is not None else None
    log_path = run_dir / f"{job.item_id}.log" if log is not None else None
    item = ItemRecord.of(result, log_path, job.db_path, usage, os.getpid())
    info = {"workspace": job.workspace, **(run_info or {})}
    run_usage = spend.run_fields() if spend is not None else None
    run = summary.build(workflow, [item], started, code, run_dir, info, usage=run_usage)
    path = run_dir / "summary.json"
    try:
        summary.write_summary(path, run)
    except OSError as exc:
        console.line(f"[COORDINATOR] Could not write the summary {path} ({exc.strerror or exc})")
        return
    console.line(f"[COORDINATOR] Run folder: {run_dir}")


def _run_single(
    job: ItemJob,
    pools: PoolSet,
    banner: str,
    no_wait: bool,
    item_timeout: float | None,
    verbosity: Verbosity,
    console: Console,
    spend: SpendMeter | None = None,
    record: RunProgress | None = None,
    team: TeamRun | None = None,
) -> tuple[int, WorkflowResult | None]:
    """The exit code, and the item's result (None: it never got one)."""
    listeners = ListenerGroup(*(part for part in (record, team) if part is not None))
    coordinator = ParallelCoordinator(
        1, pools, no_wait=no_wait, listener=listeners, item_timeout=item_timeout, console=console
    )
    console.line(f"[COORDINATOR] {job.item_id}: {banner}")
    timed_out = threading.Event()
    limit = format_duration(item_timeout or 0)

    def work(item: ItemJob, lease: dict[str, Credential] | None) -> ItemOutcome:
        for cred in (lease or {}).values():
            register_secret(cred.secret, cred.name)
        if verbosity is Verbosity.VERBOSE:
            keys = ", ".join(f"{provider} {cred.name}" for provider, cred in (lease or {}).items())
            console.line(f"[COORDINATOR] {item.item_id}: keys {keys or '-'}; checkpoint DB {item.db_path}")
        stop = _ItemStop(coordinator.stop_event)  # Ctrl+C, or this item's own time limit

        def expire(reason: str) -> None:  # called from the coordinator's tick, which decides it
            timed_out.set()
            stop.set(f"timed out after {limit}")

        coordinator.on_expiry(item.item_id, expire)
        outcome = run_item(item, stop=stop, credentials=lease or {}, console=console)
        if spend is not None:
            spend.record(item, outcome)
        return outcome

    # One owner per item, across every run on the machine (and every machine, with a backend)
    locks = ItemLocks(work, console, team.ownership if team is not None else None)
    try:
        _, results = coordinator.execute_parallel([job], locks, lambda item: item.item_id)
    finally:
        locks.release_all()
    console.line(f"[COORDINATOR] Audit log: {job.audit_path}")
    if spend is not None:
        console.line(f"[COORDINATOR] {spend.total_line()}")
    result = results[0] if results else None
    if timed_out.is_set() and not (result is not None and result.success):
        console.line(f"FAILED: timed out after {limit} (--item-timeout); checkpoint kept at {job.db_path}")
        return EXIT_FAILED, result
    if coordinator.dead_keys:
        console.line(f"[COORDINATOR] {DEAD_KEYS_ADVICE}")
        return EXIT_USAGE, result
    if coordinator.pool_exhausted_stop:
        return EXIT_POOL_EXHAUSTED, result
    if result is not None and result.outcome is not None and result.outcome.backend_lost:
        console.line(
            f"[COORDINATOR] Lost the backend mid-run: {result.error}. Run the same command again, "
            "on any machine, once it is back (exit 75)."
        )
        return EXIT_TEMPFAIL, result
    if coordinator.stop_event.is_set() or result is None or result.status is ItemStatus.INTERRUPTED:
        console.line("[COORDINATOR] Interrupted. Run the same command again to resume.")
        return EXIT_INTERRUPTED, result
    if not result.success:
        if result.error and not result.value:
            console.line(f"FAILED: {result.error}")
        return EXIT_FAILED, result
    return EXIT_OK, result
