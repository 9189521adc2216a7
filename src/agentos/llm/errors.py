"""One error tree for every provider, so the credential pool can act on any of them."""

from __future__ import annotations

from agentos.core.errors import AgentosError
from agentos.core.redaction import redact
from agentos.core.retry_hints import clamp_reset_at, clamp_retry_after


class LLMError(AgentosError):
    """A provider call failed. `key_name` names the key (never the key itself).

    The message is redacted here, at the source: provider error texts may echo the key
    ("Incorrect API key provided: sk-..."), and this exception may be logged, sent to
    the coordinator or stored in a checkpoint.
    """

    def __init__(self, message: str, *, key_name: str | None = None) -> None:
        self.key_name = key_name
        self.provider: str | None = None  # set by the caller that knows which client raised
        super().__init__(redact(message))


class RateLimited(LLMError):
    """HTTP 429 that will pass: retry after `retry_after` seconds (None: no hint given)."""

    def __init__(
        self, retry_after: float | None = None, *, key_name: str | None = None, message: str = ""
    ) -> None:
        retry_after = clamp_retry_after(retry_after)  # a provider's number: untrusted
        self.retry_after = retry_after
        hint = f"retry after {retry_after:g}s" if retry_after is not None else "no retry hint"
        super().__init__(message or f"rate limited ({hint})", key_name=key_name)


class QuotaExhausted(LLMError):
    """A per-day (or billing) quota is used up: the key is out until `reset_at` (epoch s)."""

    def __init__(
        self, reset_at: float | None = None, *, key_name: str | None = None, message: str = ""
    ) -> None:
        self.reset_at = clamp_reset_at(reset_at)  # a provider's number: untrusted
        super().__init__(message or "quota exhausted", key_name=key_name)


class AuthError(LLMError):
    """The key was rejected (401/403): it is disabled for the rest of the run."""


class ProviderError(LLMError):
    """Any other failure: bad request, server error, malformed response, network.

    `transient` failures (a 5xx, a refused or reset connection, a timeout) may pass by
    themselves: the call is tried again with backoff. `host` names the server asked.
    """

    def __init__(
        self,
        message: str,
        *,
        key_name: str | None = None,
        transient: bool = False,
        status: int | None = None,
        host: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.transient = transient
        self.retry_after = clamp_retry_after(retry_after)  # a 503's hint: a provider's number
        self.status = status
        self.host = host
        super().__init__(message, key_name=key_name)
