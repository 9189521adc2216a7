"""A key's problem, translated once each way: an exception to an outcome, an outcome to the error
the pool marks the key with.

A worker reports "429 on key k" as an `ItemOutcome` (it crossed the process boundary); the
credential pool speaks exceptions (`report(credential, RateLimited(...))`). Both directions
live here, so the workflows (which catch the exception) and the engine (which reports it to
the pool) cannot drift apart.
"""

from __future__ import annotations

from agentos.core.errors import Interrupted
from agentos.core.outcome import CredentialProblem, ItemOutcome, ItemStatus
from agentos.llm.errors import AuthError, LLMError, QuotaExhausted, RateLimited


def outcome_from_error(exc: BaseException, provider: str | None = None) -> ItemOutcome:
    """The outcome an exception ends an item with: CREDENTIAL for a key's problem, INTERRUPTED
    for a stop, FAILED for anything else. `provider`: when the error does not name one."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, RateLimited | QuotaExhausted | AuthError):
        return ItemOutcome(
            ItemStatus.CREDENTIAL,
            error=message,
            credential_problem=_problem(exc),
            provider=exc.provider or provider,
            key_name=exc.key_name,
            retry_after=exc.retry_after if isinstance(exc, RateLimited) else None,
            reset_at=exc.reset_at if isinstance(exc, QuotaExhausted) else None,
        )
    if isinstance(exc, Interrupted):
        return ItemOutcome(ItemStatus.INTERRUPTED, error=message)
    return ItemOutcome(ItemStatus.FAILED, error=message)


def _problem(exc: LLMError) -> CredentialProblem:
    if isinstance(exc, RateLimited):
        return CredentialProblem.RATE_LIMITED
    if isinstance(exc, QuotaExhausted):
        return CredentialProblem.QUOTA
    return CredentialProblem.AUTH


def error_from_outcome(outcome: ItemOutcome) -> LLMError:
    """The pool's view of a CREDENTIAL outcome: the error its `report` marks the key with."""
    message = outcome.error or "credential problem"
    error: LLMError
    if outcome.credential_problem is CredentialProblem.RATE_LIMITED:
        error = RateLimited(outcome.retry_after, key_name=outcome.key_name, message=message)
    elif outcome.credential_problem is CredentialProblem.QUOTA:
        error = QuotaExhausted(outcome.reset_at, key_name=outcome.key_name, message=message)
    else:
        error = AuthError(message, key_name=outcome.key_name)
    error.provider = outcome.provider
    return error
