"""Structured review verdicts: each SDK client against its loopback wire server, the typed
answer, the fallback to the text protocol, and token usage from every provider."""

import json
from pathlib import Path
from typing import Any

import pytest

from agentos.core.events import read_audit
from agentos.core.outcome import ItemStatus
from agentos.core.paths import checkpoint_db_path
from agentos.core.printing import Lines
from agentos.core.stop_flag import StopFlag
from agentos.keys.sources import Credential
from agentos.llm.anthropic_api import AnthropicProvider
from agentos.llm.base import CompletionRequest
from agentos.llm.errors import ProviderError
from agentos.llm.gemini_api import GeminiProvider
from agentos.llm.mock import MockProvider
from agentos.llm.openai_api import OpenAIProvider
from agentos.llm.structured import (
    MAX_POINTS,
    REVIEW_SCHEMA,
    AnswerNotInSchema,
    StructuredOutputUnsupported,
    looks_unsupported,
    parse_review_answer,
)
from agentos.llm.usage import MAX_TOKENS_PER_CALL, Usage, UsageTotals, clamp_tokens
from agentos.workflows import structured_review
from agentos.workflows.item import ItemJob, WorkflowKind
from agentos.workflows.item_execution import run_item
from agentos.workflows.verdict import APPROVED_WITH_BLOCKING, Verdict
from tests.helpers.fake_llm_servers import FakeLLMServer

pytestmark = pytest.mark.timeout(90)
KINDS = ["gemini", "anthropic", "openai"]
MODEL = "qwen2.5-coder-1.5b"  # a real model name: dots are not file-name safe as they stand
REVIEW = CompletionRequest(
    "You are a strict design reviewer. Review this.", purpose="review", schema=REVIEW_SCHEMA
)


def make(kind: str, url: str, secret: str = "good-key-1"):  # type: ignore[no-untyped-def]
    if kind == "gemini":
        return GeminiProvider("gemini-test", secret=secret, key_name="k", base_url=url)
    if kind == "anthropic":
        return AnthropicProvider("claude-test", secret=secret, key_name="k", base_url=url)
    return OpenAIProvider("gpt-test", secret=secret, key_name="k", base_url=url + "/v1")


def _sent_schema_matches(kind: str, sent: Any) -> None:
    """The schema as it went over the wire, in the provider's own dialect."""
    if kind in ("openai", "anthropic"):
        assert sent == REVIEW_SCHEMA.schema
        return
    # google-genai sends its Schema type: upper-case type names, the same shape.
    assert sent["type"] == "OBJECT" and sent["required"] == ["verdict", "blocking", "non_blocking"]
    assert sent["properties"]["verdict"]["enum"] == ["APPROVED", "REVISE"]
    assert sent["properties"]["blocking"]["type"] == "ARRAY"
    assert sent["properties"]["non_blocking"]["items"]["type"] == "STRING"


@pytest.mark.parametrize("kind", KINDS)
def test_the_schema_goes_in_the_providers_format_and_the_typed_verdict_comes_back(kind: str) -> None:
    with FakeLLMServer(kind) as server:
        completion = make(kind, server.url).complete(REVIEW)
    _sent_schema_matches(kind, server.schemas[0])
    answer = parse_review_answer(completion.text)
    assert answer.verdict == "APPROVED" and answer.blocking == [] and answer.non_blocking == ["fine"]
    result, valid = structured_review.from_answer(completion.text)
    assert result.verdict is Verdict.APPROVED and valid


@pytest.mark.parametrize("kind", KINDS)
def test_a_plain_request_carries_no_schema(kind: str) -> None:
    with FakeLLMServer(kind) as server:
        make(kind, server.url).complete(CompletionRequest("Write a design"))
    assert server.schemas == [None]


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_that_rejects_the_schema_raises_structured_output_unsupported(kind: str) -> None:
    with FakeLLMServer(kind, reject_structured=True) as server:
        with pytest.raises(StructuredOutputUnsupported) as info:
            make(kind, server.url).complete(REVIEW)
        assert make(kind, server.url).complete(CompletionRequest("Write a design")).text  # no schema: fine
    assert info.value.key_name == "k" and "400" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_error_with_a_schema_is_not_mistaken_for_unsupported(kind: str) -> None:
    request = CompletionRequest("agentos-test-500", purpose="review", schema=REVIEW_SCHEMA)
    with FakeLLMServer(kind) as server, pytest.raises(ProviderError) as info:
        make(kind, server.url).complete(request)
    assert not isinstance(info.value, StructuredOutputUnsupported)


