"""A real coordinator process that runs hostile workers: signal tests against the real engine.

    python -m tests.helpers.hostile_batch OUT_DIR GRACE ITEM_TIMEOUT KEY...

Prints one JSON line of results at the end and exits 130 when it was interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agentos.core import stop_signals


def main() -> int:
    stop_signals.install()
    from agentos.engine.console import ConsoleRouter
    from agentos.engine.coordinator import ParallelCoordinator
    from agentos.engine.fork_server import make_context
    from agentos.engine.worker_launcher import WorkerLauncher
    from agentos.workflows.item import ItemJob, WorkflowKind
    from tests.helpers.hostile import hostile_main

    out_dir, grace, timeout, keys = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    jobs = [
        ItemJob(
            WorkflowKind.ISSUE,
            k,
            str(out_dir),
            str(out_dir / f"{k}.db"),
            str(out_dir / f"{k}.jsonl"),
            "mock",
            "mock",
        )
        for k in keys
    ]
    router = ConsoleRouter(sys.stdout)
    coordinator = ParallelCoordinator(len(keys), shutdown_grace=grace, item_timeout=timeout)
    runner = WorkerLauncher(
        make_context([]),
        router,  # type: ignore[arg-type]
        lambda job: out_dir / f"{job.item_id}.log",
        coordinator.stop_event,
        coordinator.force_event,
        {},
        target=hostile_main,
        children=coordinator.children,
    )
    router.line("[COORDINATOR] ready")
    _, results = coordinator.execute_parallel(jobs, runner, lambda job: job.item_id)
    router.line("RESULTS " + json.dumps({r.item_id: [r.status.value, r.error] for r in results}))
    router.flush()
    return 130 if coordinator.stop_event.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
