"""Whatever a coordinator `worker_func` returned or raised, as one typed ItemOutcome.

The CLI's worker functions return an `ItemOutcome` (it crossed the process boundary as
one). A library caller's `worker_func` may return any value (success) or raise (failure);
`call_worker` folds both shapes into the same typed outcome, so the coordinator classifies
results in one place. The exception's translation is `keys.problems`' (the one place).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.keys.problems import outcome_from_error

ItemT = TypeVar("ItemT")
LeaseT = TypeVar("LeaseT")


def call_worker(
    worker_func: Callable[[ItemT, LeaseT | None], object], item: ItemT, lease: LeaseT | None
) -> tuple[ItemOutcome, object]:
    """`(outcome, value)`: value is what worker_func returned (None when it raised)."""
    try:
        value = worker_func(item, lease)
    except Exception as exc:  # any library worker's failure is this item's, never the run's
        return outcome_from_error(exc), None
    if isinstance(value, ItemOutcome):
        return value, value
    return ItemOutcome(ItemStatus.APPROVED), value  # the contract: any returned value is success
