"""One API key's request budget, kept so that a call is sent only when the key can take it.

The budget is a ledger of the key's calls: each one holds a slot from the moment it is
granted until the moment the provider is known to have let it go. Where that moment comes
from depends on what the key tells us (`LimitSource`):

- HEADERS: the provider's `limit`/`remaining`/`reset` numbers. A call's slot is free at
  `sent + reset` (the budget was whole again by then, as seen when the call was admitted).
  Usage the ledger cannot explain (another client on the same key) is held as phantom
  slots until that answer's reset.
- DECLARED: the user's `rpm`: a slot is free 60 s after its call was sent.
- LEARNED: no numbers at all (Gemini style). The first 429 teaches the limit and the window
  from the retry delay and the key's own send times; the budget then grows again by one
  after many calls without a 429.
- UNKNOWN: nothing yet. Calls are spaced by PROBE_GAP_S so that a first 429 comes back
  before the next call leaves, and concurrency adapts (AIMD: halved on a 429, +1/c per success).

A 429 blocks the key for its retry hint whatever the source. The clock is injected, and
nothing here sleeps or talks to another process: `BudgetBook` does that.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from agentos.llm.rate_limits import RateLimitInfo

PROBE_GAP_S = 0.1  # between calls on a key whose limit is unknown
MARGIN_S = 0.15  # send -> admission by the provider, plus rounding of its numbers
DECLARED_WINDOW_S = 60.0  # rpm: requests per minute
LEARN_TOLERANCE_S = 0.25
GROW_AFTER_WINDOWS = 5  # LEARNED: one more request per window after this many windows without a 429
MAX_HISTORY = 512
INF = math.inf


class LimitSource(StrEnum):
    UNKNOWN = "unknown"
    HEADERS = "headers"
    DECLARED = "declared"
    LEARNED = "learned"


class Outcome(StrEnum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"  # any other failure: the call may or may not have been counted


@dataclass
class _Call:
    granted_at: float
    tokens: int = 0
    held_before: int = 0  # slots held when it was granted
    paced: bool = False  # granted under a known limit (a 429 then is a surprise)
    expires_at: float | None = None  # None while in flight
    done_at: float | None = None


@dataclass(frozen=True)
class _TokenView:
    """The latest token budget the provider announced, and for which call."""

    limit: int
    remaining: int
    full_at: float
    call_id: int
    seen_at: float


class KeyBudget:
    def __init__(
        self,
        name: str,
        *,
        max_in_flight: int = 1,
        rpm: int | None = None,
        margin: float = MARGIN_S,
    ) -> None:
        self.name = name
        self.max_in_flight = max(1, max_in_flight)
        self.margin = margin
        self.source = LimitSource.UNKNOWN
        self.limit: int | None = None
        self.window: float | None = None  # DECLARED and LEARNED; the longest reset seen for HEADERS
        if rpm is not None:
            self.source, self.limit, self.window = LimitSource.DECLARED, rpm, DECLARED_WINDOW_S
        self.concurrency = float(self.max_in_flight)  # AIMD
        self.blocked_until = 0.0
        self.calls: dict[int, _Call] = {}
        self.phantoms: list[float] = []  # expiry times of usage the ledger cannot explain
        self.sends: deque[float] = deque(maxlen=MAX_HISTORY)  # accepted calls' send times (learning)
        self.grants: deque[float] = deque(maxlen=MAX_HISTORY)  # grant times (usage at admission)
        self.tokens: _TokenView | None = None
        self.last_grant = -INF
        self.after_response = False  # HEADERS: count resets from the answer, not the send (a 429 said so)
        self.ok_since_429 = 0
        self.granted = self.served = self.refused = 0

    # -- questions -------------------------------------------------------------------
    def in_flight(self) -> int:
        return sum(1 for c in self.calls.values() if c.expires_at is None)

    def used(self, now: float) -> int:
        """Slots held at `now`: calls in flight or not yet let go, and phantom usage."""
        held = sum(1 for c in self.calls.values() if c.expires_at is None or c.expires_at > now)
        return held + sum(1 for t in self.phantoms if t > now)

    def headroom(self, now: float) -> float:
        """How many more calls the budget allows now (inf when no limit is known)."""
        if self.limit is None:
            return INF
        return self.limit - self.used(now)

    def ready_at(self, now: float, tokens: int = 0) -> float:
        """The earliest time >= now a call could be granted if nothing else happens;
        `now` if one can be granted at once, inf if only an answer can free it."""
        at = max(now, self.blocked_until)
        if self.in_flight() >= max(1, math.floor(self.concurrency)):
            return INF
        if self.source is LimitSource.UNKNOWN:
            at = max(at, self.last_grant + PROBE_GAP_S)
        if self.limit is not None:
            at = max(at, self._slot_free_at(at))
        if self.tokens is not None and tokens > 0:
            at = max(at, self._tokens_at(at, tokens))
        return at

    def _slot_free_at(self, at: float) -> float:
        assert self.limit is not None
        excess = self.used(at) - self.limit + 1
        if excess <= 0:
            return at
        expiring = sorted(
            [c.expires_at for c in self.calls.values() if c.expires_at is not None and c.expires_at > at]
            + [t for t in self.phantoms if t > at]
        )
        return expiring[excess - 1] if excess <= len(expiring) else INF

    def _tokens_at(self, at: float, need: int) -> float:
        view = self.tokens
        assert view is not None
        pending = sum(
            c.tokens
            for cid, c in self.calls.items()
            if cid != view.call_id and (c.done_at is None or c.done_at > view.seen_at)
        )
        if need > view.limit:  # larger than the whole budget: send it alone, on a whole budget
            return max(at, view.full_at) if self.in_flight() == 0 else INF
        if at < view.full_at and view.remaining - pending >= need:
            return at
        if view.limit - pending >= need:
            return max(at, view.full_at)
        return INF

    # -- events ----------------------------------------------------------------------
    def grant(self, call_id: int, now: float, tokens: int = 0) -> None:
        paced = self.source is not LimitSource.UNKNOWN
        self.calls[call_id] = _Call(now, max(0, tokens), self.used(now), paced)
        self.last_grant = now
        self.grants.append(now)
        self.granted += 1
        self._prune(now)

    def complete(
        self,
        call_id: int,
        now: float,
        outcome: Outcome,
        info: RateLimitInfo | None = None,
        sent_at: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The answer to a granted call arrived at `now` (sent at `sent_at`, if known)."""
        call = self.calls.get(call_id)
        if call is None:
            return
        call.done_at = now
        sent = sent_at if sent_at is not None and call.granted_at <= sent_at <= now else None
        if info is not None and info.requests.known:
            self._headers(call, now, sent, info, refused=outcome is Outcome.RATE_LIMITED)
        elif outcome is Outcome.RATE_LIMITED and self.source is not LimitSource.HEADERS:
            self._learn(call_id, now, retry_after)
        if info is not None and info.tokens.known and info.tokens.reset_s is not None:
            assert info.tokens.limit is not None and info.tokens.remaining is not None
            ref = now if (sent is None or self.after_response) else sent
            if self.tokens is None or self.tokens.seen_at <= now:
                self.tokens = _TokenView(
                    info.tokens.limit,
                    info.tokens.remaining,
                    ref + info.tokens.reset_s + self.margin,
                    call_id,
                    now,
                )
        if outcome is Outcome.RATE_LIMITED:
            self._rate_limited(call, now, retry_after)
        else:
            if call.expires_at is None:
                call.expires_at = self._expiry(now, sent, call.granted_at)
            if outcome is Outcome.OK:
                self.served += 1
                self.sends.append(sent if sent is not None else call.granted_at)
                self._grow()
        self._prune(now)

    def abandon(self, call_id: int, now: float) -> None:
        """The caller went away (its worker stopped): the call may have reached the provider."""
        call = self.calls.get(call_id)
        if call is not None and call.expires_at is None:
            call.done_at = now
            call.expires_at = self._expiry(now, None, call.granted_at)

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)

    # -- internals -------------------------------------------------------------------
    def _expiry(self, now: float, sent: float | None, granted_at: float) -> float:
        if self.source is LimitSource.UNKNOWN or self.window is None:
            return now
        if self.source is LimitSource.HEADERS:
            return now + self.window + self.margin  # no reset for this call: the longest seen
        ref = sent if sent is not None else granted_at
        margin = self.margin if sent is not None else max(self.margin, 0.02 * self.window)
        return ref + self.window + margin

    def _headers(
        self, call: _Call, now: float, sent: float | None, info: RateLimitInfo, refused: bool
    ) -> None:
        budget = info.requests
        assert budget.limit is not None and budget.remaining is not None
        reset = budget.reset_s if budget.reset_s is not None else (self.window or DECLARED_WINDOW_S)
        self.source, self.limit = LimitSource.HEADERS, budget.limit
        self.window = max(self.window or 0.0, reset)
        ref = now if (sent is None or self.after_response) else sent
        call.expires_at = ref + reset + self.margin
        # What the provider counted when it admitted this call, against what we had sent by
        # then (every call granted before it was sent, or before its answer if not known).
        admitted_by = sent if sent is not None else now
        ours = call.held_before + sum(1 for t in self.grants if call.granted_at < t <= admitted_by)
        counted = budget.limit - budget.remaining - (0 if refused else 1)
        foreign = counted - ours
        if foreign > 0:  # someone else spends this key too: hold their slots until this reset
            self.phantoms.extend([now + reset + self.margin] * min(foreign, budget.limit))

    def _rate_limited(self, call: _Call, now: float, retry_after: float | None) -> None:
        self.refused += 1
        self.ok_since_429 = 0
        self.concurrency = max(1.0, self.concurrency / 2)
        if retry_after is not None:
            self.block(now + retry_after)
        call.expires_at = max(now, self.blocked_until)  # a refused call is not counted
        if self.source is LimitSource.HEADERS and call.paced:
            self.after_response = True  # the budget said yes and the provider said no: be stricter

    def _learn(self, call_id: int, now: float, retry_after: float | None) -> None:
        """From a 429: the oldest call in the provider's window leaves at `now + retry_after`.
        It is the most recent send preceded by a gap of at least `retry_after` (or the first
        one); the limit is the number of calls sent since, the window the time it leaves minus
        its send time."""
        if retry_after is None:
            return
        times = sorted(
            [*self.sends]
            + [c.granted_at for cid, c in self.calls.items() if c.expires_at is None and cid != call_id]
        )
        if not times:
            return
        frees_at = now + retry_after
        oldest = 0
        for j in range(len(times) - 1, 0, -1):
            if times[j] - times[j - 1] >= retry_after - LEARN_TOLERANCE_S:
                oldest = j
                break
        window = frees_at - times[oldest]
        if window <= 0:
            return
        limit = len(times) - oldest
        if self.source is LimitSource.LEARNED and self.limit is not None:
            limit = min(limit, self.limit)  # the provider said no at this level: never above it
        self.source, self.limit, self.window = LimitSource.LEARNED, max(1, limit), window

    def _grow(self) -> None:
        self.concurrency = min(float(self.max_in_flight), self.concurrency + 1 / self.concurrency)
        self.ok_since_429 += 1
        learned = self.source is LimitSource.LEARNED and self.limit is not None
        if learned and self.limit is not None and self.ok_since_429 >= GROW_AFTER_WINDOWS * self.limit:
            self.limit += 1
            self.ok_since_429 = 0

    def _prune(self, now: float) -> None:
        for cid in [cid for cid, c in self.calls.items() if c.expires_at is not None and c.expires_at <= now]:
            if self.tokens is None or cid != self.tokens.call_id:
                del self.calls[cid]
        self.phantoms = [t for t in self.phantoms if t > now]
