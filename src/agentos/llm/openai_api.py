"""OpenAI and any OpenAI-compatible server (Ollama, vLLM) through the `openai` SDK.

SDK retries are off: agentos retries transient failures itself, each try a call the key
budget knows about. A 429 whose error code is `insufficient_quota` is a billing quota,
not a passing rate limit, so it maps to `QuotaExhausted`.
"""

from __future__ import annotations

import time
from typing import Any

from agentos.llm.answer_guard import guarded_client
from agentos.llm.base import Completion, CompletionRequest
from agentos.llm.errors import ProviderError, QuotaExhausted
from agentos.llm.http_failure import host_of, malformed_answer
from agentos.llm.rate_limits import CallObserver
from agentos.llm.stainless import sdk_failure
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
        http_client = (
            observer.http_client("openai", openai.DefaultHttpxClient)
            if observer
            else guarded_client(openai.DefaultHttpxClient)
        )
        self._client = openai.OpenAI(
            api_key=secret, base_url=base_url, max_retries=0, timeout=timeout_s, http_client=http_client
        )
        self.host = host_of(self._client.base_url)

    def complete(self, request: CompletionRequest) -> Completion:
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
            choices = response.choices or []
            text = (choices[0].message.content or "") if choices else ""
            usage = _usage(response)
        except Exception as exc:
            raise self._failure(exc, request.schema is not None) from None
        if not isinstance(text, str):
            raise malformed_answer(self.name, self.host, TypeError("content is not text"), self.key_name)
        if not text:
            raise ProviderError(
                f"openai: empty answer from {self.host}", key_name=self.key_name, host=self.host
            )
        return Completion(text=text, provider=self.name, model=self.model, usage=usage)

    def _failure(self, exc: Exception, schema_requested: bool) -> BaseException:
        def quota(error: Any, message: str) -> QuotaExhausted | None:
            if _error_code(error.body) != "insufficient_quota":
                return None
            return QuotaExhausted(time.time() + QUOTA_COOLDOWN_S, key_name=self.key_name, message=message)

        return sdk_failure(
            self._sdk,
            exc,
            provider=self.name,
            model=self.model,
            host=self.host,
            key_name=self.key_name,
            schema_requested=schema_requested,
            on_429=quota,
        )


def _usage(response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    return Usage.reported(getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0))
