"""What one workflow run is given (ItemJob) and what it reports (ItemOutcome).

Both are plain picklable data: they cross the process boundary to and from a worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from agentos.core.workspace_files import DEFAULT_MAX_ITEM_BYTES
from agentos.tracker.base import TrackerConfig


class WorkflowKind(StrEnum):
    LLD = "lld"
    ISSUE = "issue"

    @property
    def db_prefix(self) -> str:
        return f"{self.value}_workflow"


class ItemStatus(StrEnum):
    APPROVED = "approved"
    NEEDS_REVISION = "needs_revision"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    # The run stopped on a credential problem (429, quota, rejected key) after its last
    # checkpoint; the coordinator resumes it with another key.
    CREDENTIAL = "credential"
    NOT_STARTED = "not_started"  # a shutdown came first; still pending for the next run
    # Another run holds the item's lock, or finished it meanwhile: not ours to do, not a failure.
    SKIPPED = "skipped"

    @property
    def succeeded(self) -> bool:
        return self in (ItemStatus.APPROVED, ItemStatus.NEEDS_REVISION)


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

    @property
    def item_id(self) -> str:
        return item_id_for(self.kind, self.key)


@dataclass
class ItemOutcome:
    status: ItemStatus
    rounds: int = 0
    error: str | None = None
    output: str | None = None
    filed_number: int | None = None
    resumed: bool = False
    # Set when status is CREDENTIAL: which key, and what happened to it.
    credential_problem: str | None = None  # "rate_limited" | "quota" | "auth"
    provider: str | None = None
    key_name: str | None = None
    retry_after: float | None = None
    reset_at: float | None = None
    # Tokens this process's LLM calls used, per `provider:model` (UsageTotals.to_dict()).
    usage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemOutcome:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["status"] = ItemStatus(fields["status"])
        return cls(**fields)
