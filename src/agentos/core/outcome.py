"""What one item run reports (ItemOutcome) and its status: the one typed result every layer shares.

The runner (the workflows, in a worker process) builds it, the engine carries it across
the process boundary and classifies it, and runs/ records it. Plain picklable data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


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
