"""The reviewer's answer as a typed object, asked of each provider through its native
structured output (OpenAI `response_format`, Gemini `response_schema`, Anthropic
`output_config.format`), and checked here before anything trusts it.

The schema sent on the wire is derived from `ReviewAnswer` without its size bounds:
providers differ in which bounds they accept, and an unaccepted keyword would make a
capable model look unsupported. The bounds are enforced here, on every answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from agentos.core.redaction import clip
from agentos.llm.errors import ProviderError

MAX_POINTS = 50  # per list: a longer list is not a review
MAX_POINT_CHARS = 2000
MAX_ANSWER_CHARS = 200_000  # raw text above this is refused before it is parsed
_SIZE_KEYWORDS = frozenset({"maxItems", "minItems", "maxLength", "minLength", "title"})

Point = Annotated[str, StringConstraints(max_length=MAX_POINT_CHARS)]


class ReviewAnswer(BaseModel):
    """What a reviewer answers: its verdict, then what must and what may be improved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Literal["APPROVED", "REVISE"]
    blocking: list[Point] = Field(max_length=MAX_POINTS)
    non_blocking: list[Point] = Field(max_length=MAX_POINTS)


@dataclass(frozen=True)
class ResponseSchema:
    """A JSON schema a provider is asked to answer in, with a name for those that want one."""

    name: str
    schema: dict[str, Any] = field(hash=False)


def _wire(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _wire(v) for k, v in node.items() if k not in _SIZE_KEYWORDS}
    if isinstance(node, list):
        return [_wire(v) for v in node]
    return node


def review_schema() -> ResponseSchema:
    schema = _wire(ReviewAnswer.model_json_schema())
    schema["required"] = ["verdict", "blocking", "non_blocking"]  # strict modes want every key
    schema["additionalProperties"] = False
    return ResponseSchema("review_verdict", schema)


REVIEW_SCHEMA = review_schema()


class StructuredOutputUnsupported(ProviderError):
    """The provider or model rejected the structured-output request itself (not the key)."""


_UNSUPPORTED_HINTS = (
    "not supported",
    "unsupported",
    "response_format",
    "json_schema",
    "response_schema",
    "responseschema",
    "response_mime_type",
    "output_config",
    "output_format",
    "structured output",
    "unknown name",  # Google's "Invalid JSON payload received. Unknown name ...": a field it lacks
)


def looks_unsupported(status: int, message: str) -> bool:
    """Does this HTTP error (to a request that carried a schema) reject the schema itself?

    Only client errors qualify; the message is searched with plain `in`, bounded in size.
    """
    if status not in (400, 404, 422, 501):
        return False
    text = message[:4000].lower()
    return any(hint in text for hint in _UNSUPPORTED_HINTS)


class AnswerNotInSchema(ValueError):
    """The answer is not a `ReviewAnswer`: `reason` says why, briefly."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _unfenced(text: str) -> str:
    """Drop a Markdown code fence around the JSON (```json ... ```), in linear time."""
    body = text.strip()
    if body.startswith("```"):
        newline = body.find("\n")
        body = body[newline + 1 :] if newline != -1 else ""
        if body.rstrip().endswith("```"):
            body = body.rstrip()[:-3]
    return body.strip()


def parse_review_answer(text: str) -> ReviewAnswer:
    """The answer as a ReviewAnswer, or AnswerNotInSchema. Untrusted text: bounded first."""
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerNotInSchema(f"answer of {len(text)} characters, above {MAX_ANSWER_CHARS}")
    body = _unfenced(text)
    if not body.startswith("{"):
        raise AnswerNotInSchema("not a JSON object")
    try:
        return ReviewAnswer.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0] if errors else {"loc": (), "msg": "invalid"}
        where = ".".join(str(part) for part in first.get("loc", ())) or "answer"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise AnswerNotInSchema(f"{where}: {clip(str(first.get('msg', 'invalid')), 200)}{more}") from None
