"""lld-workflow: issue -> low-level design.

N0_load_issue -> N1_design -> N2_review -> (N1_design | N3_finalize)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agentos.core import safe_json
from agentos.core.atomic_file import move_without_replacing, write_text_atomic
from agentos.core.errors import InvalidSpec
from agentos.workflows.context import RunContext, WorkflowState
from agentos.workflows.lineage import archive_previous, write_lineage
from agentos.workflows.pending import STATUS_LINE_PREFIX, hand_written_lld
from agentos.workflows.review_loop import (
    make_draft_node,
    make_review_node,
    node,
    route_after_review,
)

STATUS_APPROVED = "APPROVED"
STATUS_NEEDS_REVISION = "NEEDS REVISION"


@node("N0_load_issue")
def load_issue(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    issue = ctx.tracker.get_issue(int(state["key"]))
    if not issue.title and not issue.body.strip():
        raise InvalidSpec("issue is empty")
    if not issue.title:
        raise InvalidSpec("issue has no title: the first line must be '# <title>'")
    if not issue.body:
        raise InvalidSpec("issue has no body")
    archive_previous(ctx.lineage_dir, ctx.workspace.lineage_archive_dir(ctx.item_id))
    write_lineage(ctx.lineage_dir, 1, "issue", issue.text)
    return {
        "title": issue.title,
        "body": issue.body,
        "item_text": issue.text,
        "seq": 1,
        "rounds": 0,
    }


@node("N3_finalize")
def finalize(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Write the LLD with its honest status, and the status record pending-detection reads."""
    ctx = runtime.context
    number = int(state["key"])
    approved = state.get("verdict") == "APPROVED"
    rounds = state.get("rounds", 0)
    status = STATUS_APPROVED if approved else STATUS_NEEDS_REVISION
    draft = state.get("draft", "")
    lines = draft.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    header = [
        f"{STATUS_LINE_PREFIX.decode()} {status} -->",
        f"# LLD-{number:03d}: {state.get('title', '')}",
        "",
        f"- **Status:** {status}" + ("" if approved else f" (not approved after {rounds} review round(s))"),
        f"- **Issue:** #{number}",
        f"- **Review rounds:** {rounds}",
        f"- **Drafter:** {ctx.drafter.name}:{ctx.drafter.model}"
        + (" (offline mock provider, not a real LLM)" if ctx.drafter.name == "mock" else ""),
        f"- **Reviewer:** {ctx.reviewer.name}:{ctx.reviewer.model}"
        + (" (offline mock provider, not a real LLM)" if ctx.reviewer.name == "mock" else ""),
    ]
    if not approved and state.get("feedback"):
        header += ["", "**Open blocking points:**", *[f"- {p}" for p in state["feedback"]]]
    document = "\n".join([*header, "", *lines]).rstrip() + "\n"
    path = ctx.workspace.lld_file(number)
    _keep_hand_written(ctx, path, number)
    write_text_atomic(path, document, sweep=True)
    record = {
        "issue": number,
        "status": "approved" if approved else "needs_revision",
        "rounds": rounds,
        "lld": str(path.relative_to(ctx.workspace.root)),
        "drafter": f"{ctx.drafter.name}:{ctx.drafter.model}",
        "reviewer": f"{ctx.reviewer.name}:{ctx.reviewer.model}",
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_text_atomic(
        ctx.workspace.lld_status_file(number), safe_json.dumps(record, indent=2) + "\n", sweep=True
    )
    seq = state.get("seq", 0) + 1
    write_lineage(ctx.lineage_dir, seq, "final", document)
    return {"status": "approved" if approved else "needs_revision", "output": str(path), "seq": seq}


def _keep_hand_written(ctx: RunContext, path: Path, number: int) -> None:
    """A hand-written LLD at our path is moved aside, never overwritten, and the run says where."""
    if not hand_written_lld(ctx.workspace, number):
        return
    kept = move_without_replacing(path, path.with_name(f"{path.stem}.hand-written{path.suffix}"))
    ctx.console.line(f"    {path.name} was not written by agentos; kept it as {kept.name}")


def build_lld_graph() -> StateGraph[WorkflowState, RunContext, WorkflowState, WorkflowState]:
    graph: StateGraph[WorkflowState, RunContext, WorkflowState, WorkflowState] = StateGraph(
        WorkflowState, context_schema=RunContext
    )
    graph.add_node("N0_load_issue", load_issue)
    graph.add_node("N1_design", make_draft_node("N1_design", "lld"))
    graph.add_node("N2_review", make_review_node("lld"))
    graph.add_node("N3_finalize", finalize)
    graph.add_edge(START, "N0_load_issue")
    graph.add_edge("N0_load_issue", "N1_design")
    graph.add_edge("N1_design", "N2_review")
    graph.add_conditional_edges(
        "N2_review",
        route_after_review("N3_finalize", "N3_finalize", "N1_design"),
        ["N1_design", "N3_finalize"],
    )
    graph.add_edge("N3_finalize", END)
    return graph
