"""Anthropic Claude through the official `anthropic` SDK, with SDK retries off (agentos
retries transient failures itself, each try a call the key budget knows about)."""

from __future__ import annotations

from typing import Any

from agentos.llm.answer_guard import guarded_client
from agentos.llm.base import Completion, CompletionRequest
from agentos.llm.errors import ProviderError
from agentos.llm.http_failure import host_of
from agentos.llm.rate_limits import CallObserver
from agentos.llm.stainless import sdk_failure
from agentos.llm.usage import Usage, clamp_tokens


class AnthropicProvider:
    name = "anthropic"

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
        import anthropic

        self.model = model
        self.key_name = key_name
        self._sdk = anthropic
        # The observer sees each answer's rate-limit headers (a paced run reports them); the
        # clients of one observer (one per key) share its HTTP client and so its TLS setup.
        http_client = (
            observer.http_client("anthropic", anthropic.DefaultHttpxClient)
            if observer
            else guarded_client(anthropic.DefaultHttpxClient)
        )
        self._client = anthropic.Anthropic(
            api_key=secret, base_url=base_url, max_retries=0, timeout=timeout_s, http_client=http_client
        )
        self.host = host_of(self._client.base_url)

    def complete(self, request: CompletionRequest) -> Completion:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if request.system:
            kwargs["system"] = request.system
        if request.schema is not None:  # the SDK's structured outputs (not a forced tool call)
            kwargs["output_config"] = {"format": {"type": "json_schema", "schema": request.schema.schema}}
        try:
            message = self._client.messages.create(**kwargs)
            text = "".join(getattr(block, "text", "") or "" for block in message.content)
            usage = _usage(message)
        except Exception as exc:
            raise sdk_failure(
                self._sdk,
                exc,
                provider=self.name,
                model=self.model,
                host=self.host,
                key_name=self.key_name,
                schema_requested=request.schema is not None,
            ) from None
        if not text:
            raise ProviderError(
                f"anthropic: empty answer from {self.host}", key_name=self.key_name, host=self.host
            )
        return Completion(text=text, provider=self.name, model=self.model, usage=usage)


def _usage(message: Any) -> Usage | None:
    """Input counts cache writes and reads too: every input token the call was billed for."""
    usage = getattr(message, "usage", None)
    if usage is None:
        return None
    fields = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return Usage.reported(
        sum(clamp_tokens(getattr(usage, name, 0)) for name in fields), getattr(usage, "output_tokens", 0)
    )
