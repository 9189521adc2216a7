"""Paced batches end to end: the real CLI and SDK against a loopback rate-limited server."""

import json
from pathlib import Path

import pytest
from benchmarks.rate_limited_server import FAIL_MARKER, RateLimitedServer

from agentos.core.events import read_audit
from tests.helpers.cli import run_cli, run_dirs

pytestmark = pytest.mark.timeout(150)
KEYS = {"alpha": "sk-e2e-alpha-0123456789abcdef", "beta": "sk-e2e-beta-fedcba9876543210"}
LIMIT, WINDOW = 3, 3.0


def workspace(root: Path, items: int, failing: int | None = None) -> Path:
    ws = root / "ws"
    (ws / "issues").mkdir(parents=True)
    for n in range(1, items + 1):
        extra = f"\n\n{FAIL_MARKER}\n" if n == failing else ""
        (ws / "issues" / f"{n}.md").write_text(f"# Issue {n}\n\nStore and serve record type {n}.{extra}\n")
    return ws


def write_keys(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    entries = [{"name": name, "key": secret} for name, secret in KEYS.items()]
    path = home / "openai-credentials.json"
    path.write_text(json.dumps({"credentials": entries}))
    path.chmod(0o600)


def run(ws: Path, home: Path, server: RateLimitedServer, *extra: str, **env: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "lld-workflow",
        "--repo",
        str(ws),
        "--all",
        "--parallel",
        "4",
        "--per-key-concurrency",
        "3",
        "--provider",
        "openai:gpt-test",
        *extra,
        home=home,
        timeout=120,
        AGENTOS_OPENAI_BASE_URL=server.url + "/v1",
        **env,
    )


def everything_written(*roots: Path) -> bytes:
    """Every file agentos wrote (logs, audit, summary, checkpoints, state, LLDs, lineage)."""
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    return b"\n".join(p.read_bytes() for p in files if not p.name.endswith("-credentials.json"))


def test_paced_with_headers_no_429_and_keys_chosen_per_call(tmp_path: Path, home: Path) -> None:
    ws = workspace(tmp_path, 8, failing=8)
    write_keys(home)
    with RateLimitedServer(LIMIT, WINDOW, latency=0.05) as server:
        result = run(ws, home, server, AGENTOS_RETRY_BASE_S="0.01")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # LLD-8 fails on purpose (a 500 on every try of its review)
    assert "Summary: 7 approved, 0 need revision, 1 failed (LLD-8)" in out
    assert server.refused() == 0, out
    assert "429s per key: openai: alpha 0 (" in out
    assert "[COORDINATOR] Rate limits: paced" in out
    assert "pool at capacity: 6 req/3s across 2 openai keys;" in out
    (run_dir,) = run_dirs(home)
    summary = json.loads((run_dir / "summary.json").read_text())
    keys = summary["rate_limits"]["keys"]["openai"]
    assert {name: entry["429s"] for name, entry in keys.items()} == {"alpha": 0, "beta": 0}
    # The 500 is transient: tried 4 times (3 retries), each a paced call, none a success.
    assert sum(entry["served"] for entry in keys.values()) == server.served() - 4
    assert sum(entry["sent"] for entry in keys.values()) == server.served()
    assert {entry["limit"] for entry in keys.values()} == {LIMIT}
    used = [
        e["key_name"]
        for audit in run_dir.glob("workflow-audit-*.jsonl")
        for e in read_audit(audit)
        if e["event"] == "llm_call"
    ]
    assert len(used) == server.served() and set(used) == set(KEYS)  # the audit names each call's key
    assert "permit: key " in (run_dir / "LLD-1.log").read_text()
    # Each wait for budget is audited as permit_wait (issue 24), as often as the logs say it,
    # and the dashboard's timeline draws each one.
    waits = [
        e
        for audit in run_dir.glob("workflow-audit-*.jsonl")
        for e in read_audit(audit)
        if e["event"] == "permit_wait"
    ]
    logged = sum(log.read_text().count("s for budget") for log in run_dir.glob("LLD-*.log"))
    assert waits and len(waits) == logged, (len(waits), logged)
    assert all(e["key_name"] in KEYS and e["waited_s"] >= 0.05 for e in waits)
    from agentos.dashboard import drawing, timeline
    from agentos.dashboard.local_records import LocalRunRecords

    detail = LocalRunRecords().run(run_dir.name)
    line = timeline.build(detail)
    drawn = [s for lane in line.lanes for s in lane.segments if s.kind is timeline.SegmentKind.PERMIT]
    assert len(drawn) == len(waits)
    # The key pool over time also shows the key ledger's record of every paced call.
    assert len(detail.pool_calls) == server.served() and {c.key for c in detail.pool_calls} == set(KEYS)
    ledger_marks = [b for b in drawing.keypool_chart(line).boxes if b.kind == "ledger"]
    assert len(ledger_marks) == server.served()
    assert list((home / "checkpoints").rglob("*.db")), "the failed item keeps its checkpoint"
    written = everything_written(home, ws) + out.encode()
    for secret in KEYS.values():
        assert secret.encode() not in written


def test_adaptive_without_headers_at_most_one_refusal_per_key_per_window(tmp_path: Path, home: Path) -> None:
    ws = workspace(tmp_path, 8)
    write_keys(home)
    with RateLimitedServer(LIMIT, WINDOW, latency=0.05, headers=False) as server:
        result = run(ws, home, server)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Summary: 8 approved" in out
    assert server.served() == 16
    assert server.max_refused_per_window() <= 1, [a for a in server.admissions() if not a.accepted]
    (run_dir,) = run_dirs(home)
    keys = json.loads((run_dir / "summary.json").read_text())["rate_limits"]["keys"]["openai"]
    assert sum(entry["429s"] for entry in keys.values()) == server.refused()
    assert {entry["limit_from"] for entry in keys.values() if entry["429s"]} <= {"learned"}
    written = everything_written(home, ws) + out.encode()
    for secret in KEYS.values():
        assert secret.encode() not in written


def test_reactive_strategy_still_works_and_counts_its_429s(tmp_path: Path, home: Path) -> None:
    ws = workspace(tmp_path, 4)
    write_keys(home)
    with RateLimitedServer(2, WINDOW, latency=0.05) as server:
        result = run(ws, home, server, AGENTOS_RATE_STRATEGY="reactive")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Rate limits: reactive" in out and "permit: key" not in out
    (run_dir,) = run_dirs(home)
    keys = json.loads((run_dir / "summary.json").read_text())["rate_limits"]["keys"]["openai"]
    assert sum(entry["429s"] for entry in keys.values()) == server.refused()
    assert f"429s per key: openai: alpha {keys['alpha']['429s']}, beta {keys['beta']['429s']}\n" in out
