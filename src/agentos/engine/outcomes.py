"""An item's result, translated once: whatever `worker_func` returned or raised becomes an ItemOutcome.

The CLI's worker functions return an `ItemOutcome` (it crossed the process boundary as
one). A library caller's `worker_func` may return any value (success) or raise (failure);
`call_worker` folds both shapes into the same typed outcome, so the coordinator classifies
results in one place. `credential_error` is the reverse view that the credential pool
speaks: a 429, a quota or a rejected key, as the exception its `report` expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from agentos.core.errors import Interrupted
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.llm.errors import AuthError, LLMError, QuotaExhausted, RateLimited

ItemT = TypeVar("ItemT")
LeaseT = TypeVar("LeaseT")


def call_worker(
    worker_func: Callable[[ItemT, LeaseT | None], object], item: ItemT, lease: LeaseT | None
) -> tuple[ItemOutcome, object]:
    """`(outcome, value)`: value is what worker_func returned (None when it raised)."""
    try:
        value = worker_func(item, lease)
    except Exception as exc:  # any library worker's failure is this item's, never the run's
        return from_exception(exc), None
    if isinstance(value, ItemOutcome):
        return value, value
    return ItemOutcome(ItemStatus.APPROVED), value  # the contract: any returned value is success


def from_exception(exc: Exception) -> ItemOutcome:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, RateLimited):
        return _credential(exc, "rate_limited", message, retry_after=exc.retry_after)
    if isinstance(exc, QuotaExhausted):
        return _credential(exc, "quota", message, reset_at=exc.reset_at)
    if isinstance(exc, AuthError):
        return _credential(exc, "auth", message)
    if isinstance(exc, Interrupted):
        return ItemOutcome(ItemStatus.INTERRUPTED, error=message)
    return ItemOutcome(ItemStatus.FAILED, error=message)


def _credential(
    exc: LLMError,
    problem: str,
    message: str,
    *,
    retry_after: float | None = None,
    reset_at: float | None = None,
) -> ItemOutcome:
    return ItemOutcome(
        ItemStatus.CREDENTIAL,
        error=message,
        credential_problem=problem,
        provider=exc.provider,
        key_name=exc.key_name,
        retry_after=retry_after,
        reset_at=reset_at,
    )


def credential_error(outcome: ItemOutcome) -> LLMError:
    """The pool's view of a CREDENTIAL outcome: the error its `report` marks the key with."""
    message = outcome.error or "credential problem"
    error: LLMError
    if outcome.credential_problem == "rate_limited":
        error = RateLimited(outcome.retry_after, key_name=outcome.key_name, message=message)
    elif outcome.credential_problem == "quota":
        error = QuotaExhausted(outcome.reset_at, key_name=outcome.key_name, message=message)
    else:
        error = AuthError(message, key_name=outcome.key_name)
    error.provider = outcome.provider
    return error
