"""Ctrl+C and crashes with real processes and real signals. Every test has a watchdog."""

import json
import os
import shutil
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from agentos.core.events import read_audit
from agentos.core.paths import checkpoint_db_path
from agentos.workflows.checkpoint_identity import Owner, create_marked
from tests.helpers.cli import issue_flags, run_cli, run_dirs
from tests.helpers.live_run import LiveRun, kill_all, process_gone

pytestmark = pytest.mark.timeout(150)
ISSUES = [*issue_flags(3, 5, 8, 12), "--issue", "17"]


def completed_nodes(audit: Path) -> Counter[tuple[str, int]]:
    """(node, round) for every node that finished, from an audit file."""
    done: Counter[tuple[str, int]] = Counter()
    round_ = 0
    for event in read_audit(audit):
        if event["event"] == "node_start":
            round_ = event.get("round", 0)
        if event["event"] == "node_end":
            done[(event["node"], round_)] += 1
    return done


def llm_calls(audit: Path) -> Counter[tuple[str, int]]:
    return Counter(
        (e["purpose"], e["round"])
        for e in read_audit(audit)
        if e["event"] == "llm_call" and e["outcome"] == "ok"
    )


def assert_db_ok(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_sigint_mid_llm_calls_checkpoints_and_resumes(demo: Path, home: Path, tmp_path: Path) -> None:
    args = ["--repo", str(demo), *ISSUES, "--parallel", "3", "--provider", "mock"]
    run = LiveRun("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="1.5")
    try:
        run.wait_for(r"LLM call: reviewer", count=1)  # some items are mid-call, some finished N1
        pids = list(run.worker_pids.values())
        sent = time.monotonic()
        run.signal_group(signal.SIGINT)
        code = run.wait(timeout=30)
        deadline = sent + 5
        while time.monotonic() < deadline and not all(process_gone(p) for p in pids):
            time.sleep(0.02)
        elapsed = time.monotonic() - sent
    finally:
        kill_all(run)
    assert code == 130, run.output
    assert all(process_gone(p) for p in pids), "every worker is gone within 5 s"
    print(f"signal -> last worker exit: {elapsed:.2f}s")
    out = run.output
    assert "[COORDINATOR] Shutting down... waiting for workers to checkpoint" in out
    assert "Run the same command again to resume" in out
    (first_dir,) = run_dirs(home)
    summary = json.loads((first_dir / "summary.json").read_text())
    interrupted = [i for i in summary["items"] if i["status"] == "interrupted"]
    assert interrupted and summary["exit_code"] == 130
    for item in interrupted:
        assert item["checkpoint"], item
        assert_db_ok(Path(item["checkpoint"]))
    kept = list((home / "checkpoints").rglob("*.db"))
    assert any(b"OFFLINE MOCK" in db.read_bytes() for db in kept), "a kept DB holds a completed draft"
    for db in kept:  # ... and never a key: the mock's fake secrets must not be in them
        assert b"mock-fake-secret" not in db.read_bytes()

    dry = run_cli("lld-workflow", *args, "--dry-run", home=home)
    assert "would resume from" in dry.stdout

    resumed = run_cli("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="0.01")
    assert resumed.returncode == 0, resumed.stdout
    assert "Resuming from checkpoints first" in resumed.stdout
    assert not list((home / "checkpoints").rglob("*.db"))

    # Proof from the audit: across both runs, no completed node ran twice, and every
    # item made exactly the LLM calls of an uninterrupted run.
    second_dir = next(d for d in run_dirs(home) if d != first_dir)
    reference_home = tmp_path / "reference-home"
    ref_demo = tmp_path / "ref-demo"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples/demo", ref_demo)
    ref_args = ["--repo", str(ref_demo), *ISSUES, "--parallel", "3", "--provider", "mock"]
    assert run_cli("lld-workflow", *ref_args, home=reference_home).returncode == 0
    (ref_dir,) = run_dirs(reference_home)
    for key in ("3", "5", "8", "12", "17"):
        name = f"workflow-audit-{key}.jsonl"
        both = completed_nodes(first_dir / name) + completed_nodes(second_dir / name)
        assert max(both.values()) == 1, (key, both)
        assert both == completed_nodes(ref_dir / name), key
        assert llm_calls(first_dir / name) + llm_calls(second_dir / name) == llm_calls(ref_dir / name), key


def test_double_sigint_stops_at_once_without_corrupting_dbs(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), *ISSUES, "--parallel", "3", "--provider", "mock"]
    run = LiveRun("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="3")
    try:
        run.wait_for(r"LLM call: drafter", count=3)
        run.signal_group(signal.SIGINT)
        run.signal_group(signal.SIGINT)  # the same key press, delivered twice: ignored
        time.sleep(1.1)
        if run.proc.poll() is None:
            run.signal_group(signal.SIGINT)
        code = run.wait(timeout=20)
    finally:
        kill_all(run)
    assert code == 130
    assert run.output.count("Shutting down") == 1
    for db in (home / "checkpoints").rglob("*.db"):
        assert_db_ok(db)
    again = run_cli("lld-workflow", *args, home=home)
    assert again.returncode == 0, again.stdout


def test_sigkill_of_one_worker_fails_that_item_only(demo: Path, home: Path) -> None:
    args = [
        "--repo",
        str(demo),
        *issue_flags(3, 8, 17),
        "--parallel",
        "3",
        "--provider",
        "mock",
    ]
    run = LiveRun("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="1")
    try:
        run.wait_for(r"\[LLD-8\] >>> Worker process")
        run.wait_for(r"\[LLD-8\] .*LLM call")
        os.kill(run.worker_pids["LLD-8"], signal.SIGKILL)
        code = run.wait(timeout=60)
    finally:
        kill_all(run)
    assert code == 1
    assert "Summary: 2 approved, 0 need revision, 1 failed (LLD-8)" in run.output
    (run_dir,) = run_dirs(home)
    items = {i["item"]: i for i in json.loads((run_dir / "summary.json").read_text())["items"]}
    assert "killed by signal 9" in items["LLD-8"]["error"]
    assert checkpoint_db_path("lld_workflow", 8, demo).exists()
    assert items["LLD-3"]["status"] == items["LLD-17"]["status"] == "approved"


def test_sigkill_of_the_coordinator_leaves_no_orphans(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), *ISSUES, "--parallel", "3", "--provider", "mock"]
    run = LiveRun("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="2")
    try:
        run.wait_for(r"LLM call", count=3)
        os.kill(run.proc.pid, signal.SIGKILL)
        run.wait(timeout=10)
        deadline = time.monotonic() + 3.0  # workers must notice within 2 s
        while time.monotonic() < deadline and run.session_processes():
            time.sleep(0.05)
        leftovers = run.session_processes()
    finally:
        kill_all(run)
    assert leftovers == []
    resumed = run_cli("lld-workflow", *args, home=home)
    assert resumed.returncode == 0, resumed.stdout
    assert "Resuming from checkpoints first" in resumed.stdout


def test_sigint_while_the_pool_is_paused(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), *issue_flags(3, 8), "--parallel", "2", "--provider", "mock"]
    run = LiveRun(
        "lld-workflow",
        *args,
        home=home,
        AGENTOS_CREDENTIAL_LIMIT="1",
        AGENTOS_SIMULATE_429="true",
        AGENTOS_SIMULATE_429_RETRY="60",
    )
    try:
        run.wait_for(r"Credential pool exhausted. Pausing all workflows")
        sent = time.monotonic()
        run.signal_group(signal.SIGINT)
        code = run.wait(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        kill_all(run)
    assert code == 130 and elapsed < 5
    assert "Earliest key free in" in run.output


def test_corrupt_checkpoint_fails_that_item_and_names_the_fix(demo: Path, home: Path) -> None:
    corrupt = checkpoint_db_path("lld_workflow", 3, demo)
    create_marked(corrupt, Owner(str(demo.resolve()), "lld_workflow", "3", "0" * 64))  # agentos's own ...
    data = bytearray(corrupt.read_bytes())
    data[100:] = b"\x00garbage" * ((len(data) - 100) // 8) + b"\x00" * ((len(data) - 100) % 8)
    corrupt.write_bytes(bytes(data))  # ... with everything after its header destroyed
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(3, 8),
        "--parallel",
        "2",
        "--provider",
        "mock",
        home=home,
    )
    assert result.returncode == 1
    assert f"[LLD-3] FAILED: Checkpoint database {corrupt} is corrupt or unreadable" in result.stdout
    assert "--fresh" in result.stdout
    assert "1 failed (LLD-3)" in result.stdout and "Summary: 1 approved" in result.stdout
    fresh = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "3", "--fresh", "--provider", "mock", home=home
    )
    assert fresh.returncode == 0


def test_kill_after_n1_then_resume_runs_n1_once(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), "--issue", "42", "--provider", "mock"]  # 42 needs one revision
    run = LiveRun("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="1")
    try:
        run.wait_for(r"Executing: N2_review")  # N1 completed and checkpointed
        os.kill(run.proc.pid, signal.SIGKILL)
        run.wait(timeout=10)
    finally:
        kill_all(run)
    assert run_cli("lld-workflow", *args, home=home).returncode == 0
    events = [e for run_dir in run_dirs(home) for e in read_audit(run_dir / "workflow-audit-42.jsonl")]
    n1_starts = [e for e in events if e["event"] == "node_start" and e["node"] == "N1_design"]
    assert [e["round"] for e in n1_starts] == [1, 2]  # round 1 once, then the revision
    assert any(e["event"] == "workflow_resume" for e in events)
