"""What one item run reports (ItemOutcome) and its status: the one typed result every layer shares.

The runner (the workflows, in a worker process) builds it, the engine carries it across
the process boundary and classifies it, and runs/ records it. Plain picklable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


class CredentialProblem(StrEnum):
    """What happened to a key, when an item stopped on one (status CREDENTIAL)."""

    RATE_LIMITED = "rate_limited"  # a 429: the key cools down, the item resumes with another
    QUOTA = "quota"  # out of quota until `reset_at`
    AUTH = "auth"  # rejected (401/403): never used again this run


@dataclass
class ItemOutcome:
    """Crosses the process boundary as itself (pickled on the worker's own result pipe)."""

    status: ItemStatus
    rounds: int = 0
    error: str | None = None
    output: str | None = None
    filed_number: int | None = None
    resumed: bool = False
    # Set when status is CREDENTIAL: which key, and what happened to it.
    credential_problem: CredentialProblem | None = None
    provider: str | None = None
    key_name: str | None = None
    retry_after: float | None = None
    reset_at: float | None = None
    # Tokens this process's LLM calls used, per `provider:model` (UsageTotals.to_dict()).
    usage: dict[str, Any] = field(default_factory=dict)
    # How the item ended, as fields (never read back out of `error`'s text):
    started: bool = True  # False: it never ran (a stop came while its process was starting)
    killed_by: int | None = None  # the signal that ended its worker, when one did
    backend_lost: bool = False  # INTERRUPTED because the team backend's session went away

    @property
    def valid(self) -> bool:
        """The typed fields hold their types: what came down a worker's pipe is an outcome."""
        return (
            isinstance(self.status, ItemStatus)
            and (self.credential_problem is None or isinstance(self.credential_problem, CredentialProblem))
            and isinstance(self.rounds, int)
            and isinstance(self.usage, dict)
        )
