"""Provider specs (`provider[:model]`) and the factory that builds a client for a key."""

from __future__ import annotations

import os
from dataclasses import dataclass

from agentos.core import environment
from agentos.core.errors import ConfigError
from agentos.core.redaction import register_secret
from agentos.llm.base import Provider
from agentos.llm.rate_limits import CallObserver

PROVIDERS = ("mock", "gemini", "anthropic", "openai")
DEFAULT_MODELS = {
    "mock": "mock-offline",
    "gemini": "gemini-2.5-flash",
    "anthropic": "claude-sonnet-4-5",
    "openai": "gpt-4o-mini",
}
BASE_URL_ENV = {
    "gemini": environment.GEMINI_BASE_URL,
    "anthropic": environment.ANTHROPIC_BASE_URL,
    "openai": environment.OPENAI_BASE_URL,
}
# The SDK modules each provider needs: preloaded in the fork server, imported lazily elsewhere.
SDK_MODULES = {
    "mock": (),
    "gemini": ("google.genai",),
    "anthropic": ("anthropic",),
    "openai": ("openai",),
}


@dataclass(frozen=True)
class ProviderSpec:
    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> ProviderSpec:
        provider, _, model = text.strip().partition(":")
        provider = provider.lower()
        if provider not in PROVIDERS:
            raise ConfigError(
                f"unknown provider {provider!r} in {text!r}; choose one of {', '.join(PROVIDERS)} "
                "(optionally as provider:model)"
            )
        return cls(provider, model.strip() or DEFAULT_MODELS[provider])

    @property
    def is_mock(self) -> bool:
        return self.provider == "mock"

    def label(self) -> str:
        suffix = " (offline mock, no real LLM)" if self.is_mock else ""
        return f"{self.provider}:{self.model}{suffix}"

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def base_url_for(provider: str) -> str | None:
    var = BASE_URL_ENV.get(provider)
    return var.get() if var else None


DEFAULT_TIMEOUT_S = 300.0  # per HTTP call; `provider_timeout` in agentos.toml changes it


def create_provider(
    spec: ProviderSpec,
    *,
    secret: str | None,
    key_name: str | None,
    timeout_s: float | None = None,
    observer: CallObserver | None = None,
) -> Provider:
    if secret:  # SDK error texts that echo the key are then redacted at their source
        register_secret(secret, key_name or f"{spec.provider}-key")
    if spec.provider == "mock":
        from agentos.llm.mock import MockProvider

        return MockProvider(spec.model, key_name=key_name, secret=secret)
    if not secret:
        raise ConfigError(
            f"no API key for {spec.provider}: add $AGENTOS_HOME/{spec.provider}-credentials.json "
            "or set the provider's API key environment variable"
        )
    base_url = base_url_for(spec.provider)
    timeout = timeout_s or DEFAULT_TIMEOUT_S
    if spec.provider == "gemini":
        from agentos.llm.gemini_api import GeminiProvider

        return GeminiProvider(
            spec.model, secret=secret, key_name=key_name, base_url=base_url, timeout_s=timeout
        )
    if spec.provider == "anthropic":
        from agentos.llm.anthropic_api import AnthropicProvider

        return AnthropicProvider(
            spec.model,
            secret=secret,
            key_name=key_name,
            base_url=base_url,
            timeout_s=timeout,
            observer=observer,
        )
    from agentos.llm.openai_api import OpenAIProvider

    return OpenAIProvider(
        spec.model,
        secret=secret,
        key_name=key_name,
        base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
        timeout_s=timeout,
        observer=observer,
    )
