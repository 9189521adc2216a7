"""The dashboard's reading layer and timeline, on hand-made run folders (no browser, no server).

Hostile and broken folders are the point: a corrupt summary, a torn or huge audit, a symlinked
log, a FIFO, a name that is a path. The browser tests (test_dashboard_browser.py) check the
same pages in a real chromium while a real run is going.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from agentos.dashboard import drawing, render, timeline
from agentos.dashboard.local_records import LocalRunRecords, parse_audit
from agentos.dashboard.records import RecordNotFound

T0 = 1_800_000_000.0


def iso(t: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


def audit_line(event: str, item: str, at: float, **fields: object) -> str:
    return json.dumps({"ts": iso(at), "epoch_s": at, "event": event, "item": item, **fields})


def make_run(home: Path, name: str = "20261204-101500", workspace: Path | None = None) -> Path:
    """A finished run of two items: LLD-1 (two rounds, a key pause) and LLD-2 (one round)."""
    run_dir = home / "logs" / "parallel" / name
    run_dir.mkdir(parents=True)
    items = [
        {
            "item": "LLD-1",
            "status": "approved",
            "rounds": 2,
            "duration_s": 20.0,
            "started": iso(T0),
            "ended": iso(T0 + 20),
            "attempts": 2,
            "input_tokens": 100,
            "output_tokens": 50,
            "tokens_estimated": True,
        },
        {
            "item": "LLD-2",
            "status": "needs_revision",
            "rounds": 1,
            "duration_s": 8.0,
            "started": iso(T0 + 2),
            "ended": iso(T0 + 10),
            "attempts": 1,
            "input_tokens": 10,
            "output_tokens": 5,
        },
    ]
    summary = {
        "workflow": "lld",
        "run_dir": str(run_dir),
        "workspace": str(workspace or home / "ws"),
        "started": iso(T0),
        "ended": iso(T0 + 21),
        "duration_s": 21.0,
        "exit_code": 0,
        "totals": {"approved": 1, "needs_revision": 1, "total": 2},
        "items": items,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = [
        audit_line("workflow_start", "LLD-1", T0 + 0.1),
        audit_line("node_start", "LLD-1", T0 + 0.2, node="N1_draft", round=1),
        audit_line(
            "llm_call", "LLD-1", T0 + 1.0, key_name="key-a", outcome="ok", duration_s=0.7, input_tokens=5
        ),
        audit_line("node_end", "LLD-1", T0 + 1.1, node="N1_draft", duration_s=0.9),
        audit_line("node_start", "LLD-1", T0 + 1.2, node="N2_review", round=1),
        audit_line("llm_call", "LLD-1", T0 + 2.0, key_name="key-a", outcome="RateLimited", duration_s=0.1),
        audit_line("workflow_rate_limited", "LLD-1", T0 + 2.1, key_name="key-a", retry_after=5),
        audit_line("workflow_resume", "LLD-1", T0 + 7.0, next=["N2_review"]),
        audit_line("node_start", "LLD-1", T0 + 7.1, node="N2_review", round=1),
        audit_line("permit_wait", "LLD-1", T0 + 9.0, key_name="key-b", waited_s=1.5, granted_epoch=T0 + 8.6),
        audit_line("llm_call", "LLD-1", T0 + 9.0, key_name="key-b", outcome="ok", duration_s=1.9),
        audit_line("verdict", "LLD-1", T0 + 9.1, round=1, verdict="REVISE", blocking=["fix it"]),
        audit_line("node_end", "LLD-1", T0 + 9.1, node="N2_review", duration_s=2.0),
        "{torn line",
        "[1, 2]",
        audit_line("workflow_complete", "LLD-1", T0 + 19.9, status="approved"),
    ]
    (run_dir / "workflow-audit-1.jsonl").write_text("\n".join(lines) + "\n")
    (run_dir / "workflow-audit-2.jsonl").write_text(
        audit_line("workflow_start", "LLD-2", T0 + 2.1)
        + "\n"
        + audit_line("verdict", "LLD-2", T0 + 9, round=1, verdict="REVISE")
    )
    (run_dir / "LLD-1.log").write_text("line one\nline two\n")
    return run_dir


def test_a_run_reads_back_with_items_events_and_spend(home: Path) -> None:
    make_run(home)
    records = LocalRunRecords(clock=lambda: T0 + 100)
    [row] = records.runs()
    assert (row.name, row.state, row.workflow) == ("20261204-101500", "finished", "lld")
    assert row.spend.input_tokens == 110 and row.spend.estimated
    detail = records.run(row.name)
    assert [i.item for i in detail.items] == ["LLD-1", "LLD-2"]
    events = detail.events["LLD-1"]
    assert [e.event for e in events][:2] == ["workflow_start", "node_start"]
    assert len(events) == 14  # the torn line and the array are skipped


def test_the_timeline_has_one_lane_per_item_as_long_as_the_item(home: Path) -> None:
    make_run(home)
    detail = LocalRunRecords(clock=lambda: T0 + 100).run("20261204-101500")
    line = timeline.build(detail)
    assert [lane.item for lane in line.lanes] == ["LLD-1", "LLD-2"]
    assert [round(lane.duration, 3) for lane in line.lanes] == [20.0, 8.0]
    lane = line.lanes[0]
    kinds = {s.kind for s in lane.segments}
    assert kinds == {timeline.SegmentKind.NODE, timeline.SegmentKind.PAUSE, timeline.SegmentKind.PERMIT}
    pause = next(s for s in lane.segments if s.kind is timeline.SegmentKind.PAUSE)
    assert (pause.start, pause.end) == (T0 + 2.1, T0 + 7.0)
    permit = next(s for s in lane.segments if s.kind is timeline.SegmentKind.PERMIT)
    assert permit.start == pytest.approx(T0 + 7.1) and permit.end == pytest.approx(T0 + 8.6)
    assert [(r.number, r.verdict) for r in lane.rounds] == [(1, "REVISE")]
    # the node cut by the 429 ends at the pause; the resumed one runs to its end
    reviews = [s for s in lane.segments if s.label == "N2_review"]
    assert [(s.start, s.end) for s in reviews] == [(T0 + 1.2, T0 + 2.1), (T0 + 7.1, T0 + 9.1)]
    keys = {t.key: t for t in line.keys}
    assert set(keys) == {"key-a", "key-b"}
    # the paced call on key-b is on the key from its grant (T0 + 8.6), not while it waited
    assert [(c.start, c.end) for c in keys["key-b"].calls] == [(T0 + 8.6, T0 + 9.0)]
    assert len(keys["key-a"].refusals) == 1 and keys["key-a"].cooldowns[0].end == T0 + 7.1
    chart = drawing.timeline_chart(line)
    lanes = [b for b in chart.boxes if b.kind == "lane"]
    assert [round(b.w / chart.scale, 3) for b in lanes] == [20.0, 8.0]


def test_corrupt_huge_and_hostile_folders_are_shown_not_crashed(home: Path) -> None:
    root = home / "logs" / "parallel"
    corrupt = root / "20261204-090000"
    corrupt.mkdir(parents=True)
    (corrupt / "summary.json").write_bytes(b"\xff{not json")
    huge = make_run(home, "20261204-090100")
    with (huge / "workflow-audit-1.jsonl").open("a") as fh:  # 20 MiB of audit: only its end is read
        chunk = audit_line("llm_call", "LLD-1", T0 + 3, key_name="key-a", outcome="ok", duration_s=0.1) + "\n"
        fh.write(chunk * (20 * 1024 * 1024 // len(chunk)))
    with (huge / "LLD-1.log").open("a") as fh:
        fh.write(("x" * 1000 + "\n") * 3000)
    (huge / "LLD-2.log").symlink_to("/etc/passwd")
    os.mkfifo(huge / "workflow-audit-9.jsonl")
    records = LocalRunRecords(clock=lambda: T0 + 100)
    rows = {r.name: r for r in records.runs()}
    assert rows["20261204-090000"].state == "unreadable" and rows["20261204-090000"].problem
    started = time.monotonic()
    detail = records.run("20261204-090100")
    assert time.monotonic() - started < 30
    assert len(detail.events["LLD-1"]) <= 5000
    assert detail.notes == ["1 audit file(s) refused (not regular files, or unreadable)"]  # the FIFO
    item = records.item("20261204-090100", "LLD-1")
    assert item.log_truncated and len(item.log_lines) <= 5000
    other = records.item("20261204-090100", "LLD-2")
    assert other.log_problem is not None and "symlink" in other.log_problem and not other.log_lines
    html = render.run_page(detail) + render.item_page(item) + render.runs_page(records.runs())
    assert "unreadable" in html
    for name in ("../etc", "20261204-090100/../x", "x" * 300, "/etc/passwd"):
        with pytest.raises(RecordNotFound):
            records.run(name)
    with pytest.raises(RecordNotFound):
        records.item("20261204-090100", "../../etc/passwd")


def test_hostile_text_is_escaped_everywhere(home: Path, tmp_path: Path) -> None:
    payload = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    workspace = tmp_path / "ws"
    lineage = workspace / "docs" / "lineage" / "active" / "LLD-1"
    lineage.mkdir(parents=True)
    (lineage / "001-issue.md").write_text(f"# {payload}\n\nbody\n")
    (lineage / "002-draft.md").write_text(f"draft {payload}\n")
    (lineage / "003-verdict.md").write_text(f"verdict {payload}\n")
    run_dir = make_run(home, workspace=workspace)
    (run_dir / "LLD-1.log").write_text(f"log {payload}\n")
    with (run_dir / "workflow-audit-1.jsonl").open("a") as fh:
        fh.write(audit_line("verdict", "LLD-1", T0 + 10, round=2, verdict=payload, blocking=[payload]) + "\n")
    records = LocalRunRecords(clock=lambda: T0 + 100)
    detail = records.run(run_dir.name)
    assert detail.items[0].title == payload
    item = records.item(run_dir.name, "LLD-1")
    assert [r.number for r in item.rounds] == [1]
    pages = [render.run_page(detail), render.item_page(item), render.timeline_file(detail)]
    for html in pages:
        assert "<script>window" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in pages[1]


def test_a_run_still_going_reads_from_its_audit(home: Path) -> None:
    run_dir = home / "logs" / "parallel" / "20261204-110000"
    run_dir.mkdir(parents=True)
    (run_dir / "progress.json").write_text(json.dumps({"started": iso(T0), "workflow": "lld", "total": 3}))
    (run_dir / "workflow-audit-4.jsonl").write_text(
        audit_line("workflow_start", "LLD-4", T0 + 1)
        + "\n"
        + audit_line("node_start", "LLD-4", T0 + 2, node="N1_draft")
    )
    detail = LocalRunRecords(clock=lambda: T0 + 30).run(run_dir.name)
    [item] = detail.items
    assert item.item == "LLD-4" and item.status == "stopped"  # no coordinator holds run.lock
    lane = timeline.build(detail).lanes[0]
    assert lane.segments[0].label == "N1_draft"


def test_parse_audit_keeps_only_objects_with_an_event() -> None:
    text = '{"event": "x", "epoch_s": 5, "n": 1e400}\n{"no": 1}\n' + "[" * 100000 + "\nnull\n"
    [event] = parse_audit(text)
    assert event.event == "x" and event.epoch == 5.0 and event.fields["n"] is None


def test_a_run_of_many_big_audits_is_read_within_a_budget(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentos.dashboard import local_records

    monkeypatch.setattr(local_records, "MAX_RUN_AUDIT_BYTES", 1024 * 1024)
    run_dir = make_run(home)
    line = audit_line("llm_call", "LLD-5", T0 + 1, key_name="k", outcome="ok", duration_s=0.1) + "\n"
    for n in range(5, 9):  # 4 audits of ~600 KiB
        (run_dir / f"workflow-audit-{n}.jsonl").write_text(
            line.replace("LLD-5", f"LLD-{n}") * (600_000 // len(line))
        )
    os.mkfifo(run_dir / "workflow-audit-9.jsonl")
    detail = LocalRunRecords(clock=lambda: T0 + 100).run(run_dir.name)
    # read in name order: 1, 2, 5 and the end of 6 fill the budget; 7, 8 and the FIFO are not read
    assert detail.notes == ["3 audit file(s) not read: over 1 MiB of audits in all"]
    assert {"LLD-1", "LLD-5", "LLD-6"} <= set(detail.events) and "LLD-7" not in detail.events
    assert "not read: over 1 MiB" in render.run_page(detail)


def test_a_huge_lineage_file_shows_its_beginning(home: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    lineage = workspace / "docs" / "lineage" / "active" / "LLD-1"
    lineage.mkdir(parents=True)
    (lineage / "001-issue.md").write_text("# Title\n")
    (lineage / "002-draft.md").write_text("# The draft's heading\n" + "filler line\n" * 100_000)
    (lineage / "003-verdict.md").symlink_to("/etc/hostname")
    run_dir = make_run(home, workspace=workspace)
    item = LocalRunRecords(clock=lambda: T0 + 100).item(run_dir.name, "LLD-1")
    [round_] = item.rounds
    assert round_.draft is not None and round_.draft.startswith("# The draft's heading")
    assert round_.draft.endswith("[... the rest is not shown: the file is larger than 256 KiB ...]")
    assert round_.verdict == "[not shown: a symlink; refused]"


def test_a_symlinked_run_folder_is_not_a_run(home: Path, tmp_path: Path) -> None:
    real = make_run(home)
    elsewhere = tmp_path / "elsewhere"
    real.rename(elsewhere)
    (home / "logs" / "parallel" / "20261204-120000").symlink_to(elsewhere)
    records = LocalRunRecords(clock=lambda: T0 + 100)
    assert records.runs() == []
    with pytest.raises(RecordNotFound):
        records.run("20261204-120000")
    with pytest.raises(RecordNotFound):
        records.item("20261204-120000", "LLD-1")
    assert records.stamp("20261204-120000") == "gone"
