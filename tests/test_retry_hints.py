"""Provider numbers are untrusted: absurd retry hints are clamped, never crash, never stored."""

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from agentos.core.retry_hints import MAX_RESET_AHEAD_S, MAX_RETRY_AFTER_S, clamp_reset_at, clamp_retry_after
from agentos.llm.base import CompletionRequest, parse_retry_after
from agentos.llm.errors import QuotaExhausted, RateLimited
from agentos.llm.gemini_api import retry_delay
from agentos.llm.mock import simulated_retry_after
from tests.helpers.cli import issue_flags, run_cli
from tests.helpers.fake_llm_servers import FakeLLMServer
from tests.test_providers import make

pytestmark = pytest.mark.timeout(150)
ABSURD = ["inf", "-inf", "nan", "1e18", "-5", "1e309", "soon", "9" * 400, "", " 12 "]
REQ = CompletionRequest(prompt="Write a design", system="be brief")


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-finite number {name} written")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("raw", ABSURD)
def test_retry_after_header_is_clamped_or_ignored(raw: str) -> None:
    for headers in ({"retry-after": raw}, {"retry-after-ms": raw}):
        value = parse_retry_after(headers)
        assert value is None or (math.isfinite(value) and 0 <= value <= MAX_RETRY_AFTER_S)
    assert parse_retry_after({"retry-after": "1e18"}) == MAX_RETRY_AFTER_S
    assert parse_retry_after({"retry-after": "inf"}) is None  # falls back to the backoff
    assert parse_retry_after({"retry-after": " 12 "}) == 12


def test_errors_clamp_what_they_are_given() -> None:
    assert RateLimited(float("inf")).retry_after is None
    assert RateLimited(1e18).retry_after == MAX_RETRY_AFTER_S
    assert RateLimited(float("nan")).retry_after is None
    assert QuotaExhausted(float("inf")).reset_at is None
    reset = QuotaExhausted(1e18).reset_at
    assert reset is not None and reset <= time.time() + MAX_RESET_AHEAD_S + 1
    assert clamp_retry_after(-1) is None and clamp_reset_at(float("nan")) is None


@pytest.mark.parametrize("raw", ABSURD)
def test_gemini_retry_info_is_clamped(raw: str) -> None:
    body = {
        "error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{raw}s"}]}
    }
    value = retry_delay(body)
    assert value is None or (math.isfinite(value) and 0 <= value <= MAX_RETRY_AFTER_S)
    assert retry_delay({"error": {"details": ["junk", {"@type": 5}, {"violations": "x"}]}}) is None


@pytest.mark.parametrize("raw", ABSURD)
def test_the_mocks_simulated_hint_is_clamped(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOS_SIMULATE_429_RETRY", raw)
    value = simulated_retry_after()
    assert value is None or (math.isfinite(value) and 0 <= value <= MAX_RETRY_AFTER_S)


@pytest.mark.parametrize("kind", ["gemini", "anthropic", "openai"])
@pytest.mark.parametrize("raw", ["inf", "1e18", "nan", "-3"])
def test_each_sdk_client_clamps_the_servers_hint(kind: str, raw: str) -> None:
    with FakeLLMServer(kind, retry_after=raw) as server, pytest.raises(RateLimited) as info:
        make(kind, server.url, "ratelimit-key-1").complete(REQ)
    value = info.value.retry_after
    assert value is None or (math.isfinite(value) and 0 <= value <= MAX_RETRY_AFTER_S)
    if raw == "1e18":
        assert value == MAX_RETRY_AFTER_S


@pytest.mark.parametrize("raw", ["inf", "1e18", "nan", "-inf", "1e309"])
def test_github_rate_limit_numbers_are_clamped(raw: str) -> None:
    from tests.helpers.fake_github import FakeGitHub
    from tests.test_github import tracker

    with FakeGitHub() as server:
        waits: list[float] = []
        t = tracker(server, waits)
        server.primary_limit_once, server.reset_at = True, raw
        assert t.open_issue_numbers() == [1, 2, 4]
        server.secondary_limit_once, server.retry_after = True, raw
        t.create_issue("x", "y", [])
    assert len(waits) == 2 and all(math.isfinite(w) and 1.0 <= w <= MAX_RETRY_AFTER_S for w in waits)


def test_github_link_header_parses_in_linear_time() -> None:
    from agentos.tracker.github_http import _NEXT

    started = time.thread_time()  # CPU time: a loaded machine cannot stretch it
    assert _NEXT.search("<" * 100_000 + '>; rel="prev"') is None
    assert time.thread_time() - started < 0.5


def write_openai_keys(home: Path, *entries: tuple[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    creds = [{"name": n, "type": "api_key", "key": k, "enabled": True} for n, k in entries]
    (home / "openai-credentials.json").write_text(json.dumps({"credentials": creds}))


@pytest.mark.parametrize("raw", ["inf", "1e18"])
def test_absurd_retry_after_from_a_server_in_a_real_batch_run(demo: Path, home: Path, raw: str) -> None:
    """Issue 13: `retry-after: inf` crashed the coordinator and saved Infinity to the state file."""
    write_openai_keys(home, ("limited", "sk-ratelimit-0123456789"), ("good", "sk-good-0123456789"))
    with FakeLLMServer("openai", retry_after=raw) as server:
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            *issue_flags(3, 8),
            "--parallel",
            "2",
            "--provider",
            "openai:gpt-test",
            home=home,
            AGENTOS_OPENAI_BASE_URL=server.url + "/v1",
        )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out and "Summary: 2 approved" in out
    assert server.calls["sk-ratelimit-0123456789"] >= 1
    with sqlite3.connect(home / "keys.db") as ledger:
        (until,) = ledger.execute("SELECT cooldown_until FROM keys WHERE name = 'limited'").fetchone()
    assert math.isfinite(until) and until <= time.time() + MAX_RETRY_AFTER_S + 1
    (summary,) = home.glob("logs/parallel/*/summary.json")
    strict_json(summary.read_text())
    for audit in home.glob("logs/parallel/*/workflow-audit-*.jsonl"):
        for line in audit.read_text().splitlines():
            strict_json(line)
    # The next run starts, and is not parked for ever by what the first one stored.
    again = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        "--issue",
        "5",
        "--parallel",
        "1",
        "--provider",
        "mock",
        home=home,
    )
    assert again.returncode == 0, again.stdout + again.stderr


def test_simulated_infinite_hint_in_a_real_batch_run(demo: Path, home: Path) -> None:
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
        AGENTOS_SIMULATE_429="true",
        AGENTOS_SIMULATE_429_RETRY="inf",
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out and "Summary: 2 approved" in out
    with sqlite3.connect(home / "keys.db") as ledger:
        marks = ledger.execute("SELECT cooldown_until, quota_until FROM keys").fetchall()
    assert marks and all(math.isfinite(v) and v < time.time() + 2 * 86400 for row in marks for v in row)
