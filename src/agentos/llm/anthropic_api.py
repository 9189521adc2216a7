"""Anthropic Claude through the official `anthropic` SDK, with SDK retries off."""

from __future__ import annotations

from typing import Any

from agentos.llm.base import Completion, CompletionRequest, parse_retry_after
from agentos.llm.errors import AuthError, ProviderError, RateLimited
from agentos.llm.rate_limits import CallObserver
from agentos.llm.structured import StructuredOutputUnsupported, looks_unsupported
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
        http_client = observer.http_client("anthropic", anthropic.DefaultHttpxClient) if observer else None
        self._client = anthropic.Anthropic(
            api_key=secret, base_url=base_url, max_retries=0, timeout=timeout_s, http_client=http_client
        )

    def complete(self, request: CompletionRequest) -> Completion:
        sdk = self._sdk
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
        except sdk.RateLimitError as exc:
            raise RateLimited(
                parse_retry_after(dict(exc.response.headers)),
                key_name=self.key_name,
                message=f"anthropic: HTTP 429: {exc.message}",
            ) from None
        except (sdk.AuthenticationError, sdk.PermissionDeniedError) as exc:
            raise AuthError(f"anthropic: {exc.message}", key_name=self.key_name) from None
        except sdk.APIStatusError as exc:
            if request.schema is not None and looks_unsupported(exc.status_code, str(exc.message)):
                raise StructuredOutputUnsupported(
                    f"anthropic: HTTP {exc.status_code}: {exc.message}", key_name=self.key_name
                ) from None
            raise ProviderError(
                f"anthropic: HTTP {exc.status_code}: {exc.message}", key_name=self.key_name
            ) from None
        except sdk.APIError as exc:
            raise ProviderError(f"anthropic: {exc.message}", key_name=self.key_name) from None
        text = "".join(getattr(block, "text", "") for block in message.content)
        if not text:
            raise ProviderError("anthropic: empty response", key_name=self.key_name)
        return Completion(text=text, provider=self.name, model=self.model, usage=_usage(message))


def _usage(message: Any) -> Usage | None:
    """Input counts cache writes and reads too: every input token the call was billed for."""
    usage = getattr(message, "usage", None)
    if usage is None:
        return None
    fields = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return Usage.reported(
        sum(clamp_tokens(getattr(usage, name, 0)) for name in fields), getattr(usage, "output_tokens", 0)
    )
