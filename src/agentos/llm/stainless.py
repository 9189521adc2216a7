"""What the OpenAI and Anthropic SDKs raise, in our error tree (both are built by
Stainless and share their exception classes' shapes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentos.llm.answer_guard import AnswerGuardError, find_guard_error
from agentos.llm.base import parse_retry_after
from agentos.llm.errors import AuthError, LLMError, RateLimited
from agentos.llm.http_failure import (
    MALFORMED,
    body_message,
    connection_failure,
    guard_failure,
    malformed_answer,
    status_failure,
)
from agentos.llm.structured import StructuredOutputUnsupported, looks_unsupported


def sdk_failure(
    sdk: Any,
    exc: BaseException,
    *,
    provider: str,
    model: str,
    host: str,
    key_name: str | None,
    schema_requested: bool,
    on_429: Callable[[Any, str], LLMError | None] | None = None,
) -> BaseException:
    """The LLMError for `exc`, or `exc` itself when it is not a failure of the call."""
    guard = exc if isinstance(exc, AnswerGuardError) else find_guard_error(exc)
    if guard is not None:
        return guard_failure(provider, host, guard, key_name)
    if isinstance(exc, sdk.RateLimitError):
        message = f"{provider}: HTTP 429 from {host}: {body_message(exc.body, exc.message)}"
        special = on_429(exc, message) if on_429 is not None else None
        if special is not None:
            return special
        return RateLimited(parse_retry_after(dict(exc.response.headers)), key_name=key_name, message=message)
    if isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
        detail = body_message(exc.body, exc.message)
        return AuthError(f"{provider}: HTTP {exc.status_code} from {host}: {detail}", key_name=key_name)
    if isinstance(exc, sdk.APIStatusError):
        detail = body_message(exc.body, exc.message)
        hint = parse_retry_after(dict(exc.response.headers))  # a 503 may say when to come back
        failure = status_failure(provider, model, exc.status_code, host, detail, key_name, hint)
        if schema_requested and looks_unsupported(exc.status_code, str(exc.message)):
            return StructuredOutputUnsupported(str(failure), key_name=key_name)
        return failure
    if isinstance(exc, sdk.APIConnectionError):  # a refused or reset connection, a timeout
        return connection_failure(provider, host, exc.__cause__ or exc, key_name)
    if isinstance(exc, (sdk.APIError, *MALFORMED)):  # an answer the SDK could not read
        return malformed_answer(provider, host, exc, key_name)
    return exc