def test_looks_unsupported_wants_a_client_error_about_the_schema() -> None:
    assert looks_unsupported(400, "response_format json_schema is not supported")
    assert not looks_unsupported(500, "response_format is not supported")
    assert not looks_unsupported(400, "max_tokens is too large")
    assert not looks_unsupported(400, "x" * 1_000_000 + " not supported")  # bounded scan


# -- the typed answer ----------------------------------------------------------------------
def _answer(verdict: str, blocking: list[str], non_blocking: list[str] | None = None) -> str:
    return json.dumps({"verdict": verdict, "blocking": blocking, "non_blocking": non_blocking or []})


def test_approved_with_blocking_points_is_revise_with_a_note_not_unparseable() -> None:
    result, valid = structured_review.from_answer(_answer("APPROVED", ["**Error Handling**: name them"]))
    assert result.verdict is Verdict.REVISE and result.note == APPROVED_WITH_BLOCKING
    assert result.parse_error is None and valid
    assert result.blocking == ["**Error Handling**: name them"]


def test_none_points_are_dropped_and_bold_text_kept() -> None:
    result, _ = structured_review.from_answer(_answer("APPROVED", ["none", " N/A "], ["**Style**: shorter"]))
    assert result.approved and result.blocking == [] and result.non_blocking == ["**Style**: shorter"]


def test_a_fenced_json_answer_is_accepted() -> None:
    result, valid = structured_review.from_answer("```json\n" + _answer("REVISE", ["fix x"]) + "\n```")
    assert result.verdict is Verdict.REVISE and result.blocking == ["fix x"] and valid


def test_a_text_protocol_answer_to_a_structured_request_is_parsed_but_not_schema_valid() -> None:
    result, valid = structured_review.from_answer("VERDICT: APPROVED\nBLOCKING:\nNON-BLOCKING:\n")
    assert result.approved and not valid


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Looks fine to me, ship it!", "not a JSON object"),
        ('{"verdict": "LGTM", "blocking": [], "non_blocking": []}', "verdict"),
        ('{"verdict": "APPROVED", "blocking": []}', "non_blocking"),
        ('{"verdict": "APPROVED", "blocking": [], "non_blocking": [], "extra": 1}', "extra"),
        ('{"verdict": "APPROVED", "blocking": [1], "non_blocking": []}', "blocking"),
        (_answer("REVISE", ["x"] * (MAX_POINTS + 1)), "blocking"),
        (_answer("REVISE", ["x" * 5000]), "blocking.0"),
        ('{"verdict": "APPROVED", ' + " " * 300_000 + "}", "characters"),
        ('{"verdict": "APPROVED", "blocking": [', "Invalid JSON"),
    ],
)
def test_answers_outside_the_schema_are_revise_with_why(text: str, reason: str) -> None:
    with pytest.raises(AnswerNotInSchema) as info:
        parse_review_answer(text)
    assert reason in info.value.reason
    result, valid = structured_review.from_answer(text)
    assert result.verdict is Verdict.REVISE and not valid
    assert result.parse_error is not None and "not in the verdict schema" in result.parse_error


def test_the_mock_answers_in_the_schema_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOS_MOCK_LATENCY", "0")
    context = {"title": "T", "item_text": "<!-- mock-review: revisions=1 -->"}
    request = CompletionRequest("p", purpose="review", context=context, schema=REVIEW_SCHEMA)
    answer = parse_review_answer(MockProvider().complete(request).text)
    assert answer.verdict == "REVISE" and len(answer.blocking) == 2
    with pytest.raises(StructuredOutputUnsupported):
        MockProvider("no-structured-output").complete(request)


