"""Provider clients behind one small interface, with one error tree."""

from agentos.llm.base import Completion, CompletionRequest, Provider
from agentos.llm.errors import AuthError, LLMError, ProviderError, QuotaExhausted, RateLimited

__all__ = [
    "AuthError",
    "Completion",
    "CompletionRequest",
    "LLMError",
    "Provider",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
]
