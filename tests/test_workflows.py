"""Both graphs, in-process, with the offline mock provider."""

import json
from pathlib import Path

import pytest

from agentos.core.events import read_audit
from agentos.core.outcome import ItemStatus
from agentos.core.paths import Workspace, checkpoint_db_path
from agentos.core.printing import Lines
from agentos.core.stop_flag import StopFlag
from agentos.keys.sources import Credential
from agentos.tracker.base import filing_marker
from agentos.tracker.local import LocalTracker
from agentos.workflows.checkpoint_identity import Owner, create_marked
from agentos.workflows.item import ItemJob, WorkflowKind
from agentos.workflows.item_execution import run_item
from agentos.workflows.pending import pending_briefs, pending_issues
from tests.helpers.cli import kept_db

MOCK = {"mock": Credential("mock-key-1", "mock-fake-secret-1", "mock")}


def job(ws: Path, home: Path, kind: WorkflowKind, key: str, **kw: object) -> ItemJob:
    return ItemJob(
        kind=kind,
        key=key,
        workspace=str(ws),
        db_path=str(checkpoint_db_path(kind.db_prefix, key, ws)),
        audit_path=str(home / "logs" / f"workflow-audit-{key}.jsonl"),
        drafter="mock",
        reviewer="mock",
        **kw,  # type: ignore[arg-type]
    )


def run(j: ItemJob, stop: StopFlag | None = None):  # type: ignore[no-untyped-def]
    lines = Lines()
    outcome = run_item(j, stop=stop or StopFlag(), credentials=MOCK, console=lines)
    return outcome, lines


def test_lld_approved_first_time(demo: Path, home: Path) -> None:
    j = job(demo, home, WorkflowKind.LLD, "8")
    outcome, lines = run(j)
    assert outcome.status is ItemStatus.APPROVED and outcome.rounds == 1
    lld = (demo / "docs/lld/active/LLD-008.md").read_text()
    assert "**Status:** APPROVED" in lld and "Rate-limit the public search API" in lld
    assert "offline mock provider" in lld
    record = json.loads((demo / "docs/lld/status/LLD-008.json").read_text())
    assert record["status"] == "approved" and record["rounds"] == 1
    lineage = sorted(p.name for p in (demo / "docs/lineage/active/LLD-8").iterdir())
    assert lineage == ["001-issue.md", "002-draft.md", "003-verdict.md", "004-final.md"]
    assert ">>> Executing: N0_load_issue" in lines and ">>> Executing: N3_finalize" in lines
    assert not Path(j.db_path).exists(), "the DB is deleted after success"
    events = [e["event"] for e in read_audit(Path(j.audit_path))]
    assert events[0] == "workflow_start" and events[-1] == "workflow_complete"
    calls = [e for e in read_audit(Path(j.audit_path)) if e["event"] == "llm_call"]
    assert {c["key_name"] for c in calls} == {"mock-key-1"}
    assert all(c["provider"] == "mock" and c["outcome"] == "ok" for c in calls)
    assert "mock-fake-secret-1" not in Path(j.audit_path).read_text()


def test_revisions_feed_blocking_points_into_the_next_draft(demo: Path, home: Path) -> None:
    outcome, lines = run(job(demo, home, WorkflowKind.LLD, "12"))  # revisions=2
    assert outcome.status is ItemStatus.APPROVED and outcome.rounds == 3
    assert lines.count(">>> Executing: N1_design") == 3
    second_draft = (demo / "docs/lineage/active/LLD-12/004-draft.md").read_text()
    assert "Addressed:" in second_draft and "error-handling section" in second_draft


def test_loop_limit_means_needs_revision_never_approved(demo: Path, home: Path) -> None:
    j = job(demo, home, WorkflowKind.LLD, "21", max_iterations=2)  # never-approve
    outcome, _ = run(j)
    assert outcome.status is ItemStatus.NEEDS_REVISION and outcome.rounds == 2
    lld = (demo / "docs/lld/active/LLD-021.md").read_text()
    assert "**Status:** NEEDS REVISION" in lld and "APPROVED" not in lld
    assert "Open blocking points" in lld
    assert json.loads((demo / "docs/lld/status/LLD-021.json").read_text())["status"] == "needs_revision"
    assert 21 in pending_issues(Workspace(demo), LocalTracker(Workspace(demo)))
    assert 8 in pending_issues(Workspace(demo), LocalTracker(Workspace(demo)))


