"""The OFFLINE MOCK provider: deterministic, no network. For the demo, tests and benchmarks.

It is labelled as a mock everywhere it appears. Its drafts are built from the item text,
and its reviewer can be scripted from the item text with a directive such as
``<!-- mock-review: revisions=2 -->`` (REVISE twice, then APPROVED),
``<!-- mock-review: never-approve -->`` or ``<!-- mock-review: garbage-first -->``
(an unparseable first answer, to show strict verdict parsing).

Asked for a JSON schema (structured output), its reviewer answers in the schema, as a
grammar-constrained real model would; a model name containing `no-structured-output`
(`mock:no-structured-output`) rejects such requests instead, to show the text fallback.
It has no tokenizer: its token counts are estimates, labelled as such.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from agentos.core import environment
from agentos.core.paths import agentos_home, sanitize_identifier
from agentos.core.retry_hints import clamp_retry_after, parse_seconds
from agentos.llm.base import Completion, CompletionRequest
from agentos.llm.errors import AuthError, QuotaExhausted, RateLimited
from agentos.llm.structured import StructuredOutputUnsupported
from agentos.llm.usage import Usage

MOCK_LABEL = "OFFLINE MOCK"
DEFAULT_LATENCY = 0.05
_DIRECTIVE = re.compile(r"mock-review:\s*([a-z-]+)(?:=(\d+))?", re.IGNORECASE)


def mock_latency() -> float:
    raw = environment.MOCK_LATENCY.get_stripped()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_LATENCY
    except ValueError:
        return DEFAULT_LATENCY


def simulate_429_enabled() -> bool:
    return environment.SIMULATE_429.get_stripped().lower() in {"1", "true", "yes"}


def simulated_retry_after() -> float | None:
    """The simulated server's retry hint: as untrusted as a real one, so clamped the same way."""
    return clamp_retry_after(parse_seconds(environment.SIMULATE_429_RETRY.get() or "2"))


def _first_use_of_key(key_name: str) -> bool:
    """True exactly once per key per run, across processes (O_EXCL marker file)."""
    state = Path(environment.MOCK_STATE_DIR.get() or agentos_home() / "mock-state")
    state.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(state / f"429-{sanitize_identifier(key_name)}", os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    os.close(fd)
    return True


class MockProvider:
    """Offline mock of an LLM. `secret` is a fake key; values starting with `invalid`
    answer like a rejected key and values containing `quota` like an exhausted quota."""

    name = "mock"

    def __init__(
        self, model: str = "mock-offline", *, key_name: str | None = None, secret: str | None = None
    ) -> None:
        self.model = model
        self.key_name = key_name
        self._secret = secret or ""

    def complete(self, request: CompletionRequest) -> Completion:
        if self._secret.startswith("invalid"):
            raise AuthError("mock: key rejected (401)", key_name=self.key_name)
        if "quota" in self._secret:
            raise QuotaExhausted(time.time() + 3600, key_name=self.key_name)
        if simulate_429_enabled() and _first_use_of_key(self.key_name or "no-key"):
            raise RateLimited(
                simulated_retry_after(),
                key_name=self.key_name,
                message="mock: simulated HTTP 429 (AGENTOS_SIMULATE_429)",
            )
        if request.schema is not None and "no-structured-output" in self.model:
            raise StructuredOutputUnsupported(
                f"mock: HTTP 400: response_format json_schema is not supported by model {self.model}",
                key_name=self.key_name,
            )
        time.sleep(mock_latency())
        if request.purpose == "review":
            text = _review(request, structured=request.schema is not None)
        else:
            text = _draft(request)
        usage = Usage.estimate(request.system + request.prompt, text)
        return Completion(text=text, provider=self.name, model=self.model, usage=usage)


def _strip_comments(text: str) -> str:
    """Drop `<!-- ... -->` comments in linear time (a lazy regex is quadratic on `<!--<!--...`)."""
    out: list[str] = []
    pos = 0
    while (start := text.find("<!--", pos)) != -1:
        end = text.find("-->", start + 4)
        if end == -1:
            break
        out.append(text[pos:start])
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def _sentences(body: str) -> list[str]:
    text = _strip_comments(body)
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    cleaned = [p.strip(" -*#\t") for p in parts]
    return [p for p in cleaned if len(p) > 3]


def _draft(request: CompletionRequest) -> str:
    ctx = request.context
    title = ctx.get("title", "Untitled").strip()
    sentences = _sentences(ctx.get("body", "")) or [f"Deliver {title}."]
    headings = re.findall(r"^##\s+(.+)$", ctx.get("template", ""), flags=re.MULTILINE)
    headings = headings or ["Context", "Design", "Testing"]
    out = [
        f"# {title}",
        "",
        f"_Drafted by the {MOCK_LABEL} provider (no real LLM), round {request.round}._",
        "",
    ]
    for i, heading in enumerate(headings):
        fact = sentences[i % len(sentences)]
        out += [
            f"## {heading}",
            "",
            f"{fact} This section covers {heading.lower()} for {title}.",
            "",
        ]
    feedback = [line.strip("- ").strip() for line in ctx.get("feedback", "").splitlines()]
    feedback = [f for f in feedback if f]
    if feedback:
        out += ["## Revision notes", ""]
        out += [f"- Addressed: {point}" for point in feedback]
        out.append("")
    return "\n".join(out)


def _review(request: CompletionRequest, structured: bool = False) -> str:
    ctx = request.context
    title = ctx.get("title", "the item").strip()
    match = _DIRECTIVE.search(ctx.get("item_text", ""))
    mode, count = (match.group(1).lower(), int(match.group(2) or 0)) if match else ("", 0)
    if mode == "garbage-first" and request.round == 1:
        return "Looks fine to me, ship it!"  # deliberately in no format, not even the schema
    approve = mode != "never-approve" and not (mode == "revisions" and request.round <= count)
    if approve:
        blocking: list[str] = []
        non_blocking = [f"({MOCK_LABEL}) Consider a short glossary for {title}."]
    else:
        blocking = [
            f"({MOCK_LABEL}) Round {request.round}: the error-handling section of "
            f"'{title}' must name each failure mode and its recovery.",
            f"({MOCK_LABEL}) Round {request.round}: the test plan must cover the edge cases.",
        ]
        non_blocking = ["Tighten the wording of the context section."]
    verdict = "APPROVED" if approve else "REVISE"
    if structured:
        return json.dumps({"verdict": verdict, "blocking": blocking, "non_blocking": non_blocking})
    lines = [f"VERDICT: {verdict}", "BLOCKING:", *[f"- {p}" for p in blocking], "NON-BLOCKING:"]
    return "\n".join([*lines, *[f"- {p}" for p in non_blocking]]) + "\n"
