"""What the coordinator hands back: one `WorkflowResult` per item, `ProgressStats`, and the
`Listener` that hears each item start and end. Part of the seed's library contract
(re-exported by `agentos.workflows.parallel.coordinator`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agentos.core.outcome import ItemOutcome, ItemStatus

UNSUCCESSFUL = (ItemStatus.FAILED, ItemStatus.INTERRUPTED, ItemStatus.CREDENTIAL, ItemStatus.NOT_STARTED)


@dataclass
class WorkflowResult:
    item_id: str
    success: bool
    error: str | None = None
    duration: float = 0.0
    status: ItemStatus = ItemStatus.APPROVED
    value: Any = None  # what worker_func returned (the library contract: any value)
    started_at: float | None = None  # wall-clock times (time.time()); None: it never started
    ended_at: float | None = None
    attempts: int = 0  # runs of the item that started: more than one after a key's 429 or quota
    outcome: ItemOutcome | None = None  # the typed outcome; None when the item never ran


@dataclass
class ProgressStats:
    total: int = 0
    completed: int = 0  # every finished item, failures included
    failed: int = 0
    success_count: int = 0
    interrupted: int = 0
    running: list[str] = field(default_factory=list)


class Listener(Protocol):
    def item_started(self, item_id: str, stats: ProgressStats) -> None: ...

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None: ...
