"""Loopback HTTP servers that speak the Gemini, Anthropic and OpenAI wire formats.

Behaviour is chosen by the API key the client sends: a key containing `ratelimit`
answers 429 with the provider's retry hint, `daily` a per-day quota 429 (Gemini),
`invalid` a 401; any other key succeeds. A prompt holding `agentos-test-500` gets a 500;
with `echo_key`, one holding `agentos-test-echo` gets its key back in the answer (in
`echo_form`), and a review whose prompt holds `agentos-test-review-400` a 400 that echoes it.
Structured output: the server finds the schema parameter in the provider's own format
(OpenAI `response_format`, Anthropic `output_config.format`, Gemini `generationConfig`
`responseMimeType` + `responseSchema`), records it in `schemas` (None when absent), and
answers a review in that schema; with `reject_structured`, it answers such a request with
the provider's 400 "not supported" error instead. `usage` replaces the usage numbers sent; `verdict` sets what a review answers.
With `echo_key=True` every error body echoes the key, as OpenAI's 401 does
("Incorrect API key provided: sk-..."). `retry_after` may be any text (`inf`, `1e18`).

`faults` is a queue of misbehaviours, one taken per request before anything else (an
empty queue: behave): an HTTP status as text (`"502"`, `"404"`) with an error body whose
message has two lines; `"reset"` (close without answering); `"trickle"` (a valid answer
sent one byte every `trickle_s`); `"huge"` (a valid 20 MB answer); `"badjson"`,
`"nested"` (100,000 nested lists) and `"wrongtype"` (the answer's main field is `5`).
`fault` applies one of them to every request.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from benchmarks.loopback import LoopbackServer

ECHO_FORMS = {
    "url": lambda k: urllib.parse.quote(k, safe=""),
    "url-path": urllib.parse.quote,  # `/` kept, as most URL encoders do
    "url-lowerhex": lambda k: re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), urllib.parse.quote(k, safe="")),
    "json-slash": lambda k: k.replace("/", "\\/"),  # PHP's json_encode
    "upper": str.upper,
    "lower": str.lower,
    "hex": lambda k: k.encode().hex(),
}


def echo(key: str, form: str) -> str:
    """The key as a hostile server may echo it: as is, in one of ECHO_FORMS, or inside
    base64 at each byte offset (`b64-0`, `b64-1`, `b64-2`)."""
    if form in ECHO_FORMS:
        return str(ECHO_FORMS[form](key))
    if form.startswith("b64-"):
        return base64.b64encode(b"k" * int(form[-1]) + key.encode()).decode()
    return key


class FakeLLMServer(LoopbackServer):
    def __init__(
        self,
        kind: str,
        retry_after: float | str = 1.0,
        echo_key: bool = False,
        reject_structured: bool = False,
        usage: tuple[Any, Any] | None = None,
        verdict: tuple[str, list[str]] = ("APPROVED", []),
        faults: list[str] | None = None,
        fault: str | None = None,
        trickle_s: float = 1.0,
        echo_form: str = "plain",
    ) -> None:
        self.echo_form = echo_form
        self.faults = list(faults or [])
        self.fault = fault
        self.trickle_s = trickle_s
        self.kind = kind
        self.verdict = verdict  # what a review answers: the verdict and its blocking points
        self.reject_structured = reject_structured
        self.usage = usage
        self.schemas: list[Any] = []  # per request: the schema parameter found, or None
        self.requests: list[dict[str, Any]] = []  # every request body, as sent
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
            fault = self.faults.pop(0) if self.faults else self.fault
        if fault is not None:
            return self._misbehave(handler, fault, body)
        prompt = json.dumps(body)
        if "invalid" in key:
            return self._error(handler, 401, key=key)
        if "ratelimit" in key:
            return self._error(handler, 429, key=key)
        if "daily" in key and self.kind == "gemini":
            return self._error(handler, 429, daily=True, key=key)
        if "agentos-test-500" in prompt:
            return self._error(handler, 500, key=key)
        schema = self.schema_in(body)
        with self.lock:
            self.schemas.append(schema)
            self.requests.append(body)
        if schema is not None and self.reject_structured:
            return self._error(handler, 400, key=key, unsupported=True)
        review = "strict design reviewer" in prompt or "strict reviewer" in prompt
        if review and "agentos-test-review-400" in prompt:  # fails the item after its draft
            message = f"review refused for key {echo(key, self.echo_form) if self.echo_key else 'x'}"
            return self._send(handler, 400, {"error": {"message": message, "code": 400}})
        verdict, blocking = self.verdict
        if review and schema is not None:
            text = json.dumps({"verdict": verdict, "blocking": blocking, "non_blocking": ["fine"]})
        elif review:
            points = "".join(f"- {p}\n" for p in blocking)
            text = f"VERDICT: {verdict}\nBLOCKING:\n{points}NON-BLOCKING:\n- fine\n"
        else:
            text = "# Draft\n\n## Context\n\nA design written by the loopback server.\n"
        if self.echo_key and "agentos-test-echo" in prompt:
            text += f"\nThe key you sent: {echo(key, self.echo_form)}\n"
        self._send(handler, 200, self._success(text, body))

    def _misbehave(self, handler: BaseHTTPRequestHandler, fault: str, body: dict[str, Any]) -> None:
        if fault.isdigit():
            message = f"upstream said {fault}\nsecond line of the body"
            return self._send(handler, int(fault), {"error": {"message": message, "code": int(fault)}})
        if fault == "reset":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault == "huge":
            return self._send(handler, 200, self._success("x" * 20_000_000, body))
        raw = {
            "badjson": b'{"choices": [ not json',
            "nested": b"[" * 100_000 + b"]" * 100_000,
            "wrongtype": json.dumps(
                {"gemini": {"candidates": 5}, "anthropic": {"content": 5}}.get(
                    self.kind, {"choices": 5, "id": "x", "object": "chat.completion"}
                )
            ).encode(),
            "trickle": json.dumps(self._success("# Draft\n\nslow", body)).encode(),
        }[fault]
        try:
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(raw)))
            handler.end_headers()
            if fault != "trickle":
                handler.wfile.write(raw)
                return None
            for byte in raw:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(self.trickle_s)
        except OSError:
            pass  # the client gave up
        return None

    def schema_in(self, body: dict[str, Any]) -> Any:
        """The JSON schema this request asks for, in this provider's wire format, or None."""
        if self.kind == "openai":
            fmt = body.get("response_format") or {}
            if fmt.get("type") == "json_schema" and fmt.get("json_schema", {}).get("name"):
                return fmt["json_schema"].get("schema")
            return None
        if self.kind == "anthropic":
            fmt = (body.get("output_config") or {}).get("format") or {}
            return fmt.get("schema") if fmt.get("type") == "json_schema" else None
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":
            return config.get("responseSchema") or config.get("responseJsonSchema")
        return None

    def _success(self, text: str, body: dict[str, Any]) -> dict[str, Any]:
        tokens_in, tokens_out = self.usage or (5, 7)
        if self.kind == "gemini":
            return {
                "candidates": [
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {"promptTokenCount": tokens_in, "candidatesTokenCount": tokens_out},
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
                "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
            }
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model", "gpt"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out},
        }

    def _error(
        self,
        handler: BaseHTTPRequestHandler,
        code: int,
        daily: bool = False,
        key: str = "",
        unsupported: bool = False,
    ) -> None:
        echo = f" (Incorrect API key provided: {key})" if self.echo_key else ""
        if unsupported:
            return self._unsupported(handler)
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

    def _unsupported(self, handler: BaseHTTPRequestHandler) -> None:
        """Each provider's 400 for a model that cannot answer in a JSON schema."""
        if self.kind == "gemini":
            message = "JSON mode is not enabled for this model: response_schema is not supported"
            payload: dict[str, Any] = {
                "error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
            }
        elif self.kind == "anthropic":
            message = "output_config.format: structured outputs are not supported for this model"
            payload = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        else:
            message = (
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."
            )
            payload = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        return self._send(handler, 400, payload)
