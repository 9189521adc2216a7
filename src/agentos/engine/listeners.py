"""Coordinator listeners an operator asks for: --fail-fast and -v's per-item lines.

`ParallelCoordinator` takes one listener; `ListenerGroup` fans its events out, so the
progress display, --fail-fast and others (a cost limit) each stay a small class.
Listeners run on the item's supervisor thread: they print through `say` (one write per
line) and stop admissions through the thread-safe `stop_admitting`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agentos.core.outcome import ItemStatus
from agentos.core.printing import STDOUT, Console

if TYPE_CHECKING:
    from agentos.engine.result import Listener, ProgressStats, WorkflowResult


class ListenerGroup:
    def __init__(self, *listeners: Listener) -> None:
        self.listeners = list(listeners)

    def item_started(self, item_id: str, stats: ProgressStats) -> None:
        for listener in self.listeners:
            listener.item_started(item_id, stats)

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
        for listener in self.listeners:
            listener.item_finished(result, stats)


class FailFast:
    """After the first failed item, start no new item; running ones finish (exit 1)."""

    def __init__(self, stop_admitting: Callable[[str], None]) -> None:
        self.stop_admitting = stop_admitting

    def item_started(self, item_id: str, stats: ProgressStats) -> None:
        pass

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
        if result.status is ItemStatus.FAILED:
            self.stop_admitting(f"--fail-fast: {result.item_id} failed")


class VerboseListener:
    """-v: a coordinator line when each item starts and ends, with its log file."""

    def __init__(self, log_for: Callable[[str], Path | None], console: Console = STDOUT) -> None:
        self.log_for = log_for
        self.console = console

    def item_started(self, item_id: str, stats: ProgressStats) -> None:
        log = self.log_for(item_id)
        where = f"; log {log}" if log else ""
        self.console.line(f"[COORDINATOR] Started {item_id} ({len(stats.running)} running){where}")

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
        rounds = f", {result.outcome.rounds} review round(s)" if result.outcome is not None else ""
        error = f": {result.error}" if result.error else ""
        self.console.line(
            f"[COORDINATOR] Finished {result.item_id}: {result.status.value}{rounds}, "
            f"{result.duration:.1f}s{error}"
        )
