"""Tokens a call used, as the provider reports them, clamped; summed per model.

Provider numbers are untrusted: a negative, fractional, NaN or absurd count is clamped
here, once, for every provider. The OFFLINE MOCK has no tokenizer: its counts are
estimates (about 4 characters a token) and say so, so they are never shown as measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agentos.core.redaction import clip

MAX_TOKENS_PER_CALL = 10_000_000  # far above any context window: a larger count is nonsense
CHARS_PER_TOKEN = 4


def clamp_tokens(value: Any) -> int:
    """A provider's token count as a sane int: 0..MAX_TOKENS_PER_CALL; junk counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        number = float(value)
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str) and len(value) <= 32:
        try:
            number = float(value)
        except ValueError:
            return 0
    else:
        return 0
    if not math.isfinite(number) or number <= 0:
        return 0
    return int(min(number, MAX_TOKENS_PER_CALL))


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False  # True: counted by agentos (mock), not reported by a provider

    @classmethod
    def reported(cls, input_tokens: Any, output_tokens: Any) -> Usage:
        return cls(clamp_tokens(input_tokens), clamp_tokens(output_tokens))

    @classmethod
    def estimate(cls, prompt: str, answer: str) -> Usage:
        return cls(_estimate(prompt), _estimate(answer), estimated=True)

    def audit_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.estimated:
            fields["tokens_estimated"] = True
        return fields


def _estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


class UsageTotals:
    """Tokens summed per model (`provider:model`), since each model has its own price."""

    def __init__(self) -> None:
        self.by_model: dict[str, dict[str, Any]] = {}

    def add(self, model: str, usage: Usage) -> None:
        entry = self.by_model.setdefault(
            model, {"input_tokens": 0, "output_tokens": 0, "calls": 0, "estimated": False}
        )
        entry["input_tokens"] += usage.input_tokens
        entry["output_tokens"] += usage.output_tokens
        entry["calls"] += 1
        entry["estimated"] = entry["estimated"] or usage.estimated

    def merge(self, data: Any) -> None:
        """Add a `to_dict()` from another process (a worker). Untrusted shape: clamped."""
        if not isinstance(data, dict):
            return
        for model, entry in list(data.items())[:64]:
            if not isinstance(model, str) or not isinstance(entry, dict):
                continue
            target = self.by_model.setdefault(
                clip(model, 200), {"input_tokens": 0, "output_tokens": 0, "calls": 0, "estimated": False}
            )
            target["input_tokens"] += clamp_tokens(entry.get("input_tokens"))
            target["output_tokens"] += clamp_tokens(entry.get("output_tokens"))
            target["calls"] += clamp_tokens(entry.get("calls"))
            target["estimated"] = target["estimated"] or bool(entry.get("estimated"))

    @property
    def input_tokens(self) -> int:
        return sum(int(e["input_tokens"]) for e in self.by_model.values())

    @property
    def output_tokens(self) -> int:
        return sum(int(e["output_tokens"]) for e in self.by_model.values())

    @property
    def estimated(self) -> bool:
        return any(bool(e["estimated"]) for e in self.by_model.values())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {model: dict(entry) for model, entry in self.by_model.items()}
