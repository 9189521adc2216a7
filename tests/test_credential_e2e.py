"""The credential pool end to end: real parallel runs, a loopback Gemini server, real 429s."""

import json
import sqlite3
from pathlib import Path

import pytest

from agentos.core.events import read_audit
from tests.helpers.cli import issue_flags, run_cli, run_dirs
from tests.helpers.fake_llm_servers import FakeLLMServer

pytestmark = pytest.mark.timeout(150)
LIMITED = "AIzaSy-ratelimit-0123456789abcdef"
GOOD = "AIzaSy-good-fedcba9876543210"
INVALID = "AIzaSy-invalid-5555555555"
ISSUES = [*issue_flags(3, 5, 8, 17), "--issue", "26"]


def write_keys(home: Path, *entries: tuple[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    creds = [{"name": n, "type": "api_key", "key": k, "enabled": True} for n, k in entries]
    (home / "gemini-credentials.json").write_text(json.dumps({"credentials": creds}))


def all_text_under(path: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in path.rglob("*") if p.is_file())


def test_rotation_on_429_against_a_gemini_server(demo: Path, home: Path) -> None:
    write_keys(home, ("team-a", LIMITED), ("team-b", GOOD))
    with FakeLLMServer("gemini", retry_after=1) as server:
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            *ISSUES,
            "--parallel",
            "4",
            "--provider",
            "gemini:gemini-test",
            home=home,
            AGENTOS_GEMINI_BASE_URL=server.url,
        )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Summary: 5 approved" in out
    assert server.calls[LIMITED] >= 1 and server.calls[GOOD] >= 10
    assert "[COORDINATOR] Credential team-a rate-limited; cooling down for 1.0s" in out
    (run_dir,) = run_dirs(home)
    rotated = 0
    for audit in run_dir.glob("workflow-audit-*.jsonl"):
        calls = [e for e in read_audit(audit) if e["event"] == "llm_call"]
        names = [(c["key_name"], c["outcome"]) for c in calls]
        if ("team-a", "RateLimited") in names:
            assert names[-1] == ("team-b", "ok")  # continued with the other key
            assert any(e["event"] == "workflow_resume" for e in read_audit(audit))
            rotated += 1
    assert rotated >= 1
    for secret in (LIMITED, GOOD):
        assert secret not in out
        assert secret not in all_text_under(home / "logs")
        assert secret.encode() not in (home / "keys.db").read_bytes()


def test_rejected_key_is_disabled_and_named(demo: Path, home: Path) -> None:
    write_keys(home, ("broken", INVALID), ("team-b", GOOD))
    with FakeLLMServer("gemini") as server:
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            *issue_flags(3, 8),
            "--parallel",
            "2",
            "--provider",
            "gemini:gemini-test",
            home=home,
            AGENTOS_GEMINI_BASE_URL=server.url,
        )
    assert result.returncode == 0, result.stdout
    assert "[COORDINATOR] Credential broken was rejected (auth error); disabled for this run" in result.stdout
    assert server.calls[INVALID] == 1
    assert INVALID not in result.stdout


def test_exhausted_pool_pauses_then_resumes_and_finishes(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(3, 8, 17),
        "--parallel",
        "3",
        "--provider",
        "mock",
        home=home,
        AGENTOS_CREDENTIAL_LIMIT="1",
        AGENTOS_SIMULATE_429="true",
        AGENTOS_SIMULATE_429_RETRY="1",
    )
    out = result.stdout
    assert result.returncode == 0, out
    assert "1 usable key: running 1 item at a time (parallelism 3 when more keys are free)" in out
    pause = out.index("[COORDINATOR] Credential pool exhausted. Pausing all workflows...")
    resume = out.index("[COORDINATOR] Credentials available. Resuming...", pause)
    assert pause < resume
    assert "Summary: 3 approved" in out


def test_no_wait_ends_with_75_and_is_resumable(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), *issue_flags(3, 8), "--parallel", "2", "--provider", "mock"]
    result = run_cli(
        "lld-workflow",
        *args,
        "--no-wait",
        home=home,
        AGENTOS_CREDENTIAL_LIMIT="1",
        AGENTOS_SIMULATE_429="true",
        AGENTOS_SIMULATE_429_RETRY="6",
    )
    assert result.returncode == 75, result.stdout
    assert "credential pool exhausted, --no-wait" in result.stdout
    # The key is still cooling: the ledger says so, and a new run waits.
    with sqlite3.connect(home / "keys.db") as ledger:
        names = [row[0] for row in ledger.execute("SELECT name FROM keys WHERE cooldown_until > 0")]
    assert "mock-key-1" in names
    again = run_cli("lld-workflow", *args, home=home, timeout=120, AGENTOS_CREDENTIAL_LIMIT="1")
    assert "still cooling down from an earlier run" in again.stdout
    assert again.returncode == 0, again.stdout


def test_missing_keys_is_a_usage_error(demo: Path, home: Path) -> None:
    result = run_cli("lld-workflow", "--repo", str(demo), "--all", "--provider", "openai", home=home)
    assert (
        result.returncode == 2
        and "no API key for openai: set OPENAI_API_KEY, or add enabled entries to" in result.stderr
    )


def test_paused_run_resumes_when_a_key_is_added_to_the_file(demo: Path, home: Path) -> None:
    from tests.helpers.live_run import LiveRun, kill_all

    home.mkdir(parents=True)
    path = home / "mock-credentials.json"
    path.write_text(json.dumps({"credentials": [{"name": "spent", "key": "mock-quota-spent-key"}]}))
    run = LiveRun(
        "lld-workflow",
        "--repo",
        str(demo),
        "--issue",
        "3",
        "--parallel",
        "2",
        "--provider",
        "mock",
        home=home,
    )
    try:
        run.wait_for(r"Credential spent quota exhausted")
        run.wait_for(r"Credential pool exhausted. Pausing all workflows")
        entries = [
            {"name": "spent", "key": "mock-quota-spent-key"},
            {"name": "fresh", "key": "mock-good-key-42"},
        ]
        path.write_text(json.dumps({"credentials": entries}))
        code = run.wait(timeout=60)
    finally:
        kill_all(run)
    out = run.output
    assert code == 0, out
    assert "[COORDINATOR] Credentials file changed: added or re-enabled fresh" in out
    assert "[COORDINATOR] Credentials available. Resuming..." in out
    assert "still cooling down from an earlier run" not in out
    assert "key fresh" in out and "Summary: 1 approved" in out