# -- usage ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_usage_is_read_from_every_provider(kind: str) -> None:
    with FakeLLMServer(kind, usage=(123, 45)) as server:
        completion = make(kind, server.url).complete(CompletionRequest("Write a design"))
    assert completion.usage == Usage(123, 45)


@pytest.mark.parametrize("kind", KINDS)
def test_absurd_usage_numbers_are_clamped(kind: str) -> None:
    with FakeLLMServer(kind, usage=(-5, 10**15)) as server:
        completion = make(kind, server.url).complete(CompletionRequest("Write a design"))
    assert completion.usage == Usage(0, MAX_TOKENS_PER_CALL)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12), (-1, 0), (True, 0), (3.9, 3), (float("nan"), 0), (float("inf"), 0), ("42", 42),
     ("x" * 100, 0), (None, 0), ([1], 0), (10**30, MAX_TOKENS_PER_CALL)],
)  # fmt: skip
def test_clamp_tokens(value: Any, expected: int) -> None:
    assert clamp_tokens(value) == expected


def test_the_mock_estimates_its_tokens_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOS_MOCK_LATENCY", "0")
    usage = MockProvider().complete(CompletionRequest("x" * 400)).usage
    assert usage is not None and usage.estimated and usage.input_tokens == 100 and usage.output_tokens > 0


def test_usage_totals_merge_untrusted_worker_data() -> None:
    totals = UsageTotals()
    totals.add("openai:m", Usage(10, 5))
    totals.merge({"openai:m": {"input_tokens": "7", "output_tokens": -3, "calls": 1}, "bad": [1], 3: {}})
    totals.merge("garbage")
    assert totals.by_model["openai:m"] == {
        "input_tokens": 17,
        "output_tokens": 5,
        "calls": 2,
        "estimated": False,
    }
    assert totals.input_tokens == 17 and not totals.estimated


# -- the workflow: structured, then the fallback, remembered for the run ------------------
def _job(demo: Path, home: Path, key: str, **kw: Any) -> ItemJob:
    return ItemJob(
        kind=WorkflowKind.LLD,
        key=key,
        workspace=str(demo),
        db_path=str(checkpoint_db_path("lld_workflow", key, demo)),
        audit_path=str(home / "logs" / f"workflow-audit-{key}.jsonl"),
        drafter=f"openai:{MODEL}",
        reviewer=f"openai:{MODEL}",
        **kw,
    )


