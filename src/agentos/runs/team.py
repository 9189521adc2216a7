"""A batch run's side of the team backend (issue 23): item ownership, run records, a lost backend.

Opened by the coordinator when its jobs name a backend: an `ItemOwnership` (the coordinator's
advisory lock per item) and `RunRecords` (this run's row and one event per item outcome).
When an item reports that its backend session went away, the coordinator checks its own
session: if that is gone too, the backend is down, so no new item starts, and the run ends
with exit 75 (EX_TEMPFAIL) and one line saying so. Nothing is lost locally: each stopped item
keeps its checkpoint in the backend, and the next run, on any machine, resumes it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agentos.backend.postgres.connection import described
from agentos.backend.postgres.item_ownership import ItemOwnership
from agentos.backend.postgres.run_records import RunRecords, team_run_id
from agentos.core.outcome import ItemStatus
from agentos.runs.item_record import ItemRecord
from agentos.workflows.item import ItemJob

if TYPE_CHECKING:
    from agentos.engine.result import ProgressStats, WorkflowResult


class TeamRun:
    """Opened before the first item (BackendUnavailable: exit 2); closed at the run's end."""

    def __init__(self, url: str, jobs: Sequence[ItemJob], run_dir: Path, workflow: str, command: str) -> None:
        self.url = url
        self.where = described(url)
        self.run = team_run_id(run_dir)
        self.ownership = ItemOwnership(url)
        self.records = RunRecords(url)
        self.stop_admitting: Callable[[str], None] = lambda reason: None
        self.lost_backend = False  # an item lost its session, and so did the coordinator
        self.items_lost = 0
        self._evented: set[str] = set()  # items whose event is written
        self._closed = False
        self._guard = threading.Lock()
        self.ownership.open()
        try:
            workspace = jobs[0].workspace_identity if jobs else ""
            self.records.start(self.run, workspace, workflow, command, len(jobs))
        except BaseException:
            self.ownership.close()
            raise

    # -- a coordinator listener ----------------------------------------------------
    def item_started(self, item_id: str, stats: ProgressStats) -> None:
        """Its start, for the dashboard's lanes of another machine's run."""
        self.records.item_event(self.run, item_id, "running", 0, None, None)

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
        outcome = result.outcome
        if outcome is not None and outcome.backend_lost:
            self.items_lost += 1
            if not self.lost_backend and not self.ownership.alive():
                self.lost_backend = True
                self.stop_admitting(f"lost the backend at {self.where}")
        if result.status is ItemStatus.SKIPPED and outcome is None:
            return
        self._event(
            result.item_id,
            result.status.value,
            outcome.rounds if outcome is not None else 0,
            outcome.output if outcome is not None else None,
            result.error if not result.success else outcome.error if outcome is not None else None,
        )

    def _event(self, item: str, status: str, rounds: int, output: str | None, error: str | None) -> None:
        """One event per item: from its listener call, or at the close if that came first (a
        listener may still run on the item's thread when the coordinator returns)."""
        with self._guard:
            if self._closed or item in self._evented:
                return
            self._evented.add(item)
            self.records.item_event(self.run, item, status, rounds, output, error)

    def closing_line(self) -> str | None:
        if not self.items_lost:
            return None
        what = "the backend went away" if self.lost_backend else "their backend session ended"
        return (
            f"Lost the backend at {self.where} mid-run: {self.items_lost} item(s) stopped before their next "
            f"node ({what}); their checkpoints are kept in the backend. Run the same command again, "
            "on any machine, once it is back (exit 75)."
        )

    def close(self, exit_code: int, totals: dict[str, int], items: Sequence[ItemRecord] = ()) -> None:
        for record in items:
            if record.status != ItemStatus.NOT_STARTED.value:
                self._event(record.item, record.status, record.rounds, record.output, record.error)
        with self._guard:
            self._closed = True
        with contextlib.suppress(Exception):
            self.records.finish(self.run, exit_code, totals)
        self.records.close()
        self.ownership.close()
