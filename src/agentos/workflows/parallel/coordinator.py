"""The seed's library contract: `agentos.workflows.parallel.coordinator`. A face that only re-exports.

The engine lives in `agentos.engine`; this path stays so that code written against the
seed's contract keeps working while the house changes (the trio pattern).
"""

from agentos.engine.coordinator import DEFAULT_PARALLELISM, MAX_PARALLELISM, ParallelCoordinator
from agentos.engine.result import Listener, ProgressStats, WorkflowResult

__all__ = [
    "DEFAULT_PARALLELISM",
    "MAX_PARALLELISM",
    "Listener",
    "ParallelCoordinator",
    "ProgressStats",
    "WorkflowResult",
]
