"""The draft -> review -> (revise | finish) loop that both workflows share."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, Protocol

from langgraph.runtime import Runtime

from agentos.core.events import EventType
from agentos.llm.base import CompletionRequest
from agentos.workflows import structured_review
from agentos.workflows.context import RunContext, WorkflowState
from agentos.workflows.lineage import write_lineage


class Node(Protocol):
    """A node as LangGraph calls it: state plus the runtime holding our RunContext."""

    def __call__(self, state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]: ...


def node(name: str, *, in_round: bool = False) -> Callable[[Node], Node]:
    """Announce a node, audit its start and end, and stop at this safe point if asked.

    A node of the review loop (`in_round`) audits the round it works in, the number its
    `llm_call` and `verdict` events carry; any other node, the rounds completed so far."""

    def wrap(fn: Node) -> Node:
        @functools.wraps(fn)
        def run(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
            ctx = runtime.context
            ctx.safe_point()
            ctx.console.line(f">>> Executing: {name}")
            done = state.get("rounds", 0)
            where = {"round": done + 1} if in_round else {"rounds_done": done}
            ctx.events.emit(EventType.NODE_START, node=name, **where)
            started = time.monotonic()
            update = fn(state, runtime)
            ctx.events.emit(EventType.NODE_END, node=name, duration_s=round(time.monotonic() - started, 4))
            return update

        return run

    return wrap


def _feedback_block(feedback: list[str]) -> str:
    if not feedback:
        return ""
    points = "\n".join(f"- {p}" for p in feedback)
    return f"\nThe previous draft was not approved. Fix every blocking point:\n{points}\n"


def make_draft_node(name: str, kind: str) -> Node:
    @node(name, in_round=True)
    def draft(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        round_ = state.get("rounds", 0) + 1
        feedback = state.get("feedback", [])
        template = ctx.templates.text(f"{kind}_template.md")
        prompt = ctx.templates.render(
            f"{kind}_drafter.md",
            number=state["key"],
            slug=state["key"],
            title=state.get("title", ""),
            body=state.get("body", ""),
            template=template,
            feedback_block=_feedback_block(feedback),
        )
        request = CompletionRequest(
            prompt=prompt,
            purpose="draft",
            round=round_,
            max_tokens=ctx.max_output_tokens,
            context={
                "title": state.get("title", ""),
                "body": state.get("body", ""),
                "template": template,
                "feedback": "\n".join(feedback),
            },
        )
        text = ctx.call_llm("drafter", request).text
        seq = state.get("seq", 0) + 1
        write_lineage(ctx.lineage_dir, seq, "draft", text)
        return {"draft": text, "seq": seq}

    return draft


def make_review_node(kind: str) -> Node:
    @node("N2_review", in_round=True)
    def review(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        round_ = state.get("rounds", 0) + 1
        values = {
            "number": state["key"],
            "slug": state["key"],
            "title": state.get("title", ""),
            "body": state.get("body", ""),
            "draft": state.get("draft", ""),
            "round": round_,
            "max_rounds": ctx.max_iterations,
        }

        def prompt_for(fmt: str) -> str:
            return ctx.templates.render(
                f"{kind}_reviewer.md", **values, answer_format=structured_review.answer_format(fmt, kind)
            )

        request = CompletionRequest(
            prompt="",  # set by structured_review for the answer format it asks for
            purpose="review",
            round=round_,
            max_tokens=ctx.max_output_tokens,
            context={
                "title": state.get("title", ""),
                "item_text": state.get("item_text", ""),
                "draft": state.get("draft", ""),
            },
        )
        reviewed = structured_review.review(ctx, request, prompt_for)
        result, answer = reviewed.result, reviewed.answer
        seq = state.get("seq", 0) + 1
        why = result.parse_error or result.note
        note = f"\n\n<!-- parsed as {result.verdict.value}: {why} -->\n" if why else ""
        write_lineage(ctx.lineage_dir, seq, "verdict", answer + note)
        ctx.events.emit(
            EventType.VERDICT,
            round=round_,
            verdict=result.verdict.value,
            blocking=result.blocking,
            parse_error=result.parse_error,
            note=result.note,
            format=reviewed.format.value,
            schema_valid=reviewed.schema_valid,
        )
        shown = f"{result.verdict.value} ({len(result.blocking)} blocking)"
        if result.parse_error:
            shown += f" - unparseable answer: {result.parse_error}"
        elif result.note:
            shown += f" - {result.note}"
        ctx.console.line(f"    Review round {round_}: {shown}")
        return {
            "verdict": result.verdict.value,
            "feedback": result.blocking,
            "parse_error": result.parse_error or "",
            "rounds": round_,
            "seq": seq,
        }

    return review


def route_after_review(approved_to: str, exhausted_to: str, revise_to: str) -> Callable[..., str]:
    """APPROVED -> approved_to; REVISE with rounds left -> revise_to; else exhausted_to."""

    def route(state: WorkflowState, runtime: Runtime[RunContext]) -> str:
        if state.get("verdict") == "APPROVED":
            return approved_to
        if state.get("rounds", 0) >= runtime.context.max_iterations:
            return exhausted_to
        return revise_to

    return route
