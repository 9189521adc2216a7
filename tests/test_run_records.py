"""Issue 19 finding 8: the records a run leaves are a joblog a person and a tool can read."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from agentos.events import read_audit
from tests.helpers.cli import issue_flags, run_cli, run_dirs


@pytest.mark.timeout(120)
def test_summary_is_a_joblog_and_the_audit_speaks_iso_8601(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(3, 42), "--parallel", "2", "--provider", "mock",
        home=home, verbose=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = run_dirs(home)
    data = json.loads((run_dir / "summary.json").read_text())
    pids = set()
    for item in data["items"]:
        started, ended = datetime.fromisoformat(item["started"]), datetime.fromisoformat(item["ended"])
        assert started.utcoffset() is not None and started <= ended, item
        assert item["attempts"] == 1 and isinstance(item["pid"], int), item
        pids.add(item["pid"])
    assert len(pids) == 2  # one worker process each
    assert "Run took " in result.stdout, result.stdout
    audit = read_audit(run_dir / "workflow-audit-42.jsonl")  # 42 needs one revision
    assert all(datetime.fromisoformat(e["ts"]).utcoffset() is not None for e in audit)
    node_round = None
    pairs = []
    for event in audit:
        if event["event"] == "node_start":
            node_round = event.get("round")
        elif event["event"] == "llm_call":
            pairs.append((node_round, event["round"]))
    assert pairs and all(a == b for a, b in pairs), pairs
    assert {b for _, b in pairs} == {1, 2}


@pytest.mark.timeout(120)
def test_an_item_that_never_started_shows_a_dash(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(9, 3), "--parallel", "1", "--fail-fast",
        "--provider", "mock", home=home, verbose=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("LLD-3 ")]
    assert row.split()[1:5] == ["not", "started", "\u2013", "\u2013"], row
    assert "0.0s" not in row
    (run_dir,) = run_dirs(home)
    data = json.loads((run_dir / "summary.json").read_text())
    never = next(i for i in data["items"] if i["item"] == "LLD-3")
    assert never["started"] is None and never["attempts"] == 0 and never["pid"] is None
    failed = next(i for i in data["items"] if i["item"] == "LLD-9")
    assert failed["attempts"] == 1 and failed["started"] and isinstance(failed["pid"], int)
