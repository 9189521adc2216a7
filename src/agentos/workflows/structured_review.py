"""Ask the reviewer for a typed verdict through native structured output; fall back once.

With structured output on (the default), the reviewer is asked for `ReviewAnswer` in its
provider's native format. A provider or model that rejects the request itself
(`StructuredOutputUnsupported`) gets the same round again in the strict text protocol;
the audit says so, and the fallback is remembered for the rest of the run: by this
process, and by the other workers of a batch through a marker file in the run folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from agentos.core import environment
from agentos.core.events import EventType
from agentos.core.paths import sanitize_identifier
from agentos.llm.base import CompletionRequest, Provider
from agentos.llm.structured import (
    REVIEW_SCHEMA,
    AnswerNotInSchema,
    StructuredOutputUnsupported,
    parse_review_answer,
)
from agentos.workflows.context import RunContext
from agentos.workflows.verdict import (
    APPROVED_WITH_BLOCKING,
    ReviewResult,
    Verdict,
    is_none_point,
    parse_verdict,
)

FALLBACK_DIR = ".structured-fallback"

TEXT_FORMAT = """Answer in exactly this format and nothing else:

VERDICT: APPROVED or VERDICT: REVISE
BLOCKING:
- one line per point that must be fixed $before (none when APPROVED)
NON-BLOCKING:
- one line per optional suggestion"""

JSON_FORMAT = """Answer with one JSON object and nothing else:
{"verdict": "APPROVED" or "REVISE",
 "blocking": [one string per point that must be fixed $before; empty when APPROVED],
 "non_blocking": [one string per optional suggestion]}"""


BEFORE = {"lld": "before approval", "issue": "before the issue is filed"}


def answer_format(fmt: str, kind: str) -> str:
    """TEXT_FORMAT or JSON_FORMAT worded for the workflow (`lld`, `issue`)."""
    return fmt.replace("$before", BEFORE.get(kind, "before approval"))


class ReviewFormat(StrEnum):
    STRUCTURED = "structured"  # the provider's native structured output
    TEXT = "text"  # the text protocol, as asked (--no-structured-output)
    FALLBACK = "text-fallback"  # the text protocol, after the provider rejected the schema


@dataclass(frozen=True)
class Review:
    result: ReviewResult
    answer: str  # the reviewer's raw answer, for the lineage
    format: ReviewFormat
    schema_valid: bool | None = None  # structured: did the answer match the schema


_remembered: set[str] = set()
_lock = threading.Lock()


def marker_name(provider: str, model: str) -> str:
    """A file name for any `provider:model`: model names hold dots, slashes, colons
    (`qwen2.5-coder-1.5b`, `models/gemini-2.5-pro`); a short hash keeps them apart."""
    label = f"{provider}:{model}"
    readable = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in label[:100])
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return sanitize_identifier(f"{readable}-{digest}")


def _marker(provider: Provider) -> Path | None:
    run_dir = environment.RUN_DIR.get()
    if not run_dir:
        return None
    return Path(run_dir) / FALLBACK_DIR / marker_name(provider.name, provider.model)


def fallen_back(provider: Provider) -> bool:
    """Has this run already found that `provider` rejects structured output?"""
    key = f"{provider.name}:{provider.model}"
    with _lock:
        if key in _remembered:
            return True
    marker = _marker(provider)
    return marker is not None and marker.exists()


def remember_fallback(provider: Provider) -> None:
    with _lock:
        _remembered.add(f"{provider.name}:{provider.model}")
    marker = _marker(provider)
    if marker is not None:
        with contextlib.suppress(OSError):  # the worst case: another worker asks once more
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()


def from_answer(answer: str) -> tuple[ReviewResult, bool]:
    """A structured answer as a ReviewResult, and whether it matched the schema.

    An answer that is not the schema is tried as the text protocol (a provider that
    ignored the request); if that fails too, it counts as REVISE with why.
    """
    try:
        typed = parse_review_answer(answer)
    except AnswerNotInSchema as exc:
        as_text = parse_verdict(answer)
        if as_text.parse_error is None:
            return as_text, False
        why = f"answer not in the verdict schema: {exc.reason}"
        return ReviewResult(
            Verdict.REVISE, [f"The review could not be parsed ({why}); review again."], [], why
        ), False
    blocking = [p.strip() for p in typed.blocking if not is_none_point(p)]
    non_blocking = [p.strip() for p in typed.non_blocking if not is_none_point(p)]
    if typed.verdict == Verdict.APPROVED.value and blocking:
        return ReviewResult(Verdict.REVISE, blocking, non_blocking, note=APPROVED_WITH_BLOCKING), True
    return ReviewResult(Verdict(typed.verdict), blocking, non_blocking), True


def review(ctx: RunContext, request: CompletionRequest, prompt_for: Callable[[str], str]) -> Review:
    """One review round. `prompt_for(answer_format)` renders the reviewer's prompt."""
    provider = ctx.reviewer
    if not ctx.structured_output:
        return _text(ctx, request, prompt_for, ReviewFormat.TEXT)
    if fallen_back(provider):
        return _text(ctx, request, prompt_for, ReviewFormat.FALLBACK)
    structured = dataclasses.replace(request, prompt=prompt_for(JSON_FORMAT), schema=REVIEW_SCHEMA)
    try:
        answer = ctx.call_llm("reviewer", structured).text
    except StructuredOutputUnsupported as exc:
        remember_fallback(provider)
        ctx.events.emit(
            EventType.STRUCTURED_OUTPUT_FALLBACK,
            provider=provider.name,
            model=provider.model,
            round=request.round,
            error=str(exc),
        )
        ctx.console.line(
            f"    Structured output rejected by {provider.name}:{provider.model} ({exc}); "
            "using the text verdict format for the rest of this run"
        )
        return _text(ctx, request, prompt_for, ReviewFormat.FALLBACK)
    result, valid = from_answer(answer)
    return Review(result, answer, ReviewFormat.STRUCTURED, schema_valid=valid)


def _text(
    ctx: RunContext, request: CompletionRequest, prompt_for: Callable[[str], str], fmt: ReviewFormat
) -> Review:
    answer = ctx.call_llm("reviewer", dataclasses.replace(request, prompt=prompt_for(TEXT_FORMAT))).text
    return Review(parse_verdict(answer), answer, fmt)
