"""OpenAI and any OpenAI-compatible server (Ollama, vLLM) through the `openai` SDK.

SDK retries are off. A 429 whose error code is `insufficient_quota` is a billing quota,
not a passing rate limit, so it maps to `QuotaExhausted`.
"""

from __future__ import annotations

import time
from typing import Any

from agentos.llm.base import Completion, CompletionRequest, parse_retry_after
from agentos.llm.errors import AuthError, ProviderError, QuotaExhausted, RateLimited
from agentos.llm.rate_limits import CallObserver
from agentos.llm.structured import StructuredOutputUnsupported, looks_unsupported
from agentos.llm.usage import Usage

QUOTA_COOLDOWN_S = 3600.0


def _error_code(body: Any) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("code") or inner.get("type") or "")
    return ""


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        secret: str,
        key_name: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 300.0,
        observer: CallObserver | None = None,
    ) -> None:
        import openai

        self.model = model
        self.key_name = key_name
        self._sdk = openai
        # The observer sees each answer's rate-limit headers (a paced run reports them); the
        # clients of one observer (one per key) share its HTTP client and so its TLS setup.
        http_client = observer.http_client("openai", openai.DefaultHttpxClient) if observer else None
        self._client = openai.OpenAI(
            api_key=secret, base_url=base_url, max_retries=0, timeout=timeout_s, http_client=http_client
        )

    def complete(self, request: CompletionRequest) -> Completion:
        sdk = self._sdk
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        kwargs: dict[str, Any] = {}
        if request.schema is not None:  # llama.cpp and vLLM honour it by constrained decoding
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema.name, "schema": request.schema.schema, "strict": True},
            }
        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=request.max_tokens, **kwargs
            )
        except sdk.RateLimitError as exc:
            message = f"openai: HTTP 429: {exc.message}"
            if _error_code(exc.body) == "insufficient_quota":
                raise QuotaExhausted(
                    time.time() + QUOTA_COOLDOWN_S, key_name=self.key_name, message=message
                ) from None
            raise RateLimited(
                parse_retry_after(dict(exc.response.headers)),
                key_name=self.key_name,
                message=message,
            ) from None
        except (sdk.AuthenticationError, sdk.PermissionDeniedError) as exc:
            raise AuthError(f"openai: {exc.message}", key_name=self.key_name) from None
        except sdk.APIStatusError as exc:
            if request.schema is not None and looks_unsupported(exc.status_code, str(exc.message)):
                raise StructuredOutputUnsupported(
                    f"openai: HTTP {exc.status_code}: {exc.message}", key_name=self.key_name
                ) from None
            raise ProviderError(
                f"openai: HTTP {exc.status_code}: {exc.message}", key_name=self.key_name
            ) from None
        except sdk.APIError as exc:
            raise ProviderError(f"openai: {exc.message}", key_name=self.key_name) from None
        choices = response.choices or []
        text = (choices[0].message.content or "") if choices else ""
        if not text:
            raise ProviderError("openai: empty response", key_name=self.key_name)
        return Completion(text=text, provider=self.name, model=self.model, usage=_usage(response))


def _usage(response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    return Usage.reported(getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0))
