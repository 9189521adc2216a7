"""A loopback OpenAI-compatible server that enforces a per-key sliding-window rate limit.

Each key may make `limit` requests in any `window` seconds. A request is counted when it
is admitted; a refused one is not. Every answer carries OpenAI's `x-ratelimit-*` headers,
computed at admission as real providers do (`headers=False` turns them off), and every 429
carries a retry hint: `retry-after-ms` and `retry-after`, the time until the oldest request
in the window leaves it. With `headers=False` the server behaves like Gemini: nothing tells
the client its budget except a 429's retry delay. Answers come after `latency` seconds.

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
    ) -> None:
        self.limit = limit
        self.window = window
        self.latency = latency
        self.headers = headers
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
    def admit(self, key: str, tokens: int) -> tuple[bool, dict[str, str]]:
        """Count the request if the key's window has room; the headers to answer with."""
        with self.lock:
            now = self.clock()
            state = self.keys.setdefault(key, _KeyWindow())
            while state.arrivals and state.arrivals[0] <= now - self.window:
                state.arrivals.popleft()
            while state.tokens and state.tokens[0][0] <= now - self.window:
                state.tokens.popleft()
            accepted = len(state.arrivals) < self.limit
            if accepted:
                state.arrivals.append(now)
                state.tokens.append((now, tokens))
            self.log.append(Admission(key, now, accepted))
            headers: dict[str, str] = {}
            if not accepted:
                wait = max(0.0, state.arrivals[0] + self.window - now)
                headers["retry-after-ms"] = str(math.ceil(wait * 1000))
                headers["retry-after"] = str(math.ceil(wait))
            if self.headers:
                used_tokens = sum(n for _, n in state.tokens)
                full_in = state.arrivals[-1] + self.window - now if state.arrivals else 0.0
                tokens_in = state.tokens[-1][0] + self.window - now if state.tokens else 0.0
                headers.update(
                    {
                        "x-ratelimit-limit-requests": str(self.limit),
                        "x-ratelimit-remaining-requests": str(self.limit - len(state.arrivals)),
                        "x-ratelimit-reset-requests": go_duration(full_in),
                        "x-ratelimit-limit-tokens": str(TOKEN_LIMIT),
                        "x-ratelimit-remaining-tokens": str(max(0, TOKEN_LIMIT - used_tokens)),
                        "x-ratelimit-reset-tokens": go_duration(tokens_in),
                    }
                )
            return accepted, headers

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
