"""The provider interface: "give me a completion for this prompt"."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

Purpose = Literal["draft", "review"]


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


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str


class Provider(Protocol):
    name: str
    model: str
    key_name: str | None

    def complete(self, request: CompletionRequest) -> Completion: ...


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - (now if now is not None else time.time()))
