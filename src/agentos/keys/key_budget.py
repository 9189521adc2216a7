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
- UNKNOWN: nothing yet. The next call, in any run on the key, waits for the last one's
  answer or PROBE_SETTLE_S after its grant, and at least PROBE_GAP_S, so that a first 429
  comes back before the next call leaves; concurrency adapts (AIMD: halved on a 429, +1/c
  per success).

A 429 blocks the key for its retry hint whatever the source. The clock is injected, and
nothing here sleeps or talks to another process: `BudgetBook` does that.

Other runs on the same key (through the key ledger) hold `shared` slots: each counts until
its own expiry, or for as long as it is in flight. A 429 the budget did not expect (a paced
call under HEADERS) means the model is wrong: the key turns `strict`, and from then on every
call's slot is held a whole window (the longest reset seen, stretched by what the 429's
retry hint says of the oldest counted call), whatever `reset` meant: time until the window
is whole, until the next slot frees, or the end of a fixed window.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from agentos.llm.rate_limits import Outcome, RateLimitInfo

PROBE_GAP_S = 0.25  # between calls on a key whose limit is unknown
# ... and the next one waits for the last one's answer, or this long after its grant. Under
# load a grant can leave for the provider hundreds of ms late, so that probes spaced by their
# grants alone can arrive together (the real benchmark: three refusals of one key in 26 ms).
PROBE_SETTLE_S = 2.0
MARGIN_S = 0.15  # send -> admission by the provider, plus rounding of its numbers
DECLARED_WINDOW_S = 60.0  # rpm: requests per minute
LEARN_TOLERANCE_S = 0.25
REORDER_S = 0.25
GROW_AFTER_WINDOWS = 5  # LEARNED: one more request per window after this many windows without a 429
MAX_HISTORY = 512
MAX_WINDOW_S = 3600.0  # the longest window a 429 can stretch a key's to
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
    sent_at: float | None = None  # when it left, as its answer said (None: unknown)


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
        self.strict = False  # a surprise 429: hold every slot a whole window from now on
        self.shared: list[
            tuple[float, float]
        ] = []  # other runs' slots: (granted at, frees at; inf in flight)
        self.granted = self.served = self.refused = 0
        self.sent = 0  # calls that reached the provider, whatever it answered (errors included)

    # -- questions -------------------------------------------------------------------
    def in_flight(self) -> int:
        return sum(1 for c in self.calls.values() if c.expires_at is None)

    def used(self, now: float) -> int:
        """Slots held at `now`: calls in flight or not yet let go, and phantom usage."""
        held = sum(1 for c in self.calls.values() if c.expires_at is None or c.expires_at > now)
        return held + sum(1 for t in self.held if t > now) + sum(1 for _, t in self.shared if t > now)

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
        if self.source is LimitSource.UNKNOWN:  # probes, spaced across every run of the key
            last = max([self.last_grant, *(g for g, _ in self.shared)])
            at = max(at, last + PROBE_GAP_S)
            unanswered = [c.granted_at for c in self.calls.values() if c.expires_at is None]
            unanswered += [g for g, t in self.shared if t == INF]
            if unanswered:  # a call not refused by then was admitted: a 429 comes back at once
                at = max(at, max(unanswered) + PROBE_SETTLE_S)
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
            + [t for _, t in self.shared if at < t < INF]
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
    ) -> float | None:
        """The answer to a granted call arrived at `now` (sent at `sent_at`, if known).
        Returns when the call's slot frees (None: not tracked one by one any more)."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        call.done_at = now
        if sent_at is not None or outcome is not Outcome.ERROR:
            self.sent += 1
        sent = sent_at if sent_at is not None and call.granted_at <= sent_at <= now else None
        call.sent_at = sent
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
        expires_at = call.expires_at if call_id in self.calls else None
        self._prune(now)
        return expires_at

    def abandon(self, call_id: int, now: float) -> float | None:
        """The caller went away (its worker stopped): the call may have reached the provider.
        Returns when its slot frees."""
        call = self.calls.get(call_id)
        if call is not None and call.expires_at is None:
            call.done_at = now
            call.expires_at = self._expiry(now, None, call.granted_at)
        return call.expires_at if call is not None else None

    def adopt(self, limit: int | None, window: float | None, source: str, strict: bool, now: float) -> None:
        """What other runs learned of this key (the ledger). A key this run knows nothing of
        takes their model whole; after that, only what makes pacing safer: a longer window
        read from headers, and strictness once any run was surprised by a 429."""
        try:
            theirs = LimitSource(source)
        except ValueError:
            return
        if limit is not None and window is not None and self.source is LimitSource.UNKNOWN:
            if theirs is not LimitSource.UNKNOWN:
                self.source, self.limit, self.window = theirs, limit, window
                # Our own calls answered while the limit was unknown let their slots go at
                # once; the provider still counts them: hold them for the window, as `_learn` does.
                self.held.extend(
                    t + window + self.margin for t in self.sends if t + window + self.margin > now
                )
        elif theirs is LimitSource.LEARNED and self.source is LimitSource.LEARNED and limit is not None:
            self.limit, self.window = limit, window  # no headers: every run paces by the latest lesson
        elif (
            theirs is LimitSource.HEADERS
            and window is not None
            and self.window is not None
            and window > self.window
        ):
            self.window = window
        if strict and not self.strict:
            self._turn_strict(now)

    def granted_at(self, call_id: int) -> float | None:
        call = self.calls.get(call_id)
        return call.granted_at if call is not None else None

    def hold_shared_for_window(self) -> None:
        """Other runs' calls, under a limit this run learned or was told without headers,
        count for the whole window after they were sent, as the provider counts them. The
        ledger has their grant, not their send, which under load can be hundreds of ms later
        (the real benchmark: a refusal 4 ms before another run's call left the window). A slot
        let go less than a window after its grant was let go at its answer, by a run that knew
        no limit yet: it counts a window from that answer, which came after the send."""
        window = self.window
        if window is not None and self.source in (LimitSource.LEARNED, LimitSource.DECLARED):
            self.shared = [(g, t if t >= g + window else t + window + self.margin) for g, t in self.shared]

    def model(self) -> tuple[int | None, float | None, str, bool]:
        """What this run knows of the key, for the ledger."""
        return self.limit, self.window, self.source.value, self.strict

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)

    # -- internals -------------------------------------------------------------------
    def _expiry(self, now: float, sent: float | None, granted_at: float) -> float:
        if self.source is LimitSource.UNKNOWN or self.window is None:
            return now
        if self.source is LimitSource.HEADERS:
            return now + self.window + self.margin  # no reset for this call (or strict): the longest seen
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
        # The provider counts this call for a whole window after it admitted it, whatever its
        # `reset` means: until the window is whole (then reset is that window for the newest
        # call), until the next slot frees (the oldest call's exit: too early for this one), or
        # the end of a fixed window (shorter; `remaining` then frees the slots, below).
        call.expires_at = ref + self.window + self.margin
        # What the provider counted when it admitted this call, against what we had sent by
        # then: every call granted before it was sent (give or take REORDER_S: two requests
        # may reach the provider in the other order), or before its answer if that is unknown.
        admitted_by = min(now, sent + REORDER_S) if sent is not None else now
        ours = call.held_before + sum(1 for t in self.grants if call.granted_at < t <= admitted_by)
        ours += sum(1 for t, _ in self.shared if call.granted_at < t <= admitted_by)  # other runs
        counted = budget.limit - budget.remaining - (0 if refused else 1)
        foreign = counted - ours
        if foreign > 0:  # someone else spends this key too: hold their slots until this reset
            self.held.extend([now + reset + self.margin] * min(foreign, budget.limit))
        if not refused and sent is not None and not self.strict:  # strict: its numbers proved wrong
            self._release_counted(sent, counted, now)

    def _release_counted(self, sent: float, counted: int, now: float) -> None:
        """`remaining` is the truth at that moment. Our answered calls sent well before this one
        (by REORDER_S) were surely admitted before it: if the provider counted fewer calls than
        that, it has let some go (a fixed window turned over) and so do we, the oldest first."""
        sure = [
            c
            for c in self.calls.values()
            if c.sent_at is not None
            and c.sent_at <= sent - REORDER_S
            and c.expires_at is not None
            and c.expires_at > now
        ]
        excess = len(sure) - counted
        for c in sorted(sure, key=lambda c: c.sent_at or 0.0)[: max(excess, 0)]:
            c.expires_at = now

    def _rate_limited(self, call: _Call, now: float, retry_after: float | None) -> None:
        self.refused += 1
        self.ok_since_429 = 0
        self.concurrency = max(1.0, self.concurrency / 2)
        if retry_after is not None:
            self.block(now + retry_after)
        call.expires_at = max(now, self.blocked_until)  # a refused call is not counted
        if self.source is LimitSource.HEADERS and call.paced:
            # The budget said yes and the provider said no: the model is wrong. From now on a
            # slot is held a whole window, counted from the answer; the window is at least what
            # this refusal says of the oldest call the provider still counts.
            self._stretch_window(call, now, retry_after)
            self._turn_strict(now)

    def _turn_strict(self, now: float) -> None:
        """From now on every slot is held a whole window after its answer, and so are the
        slots of calls answered before: they were let go too early."""
        self.after_response = self.strict = True
        if self.window is None:
            return
        for c in self.calls.values():
            if c.expires_at is not None and c.done_at is not None:
                c.expires_at = max(c.expires_at, c.done_at + self.window + self.margin)

    def _stretch_window(self, call: _Call, now: float, retry_after: float | None) -> None:
        if retry_after is None or self.limit is None:
            return
        refused_at = call.granted_at
        sends = sorted(
            [t for t in self.sends if t < refused_at]
            + [c.granted_at for c in self.calls.values() if c is not call and c.granted_at < refused_at]
            + [t for t, _ in self.shared if t < refused_at]
        )
        if len(sends) >= self.limit:
            oldest_counted = sends[-self.limit]
            self.window = min(MAX_WINDOW_S, max(self.window or 0.0, now + retry_after - oldest_counted))

    def _learn(self, call: _Call, now: float, sent: float | None, retry_after: float | None) -> None:
        """A 429 without rate-limit headers: learn the key's limit and window from it, then
        hold a slot for each recent send under what was learned."""
        if retry_after is None:
            return
        refused_at = sent if sent is not None else call.granted_at
        in_flight = [c.granted_at for c in self.calls.values() if c.expires_at is None and c is not call]
        theirs = [g for g, _ in self.shared]  # other runs' calls on the key count against the same limit
        times = sorted(t for t in [*self.sends, *in_flight, *theirs] if t < refused_at)
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
        self.shared = [(g, t) for g, t in self.shared if t > now]


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
