"""The parallel engine: coordinator, worker processes, credential pool, output, summary.

Library contract: `ParallelCoordinator`, `CredentialCoordinator`, `OutputPrefixer`,
`sanitize_identifier`; `WorkflowResult` and `ProgressStats` live in `.coordinator`.
"""

from agentos.core.paths import sanitize_identifier
from agentos.keys.pool import CredentialCoordinator
from agentos.workflows.parallel.coordinator import (
    DEFAULT_PARALLELISM,
    MAX_PARALLELISM,
    ParallelCoordinator,
    ProgressStats,
    WorkflowResult,
)
from agentos.workflows.parallel.output_prefixer import OutputPrefixer

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
