"""What a real provider does wrong, through the real CLI and a loopback server in the
provider's wire format: every key rejected, a passing 502, a refused port, a 404, a
trickled body, a 20 MB answer and malformed answers (issue 19 findings 1-2, issue 20
findings 3, 13 and 14)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentos.core.events import read_audit
from tests.helpers.cli import issue_flags, run_cli
from tests.helpers.fake_llm_servers import FakeLLMServer

pytestmark = pytest.mark.timeout(120)
BAD = "sk-invalid-0123456789abcdef"
GOOD = "sk-good-0123456789abcdef"
FAST_RETRIES = {"AGENTOS_RETRY_BASE_S": "0.05"}


def openai_run(
    demo: Path, home: Path, server_url: str, *args: str, key: str = GOOD, timeout: float = 90, **env: str
) -> tuple[int, str, float]:
    started = time.monotonic()
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *args,
        "--provider",
        "openai:gpt-test",
        home=home,
        timeout=timeout,
        OPENAI_API_KEY=key,
        AGENTOS_OPENAI_BASE_URL=server_url + "/v1",
        **env,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def llm_calls(home: Path) -> list[dict[str, object]]:
    """Every provider call the audits of `home` hold (batch runs and single-item runs)."""
    calls: list[dict[str, object]] = []
    for audit in sorted((home / "logs").rglob("*audit*.jsonl")):
        calls += [e for e in read_audit(audit) if e["event"] == "llm_call"]
    return calls


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections for as long as the block runs: bound, never listening.
    A port merely found free and closed could be taken meanwhile by another test's server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


# -- every key rejected (19.1) --------------------------------------------------------


@pytest.mark.parametrize("items", [["--all", "--parallel", "3"], issue_flags(3)])
def test_every_key_rejected_stops_at_once_with_exit_2(demo: Path, home: Path, items: list[str]) -> None:
    with FakeLLMServer("openai", echo_key=True) as server:  # its 401 echoes the key, as OpenAI's does
        code, out, elapsed = openai_run(demo, home, server.url, *items, key=BAD, timeout=60)
    assert code == 2, out
    assert elapsed < 30, elapsed  # it waited until killed before
    assert "No usable key left: openai: openai-api-key (from $OPENAI_API_KEY) was rejected" in out
    assert "Fix or replace the key(s)" in out
    assert "before it started" not in out.split("[LLD-3]")[-1].split("\n")[0]
    assert BAD not in out


def test_each_rejected_key_of_a_credentials_file_is_named(demo: Path, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    entries = [{"name": f"team-{i}", "key": f"{BAD}{i}"} for i in (1, 2)]
    path = home / "openai-credentials.json"
    path.write_text(json.dumps({"credentials": entries}))
    path.chmod(0o600)
    with FakeLLMServer("openai") as server:
        code, out, _ = openai_run(demo, home, server.url, *issue_flags(3, 5), "--parallel", "2", key="")
    assert code == 2, out
    for name in ("team-1", "team-2"):
        assert f"No usable key left: openai: {name} (from credentials file {path}) was rejected" in out
    assert "LLD-3  interrupted" not in out or "before it started" not in out


# -- transient failures are retried (19.2) --------------------------------------------


def test_a_passing_502_is_retried_and_the_retries_are_audited(demo: Path, home: Path) -> None:
    with FakeLLMServer("openai", faults=["502", "502"]) as server:
        code, out, _ = openai_run(demo, home, server.url, *issue_flags(3, 5), **FAST_RETRIES)
        host = server.url.removeprefix("http://")
    assert code == 0, out
    failed = [c for c in llm_calls(home) if c["outcome"] == "ProviderError"]
    assert len(failed) == 2, failed
    for call in failed:
        assert f"HTTP 502 from {host} (model gpt-test): upstream said 502" in str(call["error"])
        assert "second line" not in str(call["error"])
        assert isinstance(call["retry_in_s"], float)
    assert "trying again in" in out


def test_a_refused_port_names_the_host_and_is_retried_then_fails(demo: Path, home: Path) -> None:
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        code, out, _ = openai_run(demo, home, url, *issue_flags(3), **FAST_RETRIES)
    assert code == 1, out
    assert f"openai: cannot reach 127.0.0.1:{url.rsplit(':', 1)[1]} (connection refused)" in out
    tries = [c for c in llm_calls(home) if c["outcome"] == "ProviderError"]
    assert len(tries) == 4, tries  # the first try and 3 retries
    assert "Traceback" not in out


def test_a_404_names_model_and_host_once_and_the_call_is_counted(demo: Path, home: Path) -> None:
    with FakeLLMServer("openai", fault="404") as server:
        code, out, _ = openai_run(demo, home, server.url, *issue_flags(3, 5), "--parallel", "1")
        host = server.url.removeprefix("http://")
    assert code == 1, out
    line = next(line for line in out.splitlines() if "FAILED" in line and "LLD-3" in line)
    assert f"HTTP 404 from {host} (model gpt-test): upstream said 404" in line
    assert line.count("404") == 2, line  # the status once, and the server's own words
    assert len([c for c in llm_calls(home) if c["outcome"] == "ProviderError"]) == 2  # not retried
    assert "openai-api-key 0 (2 calls)" in out  # one per item: each was made and answered


# -- a bounded call (20.3, 20.14) and malformed answers (20.13) -----------------------


def test_a_trickled_answer_is_cut_at_provider_timeout_and_tried_again(demo: Path, home: Path) -> None:
    (demo / "agentos.toml").write_text('provider_timeout = "2s"\n')
    with FakeLLMServer("openai", faults=["trickle"], trickle_s=0.5) as server:
        code, out, elapsed = openai_run(demo, home, server.url, *issue_flags(3), **FAST_RETRIES)
    assert code == 0, out
    (cut,) = [c for c in llm_calls(home) if c["outcome"] == "ProviderError"]
    assert "no complete answer within 2s (provider_timeout)" in str(cut["error"])
    assert float(str(cut["duration_s"])) < 6, cut  # the trickle would take about 150 s
    assert elapsed < 60


def test_a_20mb_answer_fails_the_call_clearly(demo: Path, home: Path) -> None:
    with FakeLLMServer("openai", faults=["huge"]) as server:
        code, out, _ = openai_run(demo, home, server.url, *issue_flags(3), **FAST_RETRIES)
    assert code == 1, out
    assert "answer larger than 8 MiB, the most agentos accepts from a provider" in out
    assert not list((demo / "docs" / "lld" / "active").glob("LLD-003*"))
    assert len(llm_calls(home)) == 1  # not retried: it would only come back as large


@pytest.mark.parametrize(
    ("kind", "fault", "what"),
    [
        ("openai", "badjson", "malformed answer from"),
        ("openai", "nested", "malformed answer from"),
        ("openai", "wrongtype", "malformed answer from"),
        ("anthropic", "wrongtype", "malformed answer from"),
        ("gemini", "wrongtype", "gemini: "),
        ("gemini", "nested", "malformed answer from"),
    ],
)
def test_a_malformed_answer_is_one_clear_line(
    demo: Path, home: Path, kind: str, fault: str, what: str
) -> None:
    with FakeLLMServer(kind, fault=fault) as server:
        env = {
            "openai": {"OPENAI_API_KEY": GOOD, "AGENTOS_OPENAI_BASE_URL": server.url + "/v1"},
            "anthropic": {"ANTHROPIC_API_KEY": GOOD, "AGENTOS_ANTHROPIC_BASE_URL": server.url},
            "gemini": {"GEMINI_API_KEY": GOOD, "AGENTOS_GEMINI_BASE_URL": server.url},
        }[kind]
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            "--issue",
            "3",
            "--provider",
            f"{kind}:m-test",
            home=home,
            **env,
        )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert failed and what in failed[0], out
    assert server.url.removeprefix("http://") in failed[0]
