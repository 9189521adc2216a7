"""One item in this process: the same coordinator, pool and outcomes as a batch."""

from __future__ import annotations

from typing import Any

from agentos.credentials import Credential
from agentos.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_POOL_EXHAUSTED
from agentos.secrets import register_secret
from agentos.workflows.context import StopFlag
from agentos.workflows.item import ItemJob, ItemOutcome, ItemStatus
from agentos.workflows.parallel.coordinator import ParallelCoordinator
from agentos.workflows.parallel.credential_pools import PoolSet
from agentos.workflows.parallel.process_runner import raise_for_outcome
from agentos.workflows.runner import run_item


def run_single(job: ItemJob, pools: PoolSet, banner: str, no_wait: bool = False) -> int:
    coordinator = ParallelCoordinator(1, pools, no_wait=no_wait)
    print(f"[COORDINATOR] {job.item_id}: {banner}")

    def work(item: ItemJob, lease: dict[str, Credential] | None) -> ItemOutcome:
        for cred in (lease or {}).values():
            register_secret(cred.secret, cred.name)
        outcome = run_item(item, stop=StopFlag(coordinator.stop_event), credentials=lease or {})
        return raise_for_outcome(outcome)

    _, results = coordinator.execute_parallel([job], work, lambda item: item.item_id)
    print(f"[COORDINATOR] Audit log: {job.audit_path}")
    result: Any = results[0] if results else None
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
