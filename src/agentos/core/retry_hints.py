"""Provider numbers are untrusted: every retry hint and reset time is clamped here.

A server may answer `retry-after: inf`, `1e18`, `nan` or `-5`. Unclamped, such a number
overflows a timer, poisons the credential state file with `Infinity`, or parks a key
for ever. The bounds live here and nowhere else.
"""

from __future__ import annotations

import math
import time

MAX_RETRY_AFTER_S = 3600.0
"""The longest wait a retry hint can ask for; a larger hint is clamped to this."""

MAX_RESET_AHEAD_S = 25 * 3600.0
"""How far ahead a quota reset may lie. Daily quotas (Gemini resets at midnight Pacific)
legitimately reset up to 24 h ahead, so this bound is wider than a retry hint's."""

MAX_HINT_TEXT = 64  # a longer "number" is not a number


def parse_seconds(text: object) -> float | None:
    """A plain decimal number of seconds, or None if it is not one (no regex: linear)."""
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        return None
    if isinstance(text, str):
        raw = text.strip()
        if not raw or len(raw) > MAX_HINT_TEXT:
            return None
        try:
            value = float(raw)
        except ValueError:
            return None
    else:
        value = float(text)
    return value


def clamp_retry_after(seconds: float | None) -> float | None:
    """Seconds in [0, MAX_RETRY_AFTER_S]; None (use the backoff) for NaN, inf, negative."""
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return min(value, MAX_RETRY_AFTER_S)


def clamp_reset_at(reset_at: float | None, now: float | None = None) -> float | None:
    """An epoch time at most MAX_RESET_AHEAD_S ahead; None (use the default) if not finite."""
    if reset_at is None:
        return None
    try:
        value = float(reset_at)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(value):
        return None
    current = time.time() if now is None else now
    return min(value, current + MAX_RESET_AHEAD_S)


def clamp_until(until: float, now: float, ahead: float = MAX_RESET_AHEAD_S) -> float:
    """A stored 'not before' time: finite and at most `ahead` seconds after `now` (else 0)."""
    if not math.isfinite(until):
        return 0.0
    return min(until, now + ahead)
