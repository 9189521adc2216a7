"""A loopback OpenAI-compatible server that enforces a per-key rate limit.

Each key may make `limit` requests in any `window` seconds. A request is counted when it
is admitted; a refused one is not. Answers come after `latency` seconds.

`reset` picks how the limit is counted and what `x-ratelimit-reset-requests` means, since
providers and gateways differ:

- `whole` (the default; OpenAI's documented meaning): a sliding window, and reset is the time
  until the window is whole again: until every call it counts has left it (the newest
  counted call's admission + `window`; 0 when none is counted).
- `next-slot` (as some gateways send): a sliding window, and reset is the time until the next
  slot frees: until the oldest counted call leaves the window (0 when none is counted).
- `fixed`: fixed windows aligned on multiples of `window` on the server's clock; a key's calls
  are counted per fixed window, and reset is the time until the current one ends.
- `none` (as Gemini): a sliding window and no `x-ratelimit-*` header at all; nothing tells
  the client its budget except a 429's retry delay. `headers=False` is the same as `none`.

With headers, `x-ratelimit-limit-requests` is the limit, and `x-ratelimit-remaining-requests`
and the resets are true at the moment the server decides the answer, when it admits or
refuses the call, as real providers compute them (a served call's answer then arrives
`latency` later). `numbers_at="answer"` computes a served call's numbers when its answer is
sent instead (calls admitted or expired meanwhile are then counted as they are at that
moment). The token headers follow the same meaning. Every 429 carries a retry hint,
`retry-after-ms` and `retry-after`: the time until the key has room again (the oldest call
in a sliding window leaves it; a fixed window ends).

It records every admission, so a benchmark or a test can count what was served and what
was refused, per key and per window, from the server's side. A prompt holding
`agentos-test-500` gets a 500 on its review (after admission): an item that fails after its
draft, so its checkpoint is kept.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from benchmarks.loopback import LoopbackServer

TOKEN_LIMIT = 1_000_000
FAIL_MARKER = "agentos-test-500"
MAX_BODY = 4 << 20
RESETS = ("whole", "next-slot", "fixed", "none")  # what x-ratelimit-reset-requests means


@dataclass
class Admission:
    key: str
    at: float  # time.monotonic() at admission
    accepted: bool


@dataclass
class _KeyWindow:
    arrivals: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)


def go_duration(seconds: float) -> str:
    """`6m0.5s`, `9.512s`, `20ms`: the format of OpenAI's `x-ratelimit-reset-*` headers."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60.0)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class RateLimitedServer(LoopbackServer):
    def __init__(
        self,
        limit: int = 4,
        window: float = 10.0,
        latency: float = 0.5,
        headers: bool = True,
        clock: Any = time.monotonic,
        reset: str = "whole",
        numbers_at: str = "admission",
    ) -> None:
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {', '.join(RESETS)}, not {reset!r}")
        if numbers_at not in ("admission", "answer"):
            raise ValueError(f"numbers_at must be admission or answer, not {numbers_at!r}")
        self.numbers_at = numbers_at
        self.limit = limit
        self.window = window
        self.latency = latency
        self.reset = reset if headers else "none"
        self.headers = self.reset != "none"
        self.clock = clock
        self.lock = threading.Lock()
        self.keys: dict[str, _KeyWindow] = {}
        self.log: list[Admission] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length", 0) or 0), MAX_BODY)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                server.handle(self, body if isinstance(body, dict) else {}, len(raw))

        super().__init__(Handler)

    # -- what happened -------------------------------------------------------------------
    def served(self, key: str | None = None) -> int:
        with self.lock:
            return sum(1 for a in self.log if a.accepted and key in (None, a.key))

    def refused(self, key: str | None = None) -> int:
        with self.lock:
            return sum(1 for a in self.log if not a.accepted and key in (None, a.key))

    def admissions(self) -> list[Admission]:
        with self.lock:
            return list(self.log)

    def max_refused_per_window(self) -> int:
        """The most 429s any one key got within any `window` seconds."""
        worst = 0
        by_key: dict[str, list[float]] = {}
        for a in self.admissions():
            if not a.accepted:
                by_key.setdefault(a.key, []).append(a.at)
        for times in by_key.values():
            start = 0
            for end, at in enumerate(times):
                while at - times[start] >= self.window:
                    start += 1
                worst = max(worst, end - start + 1)
        return worst

    # -- the rate limit ---------------------------------------------------------------
    def _window_start(self, now: float) -> float:
        """The oldest instant a counted call may have been admitted at, seen at `now`."""
        if self.reset == "fixed":
            return math.floor(now / self.window) * self.window
        return now - self.window

    def _expire(self, state: _KeyWindow, now: float) -> None:
        start = self._window_start(now)
        if self.reset == "fixed":  # a call at the window's first instant counts in it
            while state.arrivals and state.arrivals[0] < start:
                state.arrivals.popleft()
            while state.tokens and state.tokens[0][0] < start:
                state.tokens.popleft()
            return
        while state.arrivals and state.arrivals[0] <= start:
            state.arrivals.popleft()
        while state.tokens and state.tokens[0][0] <= start:
            state.tokens.popleft()

    def _reset_in(self, admitted: list[float], now: float) -> float:
        """What `x-ratelimit-reset-*` says at `now`, given the counted calls' admissions."""
        if self.reset == "fixed":
            return self._window_start(now) + self.window - now
        if not admitted:
            return 0.0
        counted = admitted[-1] if self.reset == "whole" else admitted[0]
        return max(0.0, counted + self.window - now)

    def _rate_headers(self, state: _KeyWindow, now: float) -> dict[str, str]:
        """The `x-ratelimit-*` headers, true at `now` (call with the lock held, after _expire)."""
        if not self.headers:
            return {}
        used_tokens = sum(n for _, n in state.tokens)
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(max(0, self.limit - len(state.arrivals))),
            "x-ratelimit-reset-requests": go_duration(self._reset_in(list(state.arrivals), now)),
            "x-ratelimit-limit-tokens": str(TOKEN_LIMIT),
            "x-ratelimit-remaining-tokens": str(max(0, TOKEN_LIMIT - used_tokens)),
            "x-ratelimit-reset-tokens": go_duration(self._reset_in([t for t, _ in state.tokens], now)),
        }

    def admit(self, key: str, tokens: int) -> tuple[bool, dict[str, str]]:
        """Count the request if the key's window has room; the headers to answer with now."""
        with self.lock:
            now = self.clock()
            state = self.keys.setdefault(key, _KeyWindow())
            self._expire(state, now)
            accepted = len(state.arrivals) < self.limit
            if accepted:
                state.arrivals.append(now)
                state.tokens.append((now, tokens))
            self.log.append(Admission(key, now, accepted))
            headers: dict[str, str] = {}
            if not accepted:
                if self.reset == "fixed":
                    wait = self._window_start(now) + self.window - now
                else:
                    wait = max(0.0, state.arrivals[0] + self.window - now) if state.arrivals else 0.0
                headers["retry-after-ms"] = str(math.ceil(wait * 1000))
                headers["retry-after"] = str(math.ceil(wait))
            headers.update(self._rate_headers(state, now))
            return accepted, headers

    def answer_headers(self, key: str) -> dict[str, str]:
        """The `x-ratelimit-*` headers for a served call's answer, true now."""
        with self.lock:
            now = self.clock()
            state = self.keys.setdefault(key, _KeyWindow())
            self._expire(state, now)
            return self._rate_headers(state, now)

    def handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], size: int) -> None:
        key = handler.headers.get("authorization", "").removeprefix("Bearer ")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        tokens = size // 4 + (max_tokens if isinstance(max_tokens, int) else 0)
        accepted, headers = self.admit(key, tokens)
        if not accepted:
            error = {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
            return self.send_json(handler, 429, {"error": error}, headers)
        time.sleep(self.latency)
        if self.numbers_at == "answer":
            headers = self.answer_headers(key)
        prompt = json.dumps(body)
        review = "strict design reviewer" in prompt or "strict reviewer" in prompt
        if review and FAIL_MARKER in prompt:  # a test's way to fail an item after its draft
            failure = {"error": {"message": "server error", "type": "server_error"}}
            return self.send_json(handler, 500, failure, headers)
        text = (
            "VERDICT: APPROVED\nBLOCKING:\nNON-BLOCKING:\n- fine\n"
            if review
            else "# Draft\n\n## Context\n\nA design written by the rate-limited loopback server.\n"
        )
        answer = {
            "id": "chatcmpl-rl",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model", "gpt"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": size // 4, "completion_tokens": 20, "total_tokens": size // 4 + 20},
        }
        self.send_json(handler, 200, answer, headers)
