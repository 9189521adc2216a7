"""One item in this process: the same coordinator, pool and outcomes as a batch."""

from __future__ import annotations

import sys
import threading
from typing import Any

from agentos.credentials import Credential
from agentos.durations import format_duration
from agentos.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_POOL_EXHAUSTED, EXIT_USAGE
from agentos.redaction import register_secret
from agentos.workflows.context import StopFlag
from agentos.workflows.item import ItemJob, ItemOutcome, ItemStatus
from agentos.workflows.item_execution import run_item
from agentos.workflows.item_lock import ItemLocks
from agentos.workflows.parallel.console import ConsoleRouter
from agentos.workflows.parallel.coordinator import ParallelCoordinator
from agentos.workflows.parallel.credential_gate import DEAD_KEYS_ADVICE
from agentos.workflows.parallel.provider_pools import PoolSet
from agentos.workflows.parallel.spend import SpendMeter
from agentos.workflows.parallel.verbosity import Verbosity, single_view


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
) -> int:
    """Run `job` here. Console output goes through the same redacting router as a batch's."""
    terminal, errors = sys.stdout, sys.stderr
    # The view filters the console only; a log on this router would get every line.
    out, err = ConsoleRouter(terminal, show=single_view(verbosity)), ConsoleRouter(errors)
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    try:
        return _run_single(job, pools, banner, no_wait, item_timeout, verbosity, spend)
    finally:
        sys.stdout, sys.stderr = terminal, errors
        out.flush()
        err.flush()


def _run_single(
    job: ItemJob,
    pools: PoolSet,
    banner: str,
    no_wait: bool,
    item_timeout: float | None,
    verbosity: Verbosity,
    spend: SpendMeter | None = None,
) -> int:
    coordinator = ParallelCoordinator(1, pools, no_wait=no_wait)
    print(f"[COORDINATOR] {job.item_id}: {banner}")
    timed_out = threading.Event()
    limit = format_duration(item_timeout or 0)

    def work(item: ItemJob, lease: dict[str, Credential] | None) -> ItemOutcome:
        for cred in (lease or {}).values():
            register_secret(cred.secret, cred.name)
        if verbosity is Verbosity.VERBOSE:
            keys = ", ".join(f"{provider} {cred.name}" for provider, cred in (lease or {}).items())
            print(f"[COORDINATOR] {item.item_id}: keys {keys or '-'}; checkpoint DB {item.db_path}")
        stop = _ItemStop(coordinator.stop_event)  # Ctrl+C, or this item's own time limit

        def expire() -> None:  # a timer thread, not a signal handler
            timed_out.set()
            stop.set(f"timed out after {limit}")

        timer = threading.Timer(item_timeout, expire) if item_timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            outcome = run_item(item, stop=stop, credentials=lease or {}, say=print)
        finally:
            if timer is not None:
                timer.cancel()
        if spend is not None:
            spend.record(item, outcome)
        return outcome

    locks = ItemLocks(work)  # one owner per item, across every run on the machine
    try:
        _, results = coordinator.execute_parallel([job], locks, lambda item: item.item_id)
    finally:
        locks.release_all()
    print(f"[COORDINATOR] Audit log: {job.audit_path}")
    if spend is not None:
        print(f"[COORDINATOR] {spend.total_line()}")
    result: Any = results[0] if results else None
    if timed_out.is_set() and not (result is not None and result.success):
        print(f"FAILED: timed out after {limit} (--item-timeout); checkpoint kept at {job.db_path}")
        return EXIT_FAILED
    if coordinator.dead_keys:
        print(f"[COORDINATOR] {DEAD_KEYS_ADVICE}")
        return EXIT_USAGE
    if coordinator.pool_exhausted_stop:
        return EXIT_POOL_EXHAUSTED
    if coordinator.stop_event.is_set() or result is None or result.status is ItemStatus.INTERRUPTED:
        print("[COORDINATOR] Interrupted. Run the same command again to resume.")
        return EXIT_INTERRUPTED
    if not result.success:
        if result.error and not result.value:
            print(f"FAILED: {result.error}")
        return EXIT_FAILED
    return EXIT_OK