@pytest.mark.parametrize(
    ("structured", "reason"),
    [(True, "answer not in the verdict schema: not a JSON object"), (False, "no 'VERDICT:' line")],
)
def test_unparseable_review_counts_as_revise(demo: Path, home: Path, structured: bool, reason: str) -> None:
    j = job(demo, home, WorkflowKind.LLD, "30", structured_output=structured)  # garbage-first
    outcome, lines = run(j)
    assert outcome.status is ItemStatus.APPROVED and outcome.rounds == 2
    verdicts = [e for e in read_audit(Path(j.audit_path)) if e["event"] == "verdict"]
    assert verdicts[0]["verdict"] == "REVISE" and reason in verdicts[0]["parse_error"]
    assert verdicts[0]["format"] == ("structured" if structured else "text")
    assert verdicts[0]["schema_valid"] is (False if structured else None)
    assert verdicts[1]["verdict"] == "APPROVED" and verdicts[1]["parse_error"] is None
    assert any("unparseable answer" in line for line in lines)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("# Title only\n", "issue has no body"), ("no heading here\n", "issue has no title")],
)
def test_invalid_spec_fails_clearly_and_keeps_no_db(demo: Path, home: Path, text: str, reason: str) -> None:
    """It can never pass as it is: a kept DB would only be "resumed" and fail again (issue 19)."""
    (demo / "issues/77.md").write_text(text)
    j = job(demo, home, WorkflowKind.LLD, "77")
    outcome, lines = run(j)
    assert outcome.status is ItemStatus.FAILED
    assert lines[-1].startswith(f"FAILED: Invalid spec format ({reason}")
    assert not Path(j.db_path).exists()
    assert (demo / ".agentos/invalid/lld_workflow_77.json").is_file()


def test_issue_workflow_files_and_moves_the_brief(demo: Path, home: Path) -> None:
    before = set((demo / "issues").iterdir())
    outcome, _ = run(job(demo, home, WorkflowKind.ISSUE, "offline-mode"))
    assert outcome.status is ItemStatus.APPROVED and outcome.filed_number == 43
    new = set((demo / "issues").iterdir()) - before
    assert [p.name for p in new] == ["43.md"]
    text = (demo / "issues/43.md").read_text()
    assert text.startswith("# Offline mode for the mobile app") and "agentos-filing: offline-mode/" in text
    assert (demo / "ideas/done/offline-mode.md").exists()
    assert "offline-mode" not in pending_briefs(Workspace(demo))


def test_filing_is_idempotent_by_marker(demo: Path, home: Path) -> None:
    tracker = LocalTracker(Workspace(demo))
    marker = filing_marker("x", "tok")
    first = tracker.create_issue("T", f"body\n{marker}", [])
    assert tracker.find_filed(marker) == first
    assert tracker.find_filed(filing_marker("x", "other")) is None


def test_needs_revision_brief_is_not_filed(demo: Path, home: Path) -> None:
    (demo / "ideas/active/never.md").write_text("# Never\n\nAn idea.\n<!-- mock-review: never-approve -->\n")
    before = sorted(p.name for p in (demo / "issues").iterdir())
    outcome, _ = run(job(demo, home, WorkflowKind.ISSUE, "never", max_iterations=1))
    assert outcome.status is ItemStatus.NEEDS_REVISION and outcome.filed_number is None
    assert sorted(p.name for p in (demo / "issues").iterdir()) == before
    assert (demo / "ideas/active/never.md").exists()


def test_workspace_templates_override_packaged_ones(demo: Path, home: Path) -> None:
    override = demo / ".agentos/templates"
    override.mkdir(parents=True)
    (override / "lld_template.md").write_text("## Alpha section\n## Omega section\n")
    run(job(demo, home, WorkflowKind.LLD, "8"))
    lld = (demo / "docs/lld/active/LLD-008.md").read_text()
    assert "## Alpha section" in lld and "## Omega section" in lld and "## Test plan" not in lld


def test_stop_before_start_is_an_interruption_with_db_kept(demo: Path, home: Path) -> None:
    stop = StopFlag()
    stop.set("test")
    j = job(demo, home, WorkflowKind.LLD, "8")
    outcome, _ = run(j, stop)
    assert outcome.status is ItemStatus.INTERRUPTED and Path(j.db_path).exists()
    outcome, lines = run(j)  # resumes from the kept checkpoint
    assert outcome.status is ItemStatus.APPROVED and outcome.resumed
    assert any("Resuming from checkpoint" in line for line in lines)


