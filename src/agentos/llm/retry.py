"""When to try a failed provider call again: transient failures only, with jittered
exponential backoff and a bounded total.

The SDKs' own retries are off, so every try goes through our layer: in a paced run each
one waits for its own permit, and the key budget counts it. A 429 is not retried here:
it goes back to the key pool, which cools the key and resumes the item (maybe on another
key). The random source is injected, so tests can pin the delays.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from agentos.core import environment
from agentos.llm.errors import ProviderError


@dataclass(frozen=True)
class RetryPolicy:
    """At most `retries` more tries; waits drawn from [0, min(cap, base * 2**n)] ("full
    jitter"), or the server's retry-after (capped), and never more than `total_wait_s`
    spent waiting across one call."""

    retries: int = 3
    base_s: float = 1.0
    cap_s: float = 15.0
    total_wait_s: float = 45.0
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def delay(self, error: BaseException, failed_tries: int, waited_s: float) -> float | None:
        """Seconds to wait before the next try, or None: give up and raise `error`."""
        if not isinstance(error, ProviderError) or not error.transient or failed_tries > self.retries:
            return None
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (failed_tries - 1))
        wait = self.rng() * ceiling
        if error.retry_after is not None:  # the server's own hint (a 503's retry-after), capped
            wait = min(error.retry_after, self.cap_s)
        if waited_s + wait > self.total_wait_s:
            return None
        return wait


NO_RETRIES = RetryPolicy(retries=0)


def policy_from_env() -> RetryPolicy:
    """The default policy, with `AGENTOS_RETRY_BASE_S` (tests) scaling every wait."""
    raw = environment.RETRY_BASE_S.get_stripped()
    try:
        base = float(raw) if raw else None
    except ValueError:
        base = None
    if base is None or not math.isfinite(base) or base < 0 or base > 60:
        return RetryPolicy()
    scale = base / RetryPolicy.base_s
    return RetryPolicy(
        base_s=base, cap_s=RetryPolicy.cap_s * scale, total_wait_s=RetryPolicy.total_wait_s * scale
    )
