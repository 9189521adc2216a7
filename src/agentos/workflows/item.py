"""What one workflow run is given (ItemJob) and what it reports (ItemOutcome).

Both are plain picklable data: they cross the process boundary to and from a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agentos.core.workspace_files import DEFAULT_MAX_ITEM_BYTES
from agentos.tracker.base import TrackerConfig


class WorkflowKind(StrEnum):
    LLD = "lld"
    ISSUE = "issue"

    @property
    def db_prefix(self) -> str:
        return f"{self.value}_workflow"


def item_id_for(kind: WorkflowKind, key: str) -> str:
    return f"LLD-{int(key)}" if kind is WorkflowKind.LLD else f"ISSUE-{key}"


@dataclass(frozen=True)
class ItemJob:
    kind: WorkflowKind
    key: str  # issue number (lld) or brief slug (issue)
    workspace: str
    db_path: str
    audit_path: str
    drafter: str
    reviewer: str
    max_iterations: int = 3
    fresh: bool = False
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    labels: tuple[str, ...] = ()
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES  # workspace files above this are refused
    force: bool = False  # redo an item that is already approved
    listed_at: float = 0.0  # when the run found the item pending (time.time()); 0: unknown
    structured_output: bool = True  # ask reviewers for the verdict schema (--no-structured-output)
    provider_timeout_s: float | None = None  # per HTTP call to a provider; None: the default
    max_output_tokens: int | None = None  # per LLM call; None: the default (4096)
    # The team backend (issue 23): its URL, this workspace's identity there, and this run's id.
    backend_url: str | None = None
    workspace_identity: str = ""
    backend_run: str = ""

    @property
    def item_id(self) -> str:
        return item_id_for(self.kind, self.key)