def test_a_node_whose_result_was_saved_before_its_steps_checkpoint_is_not_run_again(
    demo: Path, home: Path
) -> None:
    """A worker killed in the gap between a node's saved result (LangGraph's pending writes)
    and its step's checkpoint left a thread whose `next` is empty though it is not finished:
    it was taken for a new one and started over (found by `kill -9` of a machine). It resumes
    after that node now, with its result, and calls no model again for it."""
    import sqlite3

    class StopAtReview(Lines):
        def __init__(self, stop: StopFlag) -> None:
            super().__init__()
            self.stop = stop

        def line(self, text: str) -> None:
            super().line(text)
            if text == ">>> Executing: N2_review":  # N1_design's step is checkpointed by now
                self.stop.set("test")

    j = job(demo, home, WorkflowKind.LLD, "8")
    stop = StopFlag()
    first = run_item(j, stop=stop, credentials=MOCK, console=StopAtReview(stop))
    assert first.status is ItemStatus.INTERRUPTED
    # Back to the gap: the newest checkpoint (after N1_design) and what was written on it
    # (N2_review's interruption) go; N1_design's writes, on the checkpoint before, stay.
    with sqlite3.connect(j.db_path) as db:
        (newest,) = db.execute("SELECT max(checkpoint_id) FROM checkpoints").fetchone()
        db.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", (newest,))
        db.execute("DELETE FROM writes WHERE checkpoint_id = ?", (newest,))
        (left,) = db.execute("SELECT max(checkpoint_id) FROM checkpoints").fetchone()
        channels = {
            row[0] for row in db.execute("SELECT channel FROM writes WHERE checkpoint_id = ?", (left,))
        }
    assert "draft" in channels  # N1_design's result, saved on the checkpoint that is left
    outcome, lines = run(j)
    assert outcome.status is ItemStatus.APPROVED and outcome.resumed
    assert any("at the end of N1_design (its result was saved)" in line for line in lines), lines
    assert ">>> Executing: N1_design" not in lines and ">>> Executing: N0_load_issue" not in lines
    audit = read_audit(Path(j.audit_path))
    later = audit[max(i for i, e in enumerate(audit) if e["event"] == "workflow_resume") :]
    assert [e["node"] for e in later if e["event"] == "node_start"] == ["N2_review", "N3_finalize"]
    assert [e["role"] for e in later if e["event"] == "llm_call"] == ["reviewer"]
    lineage = sorted(p.name for p in (demo / "docs/lineage/active/LLD-8").iterdir())
    assert lineage == ["001-issue.md", "002-draft.md", "003-verdict.md", "004-final.md"]


def test_corrupt_checkpoint_fails_with_fresh_hint(demo: Path, home: Path) -> None:
    j = job(demo, home, WorkflowKind.LLD, "8")
    owner = Owner(str(demo.resolve()), "lld_workflow", "8", "0" * 64)
    create_marked(Path(j.db_path), owner)  # agentos's own DB (its header carries the mark) ...
    data = bytearray(Path(j.db_path).read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # ... with every page after the header destroyed
    Path(j.db_path).write_bytes(bytes(data))
    outcome, _ = run(j)
    assert outcome.status is ItemStatus.FAILED
    assert j.db_path in (outcome.error or "") and "--fresh" in (outcome.error or "")
    fresh = job(demo, home, WorkflowKind.LLD, "8", fresh=True)
    outcome, _ = run(fresh)
    assert outcome.status is ItemStatus.APPROVED


def test_agentos_workflow_db_overrides_the_default_path(
    demo: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = tmp_path / "elsewhere" / "my.db"
    monkeypatch.setenv("AGENTOS_WORKFLOW_DB", str(custom))
    stop = StopFlag()
    stop.set("test")  # interrupted at the first safe point: the DB is kept where the variable says
    outcome, _ = run(job(demo, home, WorkflowKind.LLD, "8"), stop)
    assert outcome.status is ItemStatus.INTERRUPTED
    assert custom.exists() and not kept_db(home, demo, 8).exists()


def test_a_worker_reports_its_node_round_key_and_tokens_as_it_goes(demo: Path, home: Path) -> None:
    """The live panel's notes, as a worker sends them: each node's start with its round, the
    item's key as a call starts, and the tokens after each call (the audit's sums)."""
    from agentos.core import progress_note
    from agentos.core.progress_note import ProgressNote

    notes: list[ProgressNote] = []
    progress_note.install(notes.append)
    try:
        j = job(demo, home, WorkflowKind.LLD, "12")  # revised before it is approved
        outcome, _ = run(j)
    finally:
        progress_note.install(None)
    assert outcome.status is ItemStatus.APPROVED and outcome.rounds >= 2
    nodes = [(n.node, n.round) for n in notes if n.node is not None]
    assert nodes[:3] == [("N0_load_issue", 0), ("N1_design", 1), ("N2_review", 1)]
    assert ("N1_design", 2) in nodes and nodes[-1][0] == "N3_finalize"
    assert {n.key for n in notes if n.key is not None} == {"mock-key-1"}
    tokens = [n.tokens for n in notes if n.tokens is not None]
    calls = [e for e in read_audit(Path(j.audit_path)) if e["event"] == "llm_call"]
    assert len(tokens) == len(calls) and tokens == sorted(tokens)
    assert tokens[-1] == sum(c["input_tokens"] + c["output_tokens"] for c in calls) > 0
    assert all(ProgressNote.decode(n.encode()) == n for n in notes)  # every one survives the pipe
