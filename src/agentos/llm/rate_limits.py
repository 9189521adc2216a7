"""A provider's own rate-limit numbers, read from its response headers as untrusted input.

- OpenAI-compatible servers: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`;
  the reset is a Go duration (`1s`, `6m0s`, `20ms`): the time until the budget is whole again.
- Anthropic: `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`; the reset is
  an RFC 3339 time at which the budget is whole again.
- Gemini sends none: there the user declares `rpm` and its 429s teach the rest.

Every number is bounded: counts to [0, MAX_COUNT], resets to [0, MAX_RETRY_AFTER_S];
anything unparsable, negative, NaN or infinite is dropped. Parsing is a linear scan of a
bounded text, with no regular expression.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from agentos.core.retry_hints import MAX_HINT_TEXT, clamp_retry_after
from agentos.llm.answer_guard import guarded_client

MAX_COUNT = 10**9
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
MAX_HEADERS = 32  # rate-limit headers kept from one answer


class Outcome(StrEnum):
    """How a paced call ended, as the worker reports it to the coordinator's budget."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    REJECTED = "rejected"  # the key itself was refused (401/403): never grant it again
    ERROR = "error"  # any other failure: the call may or may not have been counted


@dataclass(frozen=True)
class Budget:
    """One dimension of a key's budget, as the provider saw it when it admitted the call."""

    limit: int | None = None
    remaining: int | None = None
    reset_s: float | None = None  # seconds until the budget is whole again

    @property
    def known(self) -> bool:
        return self.limit is not None and self.remaining is not None


@dataclass(frozen=True)
class RateLimitInfo:
    requests: Budget
    tokens: Budget

    @property
    def empty(self) -> bool:
        return not (self.requests.known or self.tokens.known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RateLimitInfo:
        """Rebuild from a message: every field re-validated (the sender is another process)."""
        if not isinstance(data, dict):
            return NO_INFO
        return cls(_budget_from(data.get("requests")), _budget_from(data.get("tokens")))


NO_INFO = RateLimitInfo(Budget(), Budget())


def _budget_from(data: Any) -> Budget:
    if not isinstance(data, dict):
        return Budget()
    limit, remaining = parse_count(data.get("limit")), parse_count(data.get("remaining"))
    if limit is not None and limit < 1:
        limit = None
    if limit is not None and remaining is not None:
        remaining = min(remaining, limit)
    return Budget(limit, remaining, clamp_retry_after(_number(data.get("reset_s"))))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_count(value: Any) -> int | None:
    """A whole number of requests or tokens in [0, MAX_COUNT], or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value == int(value):
        number = int(value)
    elif isinstance(value, str) and 0 < len(text := value.strip()) <= MAX_HINT_TEXT and _digits(text):
        number = int(text)
    else:
        return None
    return None if number < 0 else min(number, MAX_COUNT)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_go_duration(text: Any) -> float | None:
    """`1h2m3.5s`, `6m0s`, `20ms`, `1.5s` (or a plain number of seconds) -> seconds, or None."""
    if not isinstance(text, str):
        return None
    raw = text.strip()
    if not raw or len(raw) > MAX_HINT_TEXT or not raw.isascii():
        return None
    try:
        return float(raw) if math.isfinite(float(raw)) and float(raw) >= 0 else None
    except ValueError:
        pass
    total, i, n = 0.0, 0, len(raw)
    while i < n:
        start = i
        while i < n and (raw[i].isdigit() or raw[i] == "."):
            i += 1
        if start == i:
            return None
        try:
            value = float(raw[start:i])
        except ValueError:
            return None
        unit_start = i
        while i < n and not (raw[i].isdigit() or raw[i] == "."):
            i += 1
        factor = _UNITS.get(raw[unit_start:i])
        if factor is None:
            return None
        total += value * factor
    return total if math.isfinite(total) else None


def parse_reset_time(text: Any, now: float) -> float | None:
    """An RFC 3339 time (Anthropic's reset) -> seconds from `now` (epoch), or None."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_HINT_TEXT:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return max(0.0, moment.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Only the rate-limit headers of an answer, names lower-cased, values bounded."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = str(name).lower()
        if lowered.startswith(PREFIXES) or lowered in ("retry-after", "retry-after-ms"):
            kept[lowered[:80]] = str(value)[: MAX_HINT_TEXT + 1]
            if len(kept) >= MAX_HEADERS:
                break
    return kept


def parse_rate_limits(headers: Mapping[str, str], now: float | None = None) -> RateLimitInfo:
    """The request and token budgets an answer's headers announce (OpenAI or Anthropic style)."""
    lowered = rate_limit_headers(headers)
    wall = time.time() if now is None else now
    if any(name.startswith("anthropic-ratelimit-") for name in lowered):

        def anthropic(kind: str) -> Budget:
            prefix = f"anthropic-ratelimit-{kind}-"
            reset = parse_reset_time(lowered.get(prefix + "reset"), wall)
            return _budget_from(
                {
                    "limit": parse_count(lowered.get(prefix + "limit")),
                    "remaining": parse_count(lowered.get(prefix + "remaining")),
                    "reset_s": reset,
                }
            )

        return RateLimitInfo(anthropic("requests"), anthropic("tokens"))

    def openai(kind: str) -> Budget:
        return _budget_from(
            {
                "limit": parse_count(lowered.get(f"x-ratelimit-limit-{kind}")),
                "remaining": parse_count(lowered.get(f"x-ratelimit-remaining-{kind}")),
                "reset_s": parse_go_duration(lowered.get(f"x-ratelimit-reset-{kind}")),
            }
        )

    return RateLimitInfo(openai("requests"), openai("tokens"))


class CallObserver:
    """Watches one client's HTTP traffic (httpx event hooks): when the request of the call in
    progress left, and the rate-limit headers of its answer, 429s included."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.sent_at: float | None = None
        self.headers: dict[str, str] = {}
        self.received_wall: float | None = None
        self._http_clients: dict[str, Any] = {}

    def http_client(self, sdk: str, client_class: Callable[..., Any]) -> Any:
        """The one HTTP client of an SDK (its `DefaultHttpxClient`, with these hooks), built on
        first use. Calls through one observer are sequential (one worker, one call at a time),
        so sharing it is safe."""
        if sdk not in self._http_clients:
            self._http_clients[sdk] = guarded_client(client_class, event_hooks=self.event_hooks())
        return self._http_clients[sdk]

    def reset(self) -> None:
        self.sent_at, self.headers, self.received_wall = None, {}, None

    def on_request(self, request: Any) -> None:
        self.sent_at = self.clock()

    def on_response(self, response: Any) -> None:
        self.received_wall = time.time()
        try:
            self.headers = rate_limit_headers(response.headers)
        except Exception:  # a hook must never break the call it watches
            self.headers = {}

    def event_hooks(self) -> dict[str, list[Callable[[Any], None]]]:
        return {"request": [self.on_request], "response": [self.on_response]}

    def info(self) -> RateLimitInfo:
        return parse_rate_limits(self.headers, self.received_wall) if self.headers else NO_INFO
