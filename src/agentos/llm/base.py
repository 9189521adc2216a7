"""The provider interface: "give me a completion for this prompt"."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from agentos.core.retry_hints import clamp_retry_after, parse_seconds
from agentos.llm.usage import Usage

if TYPE_CHECKING:
    from agentos.llm.structured import ResponseSchema

Purpose = Literal["draft", "review"]
MAX_DATE_TEXT = 64  # an HTTP date is ~29 characters


@dataclass(frozen=True)
class CompletionRequest:
    prompt: str
    system: str = ""
    purpose: Purpose = "draft"
    round: int = 1
    # Structured inputs behind the prompt. Real providers ignore them; the offline mock
    # uses them to produce drafts and verdicts that depend on the item.
    context: Mapping[str, str] = field(default_factory=dict)
    max_tokens: int = 4096
    # Ask for an answer in this JSON schema through the provider's native structured output.
    # A provider or model that rejects it raises StructuredOutputUnsupported.
    schema: ResponseSchema | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    usage: Usage | None = None  # None: the provider reported none


class Provider(Protocol):
    name: str
    model: str
    key_name: str | None

    def complete(self, request: CompletionRequest) -> Completion: ...


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date).

    Clamped to [0, MAX_RETRY_AFTER_S]; NaN, inf, negative or unparsable: None (backoff).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = parse_seconds(lowered.get("retry-after-ms"))
    if ms is not None:
        return clamp_retry_after(ms / 1000.0)
    value = lowered.get("retry-after")
    if not value:
        return None
    seconds = parse_seconds(value)
    if seconds is not None:
        return clamp_retry_after(seconds)
    if len(value) > MAX_DATE_TEXT:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return clamp_retry_after(max(0.0, parsed.timestamp() - (now if now is not None else time.time())))
