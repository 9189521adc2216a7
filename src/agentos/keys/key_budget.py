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

from agentos.llm.rate_limits import Outcome, RateLimitInfo

PROBE_GAP_S = 0.25  # between calls on a key whose limit is unknown
MARGIN_S = 0.15  # send -> admission by the provider, plus rounding of its numbers
DECLARED_WINDOW_S = 60.0  # rpm: requests per minute
LEARN_TOLERANCE_S = 0.25
REORDER_S = 0.25
GROW_AFTER_WINDOWS = 5  # LEARNED: one more request per window after this many windows without a 429
MAX_HISTORY = 512
INF = math.inf


class LimitSource(StrEnum):
    UNKNOWN = "unknown"
    HEADERS = "headers"
    DECLARED = "declared"
    LEARNED = "learned"


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
        # Slots held by calls not tracked one by one: another client's (HEADERS), or our own
        # calls answered before the limit was learned (LEARNED). Each entry: when it frees.
        self.held: list[float] = []
        self.sends: deque[float] = deque(maxlen=MAX_HISTORY)  # accepted calls' send times (learning)
        self.grants: deque[float] = deque(maxlen=MAX_HISTORY)  # grant times (usage at admission)
        self.tokens: _TokenView | None = None
        self.last_grant = -INF
        self.after_response = False  # HEADERS: count resets from the answer, not the send (a 429 said so)
        self.ok_since_429 = 0
        self.granted = self.served = self.refused = 0
        self.sent = 0  # calls that reached the provider, whatever it answered (errors included)

    # -- questions -------------------------------------------------------------------
    def in_flight(self) -> int:
        return sum(1 for c in self.calls.values() if c.expires_at is None)

    def used(self, now: float) -> int:
        """Slots held at `now`: calls in flight or not yet let go, and phantom usage."""
        held = sum(1 for c in self.calls.values() if c.expires_at is None or c.expires_at > now)
        return held + sum(1 for t in self.held if t > now)

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
            + [t for t in self.held if t > at]
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
        if sent_at is not None or outcome is not Outcome.ERROR:
            self.sent += 1
        sent = sent_at if sent_at is not None and call.granted_at <= sent_at <= now else None
        if info is not None and info.requests.known:
            self._headers(call, now, sent, info, refused=outcome is Outcome.RATE_LIMITED)
        elif outcome is Outcome.RATE_LIMITED and self.source is not LimitSource.HEADERS:
            self._learn(call, now, sent, retry_after)
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
        # then: every call granted before it was sent (give or take REORDER_S: two requests
        # may reach the provider in the other order), or before its answer if that is unknown.
        admitted_by = min(now, sent + REORDER_S) if sent is not None else now
        ours = call.held_before + sum(1 for t in self.grants if call.granted_at < t <= admitted_by)
        counted = budget.limit - budget.remaining - (0 if refused else 1)
        foreign = counted - ours
        if foreign > 0:  # someone else spends this key too: hold their slots until this reset
            self.held.extend([now + reset + self.margin] * min(foreign, budget.limit))

    def _rate_limited(self, call: _Call, now: float, retry_after: float | None) -> None:
        self.refused += 1
        self.ok_since_429 = 0
        self.concurrency = max(1.0, self.concurrency / 2)
        if retry_after is not None:
            self.block(now + retry_after)
        call.expires_at = max(now, self.blocked_until)  # a refused call is not counted
        if self.source is LimitSource.HEADERS and call.paced:
            self.after_response = True  # the budget said yes and the provider said no: be stricter

    def _learn(self, call: _Call, now: float, sent: float | None, retry_after: float | None) -> None:
        """A 429 without rate-limit headers: learn the key's limit and window from it, then
        hold a slot for each recent send under what was learned."""
        if retry_after is None:
            return
        refused_at = sent if sent is not None else call.granted_at
        in_flight = [c.granted_at for c in self.calls.values() if c.expires_at is None and c is not call]
        times = sorted(t for t in [*self.sends, *in_flight] if t < refused_at)
        learned = learn_window(times, refused_at, now + retry_after)
        if learned is None:
            return
        limit, window = learned
        self.source, self.limit, self.window = LimitSource.LEARNED, limit, window
        # The ledger now holds every recent send for the learned window; calls already
        # answered are held through their send time (in `held`), calls in flight stay.
        for cid in [cid for cid, c in self.calls.items() if c.expires_at is not None]:
            del self.calls[cid]
        self.held = [t + window + self.margin for t in self.sends if t + window + self.margin > now]

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
        self.held = [t for t in self.held if t > now]


def learn_window(times: list[float], refused_at: float, frees_at: float) -> tuple[int, float] | None:
    """The (limit, window) of a sliding window that explains a 429, or None.

    `times`: the key's accepted sends before the refused one (sorted); the provider refused
    the call sent at `refused_at` and said its oldest counted call leaves at `frees_at`.
    Each send j is a candidate for that oldest call: then window = frees_at - times[j] and
    limit = the sends from j on. A candidate must explain everything: no earlier send
    inside that window at the refusal (else it would be older), and no send ever refused
    under it (at most `limit` sends within any `window`). The most recent candidate that
    does is the answer: the tightest reading of what the provider said.
    """
    n = len(times)
    for j in range(n - 1, -1, -1):
        window = frees_at - times[j]
        limit = n - j
        if window <= 2 * LEARN_TOLERANCE_S:
            continue  # too short to tell from timing noise
        if j > 0 and times[j - 1] > refused_at - window + LEARN_TOLERANCE_S:
            continue  # an older send would still be in the window
        if _most_in_window(times, window - LEARN_TOLERANCE_S) <= limit:
            return limit, window
    return None


def _most_in_window(times: list[float], window: float) -> int:
    """The most sends within any half-open interval of length `window` (two pointers)."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while start < end and at - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most
