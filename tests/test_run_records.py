"""Issue 19 findings 8 and 9: the records a run leaves, and reading them with `agentos runs/show`."""

import json
import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from agentos.core.events import read_audit
from tests.helpers.cli import cli_env, issue_flags, run_cli, run_dirs
from tests.helpers.live_run import LiveRun, kill_all


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


def agentos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home),
        check=False,
    )


@pytest.mark.timeout(120)
def test_a_single_item_run_is_recorded_and_show_prints_its_item(demo: Path, home: Path) -> None:
    """Issue 19 finding 9: `--issue 42` left no run folder, and `show` could not print one item."""
    result = run_cli("lld-workflow", "--repo", str(demo), "--issue", "42", "--provider", "mock", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = run_dirs(home)
    assert {"LLD-42.log", "workflow-audit-42.jsonl", "summary.json"} <= {p.name for p in run_dir.iterdir()}
    assert not (home / "logs" / "workflow-audit-42.jsonl").exists()
    (listed,) = json.loads(agentos(home, "runs", "--json").stdout)
    assert listed["state"] == "finished" and listed["workflow"] == "lld-workflow", listed
    assert listed["totals"]["approved"] == 1 and listed["exit_code"] == 0
    shown = agentos(home, "show", run_dir.name, "42")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "LLD-42: approved, 2 review round(s)" in out and "attempts 1" in out
    assert f"Lineage folder: {demo.resolve() / 'docs' / 'lineage' / 'active' / 'LLD-42'}" in out, out
    assert "round 1: REVISE (2 blocking)" in out and "round 2: APPROVED (0 blocking)" in out
    assert f"Log: {run_dir / 'LLD-42.log'}" in out and "Executing: N3_finalize" in out
    item = json.loads(agentos(home, "show", run_dir.name, "LLD-42", "--json").stdout)
    assert [v["verdict"] for v in item["verdicts"]] == ["REVISE", "APPROVED"]
    assert item["status"] == "approved" and "N3_finalize" in item["log_text"]
    whole = json.loads(agentos(home, "show", "--json").stdout)
    assert whole["run"] == run_dir.name and [i["item"] for i in whole["items"]] == ["LLD-42"]
    missing = agentos(home, "show", run_dir.name, "LLD-7")
    assert missing.returncode == 2 and "no item 'LLD-7'" in missing.stderr and "LLD-42" in missing.stderr


@pytest.mark.timeout(150)
def test_a_run_still_going_is_listed_as_running_until_its_coordinator_dies(demo: Path, home: Path) -> None:
    run = LiveRun(
        "lld-workflow", "--repo", str(demo), *issue_flags(3, 8, 42, 5), "--parallel", "1",
        "--provider", "mock", home=home, AGENTOS_MOCK_LATENCY="1.5",  # seconds of running left: no race
    )  # fmt: skip
    try:
        run.wait_for(r"\[COORDINATOR\] Finished LLD-3", timeout=90)
        (listed, *_) = json.loads(agentos(home, "runs", "--json").stdout)
        assert listed["state"] == "running" and listed["pid"] == run.proc.pid, listed
        assert listed["totals"]["total"] == 4 and listed["totals"]["approved"] >= 1, listed
        table = agentos(home, "runs").stdout
        assert re.search(r"running: \d/4 done \(\d approved", table), table
        clean = agentos(home, "clean", "--keep", "0")
        assert clean.returncode == 0 and "it is still running" in clean.stdout, clean.stdout
        assert run_dirs(home)
        os.kill(run.proc.pid, signal.SIGKILL)  # the coordinator dies without a summary
        run.wait(timeout=30)
    finally:
        kill_all(run)
    (listed, *_) = json.loads(agentos(home, "runs", "--json").stdout)
    assert listed["state"] == "stopped" and listed["totals"]["approved"] >= 1, listed
    assert "stopped without a summary" in agentos(home, "runs").stdout
