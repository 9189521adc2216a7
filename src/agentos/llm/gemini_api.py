"""Google Gemini through the official `google-genai` SDK.

SDK retries are off so that a 429 surfaces at once as `RateLimited` (with the server's
`RetryInfo.retryDelay`) or `QuotaExhausted` (a per-day quota id), for the pool to act on.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from agentos.core.retry_hints import clamp_retry_after, parse_seconds
from agentos.llm.answer_guard import find_guard_error, guarded_transport, http_library
from agentos.llm.base import Completion, CompletionRequest
from agentos.llm.errors import AuthError, ProviderError, QuotaExhausted, RateLimited
from agentos.llm.http_failure import (
    MALFORMED,
    connection_failure,
    first_line,
    guard_failure,
    host_of,
    malformed_answer,
    status_failure,
)
from agentos.llm.structured import StructuredOutputUnsupported, looks_unsupported
from agentos.llm.usage import Usage, clamp_tokens

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


def sdk_http_client() -> type[Any]:
    """The HTTP client class google-genai builds on: httpx2 when installed, else httpx."""
    try:
        import httpx2

        return httpx2.Client
    except ImportError:
        import httpx

        return httpx.Client


def _details(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return []
    error = body.get("error", body)
    details = error.get("details", []) if isinstance(error, dict) else []
    return [d for d in details if isinstance(d, dict)]


def retry_delay(body: Any) -> float | None:
    """`RetryInfo.retryDelay` ("13s", "0.5s") in seconds, clamped; None if absent or absurd."""
    for detail in _details(body):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            raw = detail.get("retryDelay")
            if isinstance(raw, str) and raw.strip().endswith("s"):
                return clamp_retry_after(parse_seconds(raw.strip()[:-1]))
    return None


def is_daily_quota(body: Any) -> bool:
    for detail in _details(body):
        if str(detail.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            violations = detail.get("violations")
            for violation in violations if isinstance(violations, list) else []:
                if isinstance(violation, dict) and "perday" in str(violation.get("quotaId", "")).lower():
                    return True
    return False


def next_daily_reset(now: float | None = None) -> float:
    """Gemini daily quotas reset at midnight Pacific time."""
    try:
        from zoneinfo import ZoneInfo

        tz: Any = ZoneInfo("America/Los_Angeles")
    except Exception:
        from datetime import timezone

        tz = timezone(timedelta(hours=-8))
    current = datetime.fromtimestamp(now if now is not None else time.time(), tz)
    midnight = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        model: str,
        *,
        secret: str,
        key_name: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        from google import genai
        from google.genai import types

        self.model = model
        self.key_name = key_name
        self._types = types
        self.host = host_of(base_url or DEFAULT_BASE_URL)
        self._client = genai.Client(
            api_key=secret,
            http_options=types.HttpOptions(
                base_url=base_url,
                timeout=int(timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
                client_args={"transport": guarded_transport(http_library(sdk_http_client()))},
            ),
        )

    def complete(self, request: CompletionRequest) -> Completion:
        from google.genai import errors

        structured: dict[str, Any] = {}
        if request.schema is not None:
            # Gemini's schema is an OpenAPI subset: it constrains decoding to the properties
            # given, and has no need of (nor, in older API versions, a name for) additionalProperties.
            schema = {k: v for k, v in request.schema.schema.items() if k != "additionalProperties"}
            structured = {"response_mime_type": "application/json", "response_schema": schema}
        config = self._types.GenerateContentConfig(
            system_instruction=request.system or None, max_output_tokens=request.max_tokens, **structured
        )
        try:
            response = self._client.models.generate_content(
                model=self.model, contents=request.prompt, config=config
            )
            text = response.text
            usage = _usage(response)
        except errors.APIError as exc:
            mapped = self._map(exc)
            detail = f"{exc.status or ''} {exc.message or ''}"
            if (
                request.schema is not None
                and type(mapped) is ProviderError
                and looks_unsupported(int(exc.code or 0), detail)
            ):
                raise StructuredOutputUnsupported(str(mapped), key_name=self.key_name) from None
            raise mapped from None
        except Exception as exc:
            raise self._other(exc) from None
        if not isinstance(text, str) or not text:
            raise ProviderError(
                f"gemini: empty answer from {self.host}", key_name=self.key_name, host=self.host
            )
        return Completion(text=text, provider=self.name, model=self.model, usage=usage)

    def _other(self, exc: Exception) -> ProviderError:
        """A failure that is not an HTTP error status: a guard's cut, the network, a bad answer."""
        guard = find_guard_error(exc)
        if guard is not None:
            return guard_failure(self.name, self.host, guard, self.key_name)
        names = {cls.__name__ for cls in type(exc).__mro__}
        if isinstance(exc, OSError) or names & {"TransportError", "TimeoutException", "RequestError"}:
            return connection_failure(self.name, self.host, exc, self.key_name)
        if isinstance(exc, MALFORMED):
            return malformed_answer(self.name, self.host, exc, self.key_name)
        return ProviderError(
            f"gemini: {type(exc).__name__}: {first_line(str(exc))}", key_name=self.key_name, host=self.host
        )

    def _map(self, exc: Any) -> Exception:
        code, body = int(exc.code or 0), exc.details
        detail = first_line(f"{exc.status or ''} {exc.message or ''}".strip())
        message = f"gemini: HTTP {code} from {self.host}: {detail}"
        if code == 429:
            if is_daily_quota(body):
                return QuotaExhausted(next_daily_reset(), key_name=self.key_name, message=message)
            return RateLimited(retry_delay(body), key_name=self.key_name, message=message)
        if code in (401, 403) or "API_KEY_INVALID" in str(body)[:10_000]:
            return AuthError(message, key_name=self.key_name)
        return status_failure(self.name, self.model, code, self.host, detail, self.key_name)


def _usage(response: Any) -> Usage | None:
    """`usage_metadata`: output counts the model's thinking tokens too (billed as output)."""
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return None
    output = clamp_tokens(getattr(meta, "candidates_token_count", 0))
    output += clamp_tokens(getattr(meta, "thoughts_token_count", 0))
    return Usage.reported(getattr(meta, "prompt_token_count", 0), output)
