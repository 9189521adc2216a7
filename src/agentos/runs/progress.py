"""A run that is still going: `progress.json`, rewritten as each item ends, and `run.lock`.

`summary.json` is written once, at the end, so without this a run in progress (or one
whose coordinator was killed) looked the same in `agentos runs`: "no summary.json". The
coordinator holds an flock on `run.lock` for the run's life; the lock dies with the
process, so a reader knows a run is going by the lock, never by a pid that may have been
reused. Writing progress is best effort: a full disk never costs the run an item.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentos.core import safe_json
from agentos.core.atomic_file import write_text_atomic
from agentos.core.errors import AgentosError
from agentos.core.file_lock import FileLock, probe

if TYPE_CHECKING:
    from agentos.engine.result import ProgressStats, WorkflowResult

PROGRESS_NAME = "progress.json"
LOCK_NAME = "run.lock"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


class RunProgress:
    """A coordinator listener: holds `run.lock` and keeps `progress.json` current."""

    def __init__(self, run_dir: Path, info: dict[str, Any], total: int) -> None:
        self.run_dir = run_dir
        self.info = info  # workflow, workspace: what `agentos runs` shows for it
        self.total = total
        self.started = time.time()
        self.done: Counter[str] = Counter()
        self.running: list[str] = []
        self._guard = threading.Lock()
        self._lock = FileLock(run_dir / LOCK_NAME)
        with contextlib.suppress(AgentosError, OSError):
            self._lock.try_acquire()
        self._write()

    def _write(self) -> None:
        data = {
            **self.info,
            "pid": os.getpid(),
            "started": _iso(self.started),
            "updated": _iso(time.time()),
            "total": self.total,
            "done": dict(self.done),
            "running": list(self.running),
        }
        with contextlib.suppress(OSError):  # a full disk: the run goes on, summary.json says the rest
            write_text_atomic(self.run_dir / PROGRESS_NAME, safe_json.dumps(data, indent=2) + "\n")

    def item_started(self, item_id: str, stats: ProgressStats) -> None:
        with self._guard:
            self.running.append(item_id)

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
        with self._guard:
            if result.item_id in self.running:
                self.running.remove(result.item_id)
            self.done[result.status.value] += 1
            self._write()

    def close(self) -> None:
        """The run has ended (its summary is written, or could not be): let go of the lock."""
        self._lock.release()


def running_pid(run_dir: Path) -> int | None:
    """The pid of the coordinator still working in `run_dir` (0 if unknown), or None.

    Read-only: probes the flock of `run.lock` without following a symlink or blocking."""
    return probe(run_dir / LOCK_NAME)
