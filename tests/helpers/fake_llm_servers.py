"""Loopback HTTP servers that speak the Gemini, Anthropic and OpenAI wire formats.

Behaviour is chosen by the API key the client sends: a key containing `ratelimit`
answers 429 with the provider's retry hint, `daily` a per-day quota 429 (Gemini),
`invalid` a 401; any other key succeeds. A prompt holding `agentos-test-500` gets a 500;
with `echo_key`, one holding `agentos-test-echo` gets its key back in the answer.
With `echo_key=True` every error body echoes the key, as OpenAI's 401 does
("Incorrect API key provided: sk-..."). `retry_after` may be any text (`inf`, `1e18`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers.loopback import LoopbackServer


class FakeLLMServer(LoopbackServer):
    def __init__(self, kind: str, retry_after: float | str = 1.0, echo_key: bool = False) -> None:
        self.kind = kind
        self.retry_after = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        self.echo_key = echo_key
        self.calls: Counter[str] = Counter()  # by key
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.handle(self, body)

        super().__init__(Handler)

    def _key(self, handler: BaseHTTPRequestHandler) -> str:
        h = handler.headers
        if self.kind == "gemini":
            return h.get("x-goog-api-key", "")
        if self.kind == "anthropic" and h.get("x-api-key"):
            return h.get("x-api-key", "")
        return h.get("authorization", "").removeprefix("Bearer ")

    _send = staticmethod(LoopbackServer.send_json)

    def handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        key = self._key(handler)
        with self.lock:
            self.calls[key] += 1
        prompt = json.dumps(body)
        if "invalid" in key:
            return self._error(handler, 401, key=key)
        if "ratelimit" in key:
            return self._error(handler, 429, key=key)
        if "daily" in key and self.kind == "gemini":
            return self._error(handler, 429, daily=True, key=key)
        if "agentos-test-500" in prompt:
            return self._error(handler, 500, key=key)
        review = "strict design reviewer" in prompt or "strict reviewer" in prompt
        text = (
            "VERDICT: APPROVED\nBLOCKING:\nNON-BLOCKING:\n- fine\n"
            if review
            else "# Draft\n\n## Context\n\nA design written by the loopback server.\n"
        )
        if self.echo_key and "agentos-test-echo" in prompt:
            text += f"\nThe key you sent: {key}\n"
        self._send(handler, 200, self._success(text, body))

    def _success(self, text: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.kind == "gemini":
            return {
                "candidates": [
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12},
                "modelVersion": "gemini-test",
            }
        if self.kind == "anthropic":
            return {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", "claude"),
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 7},
            }
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model", "gpt"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }

    def _error(self, handler: BaseHTTPRequestHandler, code: int, daily: bool = False, key: str = "") -> None:
        echo = f" (Incorrect API key provided: {key})" if self.echo_key else ""
        if self.kind == "gemini":
            status = {401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}[code]
            details: list[dict[str, Any]] = []
            if code == 429:
                quota_id = (
                    "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
                    if daily
                    else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
                )
                details = [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {
                                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                "quotaId": quota_id,
                            }
                        ],
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{self.retry_after}s",
                    },
                ]
            payload = {
                "error": {
                    "code": code,
                    "message": ("quota exceeded" if code == 429 else "bad key") + echo,
                    "status": status,
                    "details": details,
                }
            }
            return self._send(handler, code, payload)
        headers = {"retry-after": self.retry_after} if code == 429 else {}
        if self.kind == "anthropic":
            etype = {429: "rate_limit_error", 500: "api_error"}.get(code, "authentication_error")
            return self._send(
                handler, code, {"type": "error", "error": {"type": etype, "message": "nope" + echo}}, headers
            )
        ecode = {429: "rate_limit_exceeded", 500: "server_error"}.get(code, "invalid_api_key")
        return self._send(
            handler, code, {"error": {"message": "nope" + echo, "type": "requests", "code": ecode}}, headers
        )