def _run(job: ItemJob) -> tuple[Any, list[str]]:
    lines = Lines()
    creds = {"openai": Credential("openai-key-1", "sk-good-key-1", "openai")}
    return run_item(job, stop=StopFlag(), credentials=creds, console=lines), lines


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    def start(**kw: Any) -> FakeLLMServer:
        server = FakeLLMServer("openai", **kw)
        monkeypatch.setenv("AGENTOS_OPENAI_BASE_URL", server.url + "/v1")
        return server

    monkeypatch.setenv("AGENTOS_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(structured_review, "_remembered", set())
    return start


def test_a_workflow_reviews_through_structured_output(demo: Path, home: Path, openai_server) -> None:  # type: ignore[no-untyped-def]
    with openai_server() as server:
        outcome, _ = _run(_job(demo, home, "8"))
    assert outcome.status is ItemStatus.APPROVED
    assert server.schemas == [None, REVIEW_SCHEMA.schema]  # the drafter's call, the reviewer's
    audit = read_audit(home / "logs" / "workflow-audit-8.jsonl")
    verdict = next(e for e in audit if e["event"] == "verdict")
    assert verdict["format"] == "structured" and verdict["schema_valid"] is True
    calls = [e for e in audit if e["event"] == "llm_call"]
    assert [c.get("structured_output", False) for c in calls] == [False, True]
    assert all(c["input_tokens"] == 5 and c["output_tokens"] == 7 for c in calls)
    assert "tokens_estimated" not in calls[0]
    assert outcome.usage == {
        f"openai:{MODEL}": {"input_tokens": 10, "output_tokens": 14, "calls": 2, "estimated": False}
    }


def test_rejected_structured_output_falls_back_once_and_is_remembered_for_the_run(
    demo: Path,
    home: Path,
    tmp_path: Path,
    openai_server,  # type: ignore[no-untyped-def]
) -> None:
    with openai_server(reject_structured=True) as server:
        first, lines = _run(_job(demo, home, "8"))
        structured_review._remembered.clear()  # another worker process: only the marker file tells it
        second, _ = _run(_job(demo, home, "3"))
    assert first.status is ItemStatus.APPROVED and second.status is ItemStatus.APPROVED
    # item 8: draft, review with the schema (rejected), the same review as text; item 3: no schema asked
    assert server.schemas == [None, REVIEW_SCHEMA.schema, None, None, None]
    audit = read_audit(home / "logs" / "workflow-audit-8.jsonl")
    fallback = [e for e in audit if e["event"] == "structured_output_fallback"]
    assert len(fallback) == 1 and fallback[0]["model"] == MODEL and "not supported" in fallback[0]["error"]
    assert next(e for e in audit if e["event"] == "verdict")["format"] == "text-fallback"
    assert any(f"Structured output rejected by openai:{MODEL}" in line for line in lines)
    (marker,) = (tmp_path / "run" / ".structured-fallback").iterdir()
    assert marker.name == structured_review.marker_name("openai", MODEL)
    later = read_audit(home / "logs" / "workflow-audit-3.jsonl")
    assert next(e for e in later if e["event"] == "verdict")["format"] == "text-fallback"
    assert not [e for e in later if e["event"] == "structured_output_fallback"]


def test_no_structured_output_asks_for_the_text_protocol(demo: Path, home: Path, openai_server) -> None:  # type: ignore[no-untyped-def]
    with openai_server() as server:
        outcome, _ = _run(_job(demo, home, "8", structured_output=False))
    assert outcome.status is ItemStatus.APPROVED and server.schemas == [None, None]
    audit = read_audit(home / "logs" / "workflow-audit-8.jsonl")
    assert next(e for e in audit if e["event"] == "verdict")["format"] == "text"


@pytest.mark.parametrize("structured", [True, False])
def test_approved_with_blocking_points_is_shown_as_revise_with_why_not_as_unparseable(
    demo: Path,
    home: Path,
    openai_server,
    structured: bool,  # type: ignore[no-untyped-def]
) -> None:
    point = "**Error Handling**: name each failure mode"
    with openai_server(verdict=("APPROVED", [point])):
        outcome, lines = _run(_job(demo, home, "8", structured_output=structured, max_iterations=1))
    assert outcome.status is ItemStatus.NEEDS_REVISION  # never approved with a blocking point open
    shown = [line for line in lines if "Review round 1:" in line]
    assert shown == [f"    Review round 1: REVISE (1 blocking) - {APPROVED_WITH_BLOCKING}"]
    lld = (demo / "docs/lld/active/LLD-008.md").read_text()
    assert f"- {point}" in lld  # the bold point intact, not `Error Handling**: ...`


@pytest.mark.parametrize(
    "model", [MODEL, "models/gemini-2.5-pro", "../../etc", "a:b", "modèle", "x" * 500, "gpt-4.1", "gpt-4_1"]
)
def test_fallback_marker_names_are_safe_and_distinct(model: str) -> None:
    name = structured_review.marker_name("openai", model)
    assert "/" not in name and ".." not in name and len(name) < 130
    others = {structured_review.marker_name("openai", m) for m in ("gpt-4.1", "gpt-4_1", "gpt-4-1")}
    assert len(others) == 3


def test_max_output_tokens_caps_every_call(demo: Path, home: Path, openai_server) -> None:  # type: ignore[no-untyped-def]
    """A small model can loop inside a JSON list until its token cap; the cap is a setting."""
    with openai_server() as server:
        outcome, _ = _run(_job(demo, home, "8", max_output_tokens=321))
    assert outcome.status is ItemStatus.APPROVED
    assert [body["max_tokens"] for body in server.requests] == [321, 321]
