"""The seed's library contract, as a face that only re-exports: the engine is `agentos.engine`,
the keys `agentos.keys`.

Contract: `ParallelCoordinator`, `CredentialCoordinator`, `OutputPrefixer`,
`sanitize_identifier`; `WorkflowResult` and `ProgressStats` live in `.coordinator`.
"""

from agentos.core.paths import sanitize_identifier
from agentos.engine.output_prefixer import OutputPrefixer
from agentos.keys.pool import CredentialCoordinator
from agentos.workflows.parallel.coordinator import (
    DEFAULT_PARALLELISM,
    MAX_PARALLELISM,
    ParallelCoordinator,
    ProgressStats,
    WorkflowResult,
)

__all__ = [
    "DEFAULT_PARALLELISM",
    "MAX_PARALLELISM",
    "CredentialCoordinator",
    "OutputPrefixer",
    "ParallelCoordinator",
    "ProgressStats",
    "WorkflowResult",
    "sanitize_identifier",
]
