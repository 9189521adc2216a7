"""issue-workflow: brief -> issue.

N0_load_brief -> N1_draft -> N2_review -> (N1_draft | N3_file -> N4_archive_brief | N4_archive_brief)

Filing is split from moving the brief so the new issue number is checkpointed before
anything else happens, and filing itself is idempotent through a hidden marker.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agentos.core.atomic_file import move_without_replacing, write_text_atomic
from agentos.core.errors import InvalidSpec, ItemNotFound
from agentos.core.events import EventType
from agentos.core.workspace_files import read_input
from agentos.tracker.base import filing_marker
from agentos.workflows.context import RunContext, WorkflowState
from agentos.workflows.lineage import archive_previous, write_lineage
from agentos.workflows.review_loop import (
    make_draft_node,
    make_review_node,
    node,
    route_after_review,
)


def _title_of(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line[2:].strip() if line.startswith("# ") else fallback
    return fallback


@node("N0_load_brief")
def load_brief(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    slug = state["key"]
    try:  # untrusted: a regular file inside the workspace, bounded, or refused by name
        text = read_input(ctx.workspace, ctx.workspace.brief_file(slug), what="brief")
    except FileNotFoundError:
        raise ItemNotFound("brief", slug, str(ctx.workspace.ideas_active)) from None
    if not text.strip():
        raise InvalidSpec("brief is empty")
    title = _title_of(text, slug.replace("-", " ").replace("_", " "))
    archive_previous(ctx.lineage_dir, ctx.workspace.lineage_archive_dir(ctx.item_id))
    write_lineage(ctx.lineage_dir, 1, "brief", text)
    return {
        "title": title,
        "body": text.strip(),
        "item_text": text,
        "seq": 1,
        "rounds": 0,
        # The brief's own fingerprint: a run that starts over, from any AGENTOS_HOME, finds
        # the issue an earlier run filed for this very text, and does not file it again.
        "filing_token": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16],
    }


def _split_draft(draft: str, fallback_title: str) -> tuple[str, str]:
    lines = draft.strip().splitlines()
    if lines and lines[0].startswith("# "):
        return lines[0][2:].strip() or fallback_title, "\n".join(lines[1:]).strip()
    return fallback_title, draft.strip()


def _filing_intent(root: Path, slug: str, token: str) -> Path:
    """`.agentos/filing/<slug>-<token>.intent`: written before the POST that files a brief,
    deleted once the issue number is checkpointed. While it exists, the brief may have been
    filed already (a run killed during the POST), so the marker is searched for in earnest."""
    return root / ".agentos" / "filing" / f"{slug}-{token}.intent"


@node("N3_file")
def file_issue(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    token = state.get("filing_token", "none")
    marker = filing_marker(state["key"], token)
    intent = _filing_intent(ctx.workspace.root, state["key"], token)
    # With a team backend, the filings table's primary key lets one claim per brief text win,
    # on every machine; a claim already there means an earlier attempt may have sent the POST.
    claim = ctx.team.claim_filing(token) if ctx.team is not None else None
    if claim is not None and claim.number is not None:
        ctx.console.line(
            f"    Already filed as issue #{claim.number} (recorded by {claim.host} in the backend); "
            "not filing again"
        )
        ctx.events.emit(EventType.ISSUE_FILED, number=claim.number)
        return {"filed_number": claim.number}
    maybe_sent = intent.is_file() or (claim is not None and not claim.new)
    existing = ctx.tracker.find_filed(marker, maybe_sent=maybe_sent)
    if existing is not None:
        ctx.console.line(f"    Already filed as issue #{existing} (found by marker); not filing again")
        number = existing
    else:
        title, body = _split_draft(state.get("draft", ""), state.get("title", state["key"]))
        body = f"{body}\n\n_Filed by agentos issue-workflow from brief `{state['key']}`._\n{marker}\n"
        write_text_atomic(intent, marker + "\n", sweep=True)  # durable before the POST can reach GitHub
        number = ctx.tracker.create_issue(title, body, ctx.labels)
        ctx.console.line(f"    Filed issue #{number} in {ctx.tracker.describe()}")
    if ctx.team is not None:
        ctx.team.record_filed(token, number)
    ctx.events.emit(EventType.ISSUE_FILED, number=number)
    return {"filed_number": number}


@node("N4_archive_brief")
def archive_brief(state: WorkflowState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    slug = state["key"]
    filed = state.get("filed_number")
    seq = state.get("seq", 0) + 1
    if filed is not None:
        # The number is checkpointed (N3 ended), so the intent has done its work.
        _filing_intent(ctx.workspace.root, slug, state.get("filing_token", "none")).unlink(missing_ok=True)
        source = ctx.workspace.brief_file(slug)
        target = ctx.workspace.ideas_done / source.name
        if source.exists():  # an earlier brief of the same name, already filed, stays as it is
            moved = move_without_replacing(source, target)
            if moved != target:
                ctx.console.line(
                    f"    ideas/done/{target.name} is an earlier brief; kept it, and moved this one "
                    f"to ideas/done/{moved.name}"
                )
        final = f"Status: APPROVED\nFiled as issue #{filed}\n\n{state.get('draft', '')}"
        write_lineage(ctx.lineage_dir, seq, "final", final)
        return {"status": "approved", "output": f"issue #{filed}", "seq": seq}
    rounds = state.get("rounds", 0)
    points = "\n".join(f"- {p}" for p in state.get("feedback", []))
    final = (
        f"Status: NEEDS REVISION (not approved after {rounds} review round(s)); "
        f"not filed, brief left in ideas/active/\n\nOpen blocking points:\n{points}\n\n"
        f"{state.get('draft', '')}"
    )
    path = write_lineage(ctx.lineage_dir, seq, "final", final)
    return {"status": "needs_revision", "output": str(path), "seq": seq}


def build_issue_graph() -> StateGraph[WorkflowState, RunContext, WorkflowState, WorkflowState]:
    graph: StateGraph[WorkflowState, RunContext, WorkflowState, WorkflowState] = StateGraph(
        WorkflowState, context_schema=RunContext
    )
    graph.add_node("N0_load_brief", load_brief)
    graph.add_node("N1_draft", make_draft_node("N1_draft", "issue"))
    graph.add_node("N2_review", make_review_node("issue"))
    graph.add_node("N3_file", file_issue)
    graph.add_node("N4_archive_brief", archive_brief)
    graph.add_edge(START, "N0_load_brief")
    graph.add_edge("N0_load_brief", "N1_draft")
    graph.add_edge("N1_draft", "N2_review")
    graph.add_conditional_edges(
        "N2_review",
        route_after_review("N3_file", "N4_archive_brief", "N1_draft"),
        ["N1_draft", "N3_file", "N4_archive_brief"],
    )
    graph.add_edge("N3_file", "N4_archive_brief")
    graph.add_edge("N4_archive_brief", END)
    return graph
