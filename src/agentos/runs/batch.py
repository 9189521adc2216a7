"""A batch run: pending items -> run folder -> worker processes -> summary and exit code."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentos.core import environment
from agentos.core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LIMIT_REACHED,
    EXIT_OK,
    EXIT_POOL_EXHAUSTED,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
)
from agentos.core.outcome import ItemStatus
from agentos.core.paths import agentos_home, new_run_dir
from agentos.core.std_streams import Terminal
from agentos.core.wording import counted
from agentos.engine.console import ConsoleRouter, ProgressDisplay
from agentos.engine.coordinator import ParallelCoordinator
from agentos.engine.credential_gate import DEAD_KEYS_ADVICE
from agentos.engine.fork_server import WorkerContext, make_context, stop_helpers, warm_up
from agentos.engine.listeners import FailFast, ListenerGroup, VerboseListener
from agentos.engine.panel import panel_wanted
from agentos.engine.result import WorkflowResult
from agentos.engine.timestamped_log import TimestampedLog, quietly_closed
from agentos.engine.verbosity import Verbosity, console_filter
from agentos.engine.worker import runner_module
from agentos.engine.worker_launcher import WorkerLauncher
from agentos.keys.pacing import Pacing
from agentos.keys.pools import PoolSet
from agentos.runs import summary
from agentos.runs.item_record import ItemRecord
from agentos.runs.progress import RunProgress
from agentos.runs.spend import SpendMeter
from agentos.runs.team import TeamRun
from agentos.workflows.item import ItemJob
from agentos.workflows.item_lock import ItemLocks

PASS_THROUGH_ENV = tuple(
    v.name
    for v in (
        environment.MOCK_LATENCY,
        environment.SIMULATE_429,
        environment.SIMULATE_429_RETRY,
        environment.RETRY_BASE_S,
    )
)


# The item runner each worker process calls, named: the coordinator never imports LangGraph.
ITEM_RUNNER = "agentos.workflows.item_execution:run_in_worker"


def worker_context(preload: Sequence[str]) -> WorkerContext:
    """The fork server, with the item runner's stack and `preload` (SDKs, the entry point)
    imported once. Started early by the CLI, so it overlaps finding the pending items."""
    return make_context([runner_module(ITEM_RUNNER), *preload])


def log_name(job: ItemJob) -> str:
    return f"{job.item_id}.log"


def audit_name(key: str) -> str:
    return f"workflow-audit-{key}.jsonl"


def exit_code_for(
    coordinator: ParallelCoordinator[Any],
    items: Sequence[ItemRecord],
    limit_reached: bool = False,
    backend_lost: bool = False,
) -> int:
    if coordinator.dead_keys:
        return EXIT_USAGE  # a set-up problem: waiting cannot fix it
    if backend_lost:
        return EXIT_TEMPFAIL  # the team backend went away: run again once it is back
    if coordinator.pool_exhausted_stop:
        return EXIT_POOL_EXHAUSTED
    if coordinator.stop_event.is_set():
        return EXIT_INTERRUPTED
    if any(i.status == ItemStatus.FAILED for i in items):
        return EXIT_FAILED  # --fail-fast and --max-cost leave items not started: the failure decides
    if limit_reached and any(i.status == ItemStatus.NOT_STARTED for i in items):
        return EXIT_LIMIT_REACHED  # --max-cost: items left for a run with more budget
    unfinished = (ItemStatus.INTERRUPTED.value, ItemStatus.NOT_STARTED.value)
    if any(i.status in unfinished for i in items):
        return EXIT_INTERRUPTED  # a worker stopped by its own signal: not done, resumable
    return EXIT_OK


def run_batch(
    *,
    workflow: str,
    noun: str,
    keys: Sequence[str],
    make_job: Callable[[str, Path], ItemJob],
    pools: PoolSet,
    parallel: int | None,
    no_wait: bool,
    preload: Sequence[str],
    provider_banner: str,
    item_timeout: float | None = None,
    verbosity: Verbosity = Verbosity.NORMAL,
    fail_fast: bool = False,
    run_info: Mapping[str, Any] | None = None,
    spend: SpendMeter | None = None,
    rpm: int | None = None,
    no_panel: bool = False,
) -> int:
    """Run every key's item in its own process, at most `parallel` at once.

    On a terminal the live panel shows each running item, the key pool and the bar
    (`engine.panel`); `no_panel`, a pipe or CI keep the plain console."""
    started = time.time()
    # The run's one console, passed to every part that speaks (nothing swaps sys.stdout).
    # A closed or broken stdout never fails an item: the run goes on, recorded in run_dir.
    terminal = Terminal(sys.stdout)
    live = terminal.isatty() and os.environ.get("TERM") != "dumb"
    panel = panel_wanted(terminal.isatty(), no_panel)
    router = ConsoleRouter(terminal, None, console_filter(verbosity))
    pacing = Pacing(pools, rpm, router)  # before the run folder: a bad AGENTOS_RATE_STRATEGY is exit 2
    pools.use_console(router)
    try:
        run_dir = new_run_dir()
        with quietly_closed(open(run_dir / "coordinator.log", "a", encoding="utf-8")) as raw_log:
            coordinator_log = router.log = TimestampedLog(raw_log)
            jobs = [make_job(key, run_dir / audit_name(key)) for key in keys]
            progress = ProgressDisplay(
                len(jobs), router, panel, quiet=verbosity is Verbosity.QUIET, pool=pacing.status
            )
            where = {"workflow": workflow, "workspace": jobs[0].workspace if jobs else None}
            record = RunProgress(run_dir, where, len(jobs))  # `agentos runs` sees it going
            listeners = ListenerGroup(progress, record)
            url = jobs[0].backend_url if jobs else None
            team = (
                TeamRun(url, jobs, run_dir, workflow, str((run_info or {}).get("command", "")))
                if url
                else None
            )
            if team is not None:
                listeners.listeners.append(team)
            code = EXIT_FAILED
            items: list[ItemRecord] = []
            try:
                coordinator = ParallelCoordinator(
                    parallel,
                    pools,
                    listener=listeners,
                    no_wait=no_wait,
                    item_timeout=item_timeout,
                    console=router,
                    on_tick=progress.tick,
                )
                if team is not None:
                    team.stop_admitting = coordinator.stop_admitting
                if fail_fast:
                    listeners.listeners.append(FailFast(coordinator.stop_admitting))
                if spend is not None:  # --max-cost stops admissions the way --fail-fast does
                    spend.stop_admitting = coordinator.stop_admitting
                if verbosity is Verbosity.VERBOSE:
                    logs = {job.item_id: run_dir / log_name(job) for job in jobs}
                    listeners.listeners.append(VerboseListener(logs.get, router))
                router.line(
                    f"[COORDINATOR] {counted(len(jobs), 'pending ' + noun)}, "
                    f"parallelism {coordinator.max_workers}, "
                    f"logs in {run_dir}/"
                )
                router.line(f"[COORDINATOR] {provider_banner}")
                router.line(f"[COORDINATOR] Credential pool: {pools.describe()}")
                router.line(f"[COORDINATOR] {pacing.banner()}")
                if pools.capacity() < min(coordinator.max_workers, len(jobs)):
                    router.line(
                        f"[COORDINATOR] Warning: the credential pool serves {pools.capacity()} workflow(s) at "
                        f"once, fewer than parallelism {coordinator.max_workers}; add keys or raise "
                        "--per-key-concurrency"
                    )
                resuming = [j.item_id for j in jobs if Path(j.db_path).exists() and not j.fresh]
                if resuming:
                    router.line(f"[COORDINATOR] Resuming from checkpoints first: {', '.join(resuming)}")
                env = {
                    environment.HOME.name: str(agentos_home()),
                    environment.COORDINATOR_PID.name: str(os.getpid()),
                    environment.RUN_DIR.name: str(run_dir),
                    environment.MOCK_STATE_DIR.name: str(run_dir / ".mock-state"),
                    **{k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ},
                    **pacing.start(),
                }
                ctx = worker_context(preload)
                ready_in = warm_up(ctx, coordinator.stop_event)
                router.line(
                    f"[COORDINATOR] Worker processes ready in {ready_in:.1f}s (fork server, stack preloaded)"
                )
                runner = WorkerLauncher(
                    ctx,
                    router,
                    lambda job: run_dir / log_name(job),
                    coordinator.stop_event,
                    coordinator.force_event,
                    env,
                    ITEM_RUNNER,
                    children=coordinator.children,
                    on_outcome=spend.record if spend is not None else None,
                    on_progress=progress.note,
                )
                # One owner per item, across every run on the machine (and every machine, with a backend)
                locks = ItemLocks(runner, router, team.ownership if team is not None else None)
                progress.start()
                try:
                    _, results = coordinator.execute_parallel(jobs, locks, lambda job: job.item_id)
                finally:
                    locks.release_all()
                    progress.stop()
                items = _records(jobs, results, run_dir, spend, runner.last_pids)
                lost = any(r.outcome is not None and r.outcome.backend_lost for r in results)
                code = exit_code_for(coordinator, items, spend is not None and spend.limit_reached, lost)
                info = {"workspace": jobs[0].workspace if jobs else None, **(run_info or {})}
                run = summary.build(
                    workflow,
                    items,
                    started,
                    code,
                    run_dir,
                    info,
                    usage=spend.run_fields() if spend is not None else None,
                    stopped_early=coordinator.admission_stop_reason,
                    interrupted_by=coordinator.interrupted_by(),
                    rate_limits=pacing.summary(),
                )
                summary_path = run_dir / "summary.json"
                try:
                    summary.write_summary(summary_path, run)
                    summary_note = f"[COORDINATOR] Summary written to {summary_path}"
                except OSError as exc:  # a full or read-only home: the console still gets it all
                    summary_note = (
                        f"[COORDINATOR] Could not write the summary {summary_path} "
                        f"({exc.strerror or exc}); the table above is this run's record. Free space "
                        f"in {agentos_home()}, then run the same command again to resume."
                    )
                router.line(f"[COORDINATOR] {summary.summary_line(items)}")
                router.line(f"[COORDINATOR] {summary.took_line(run)}")
                if spend is not None:
                    router.line(f"[COORDINATOR] {spend.total_line()}")
                per_key = pacing.summary_line()
                if per_key is not None:
                    router.line(f"[COORDINATOR] {per_key}")
                router.flush()
                show_cost = spend is not None and spend.show_cost
                summary.render_table(items, terminal, live, show_cost)
                with contextlib.suppress(OSError):  # a full home: the console has it all already
                    coordinator_log.flush()
                    summary.render_table(items, coordinator_log, False, show_cost)
                team_line = team.closing_line() if team is not None else None
                if coordinator.dead_keys:
                    router.line(f"[COORDINATOR] {DEAD_KEYS_ADVICE}")
                elif team_line is not None:
                    router.line(f"[COORDINATOR] {team_line}")
                elif code == EXIT_INTERRUPTED:
                    router.line("[COORDINATOR] Interrupted. Run the same command again to resume.")
                elif code == EXIT_LIMIT_REACHED and not coordinator.pool_exhausted_stop:
                    router.line(
                        f"[COORDINATOR] Stopped: {coordinator.admission_stop_reason}. Items not started stay "
                        "pending: run the same command again (with a higher --max-cost) to start them."
                    )
                elif code == EXIT_POOL_EXHAUSTED:
                    router.line("[COORDINATOR] Stopped: credential pool exhausted (--no-wait). Resumable.")
                elif coordinator.admission_stop_reason is not None:
                    router.line(
                        f"[COORDINATOR] Stopped early ({coordinator.admission_stop_reason}). "
                        "Items not started stay pending: run the same command again to start them."
                    )
                router.line(summary_note)
                if terminal.broken:
                    with contextlib.suppress(OSError):
                        coordinator_log.write(
                            f"[COORDINATOR] The console stopped taking output ({terminal.broken})\n"
                        )
                return code
            finally:
                if team is not None:
                    team.close(code, summary.totals(items), items)
                record.close()
                router.flush()
                router.log = None  # the file closes now; a late line still reaches the console

    finally:
        pacing.close()  # its permit server has a socket from the start
        stop_helpers()  # the fork server and resource tracker end with us, even when stopped


def _records(
    jobs: list[ItemJob],
    results: list[WorkflowResult],
    run_dir: Path,
    spend: SpendMeter | None = None,
    pids: Mapping[str, int] | None = None,
) -> list[ItemRecord]:
    by_id = {r.item_id: r for r in results}
    items = []
    for job in jobs:
        result = by_id.get(job.item_id) or WorkflowResult(
            job.item_id, False, "not started before the shutdown", status=ItemStatus.NOT_STARTED
        )
        log = run_dir / log_name(job)
        usage = spend.item_usage(job.item_id) if spend is not None else None
        pid = (pids or {}).get(job.item_id)
        items.append(ItemRecord.of(result, log if log.exists() else None, job.db_path, usage, pid))
    return items
