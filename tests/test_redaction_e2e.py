"""Issue 13, end to end: a provider that echoes the key in every error body, and a worker
that prints it in split writes. The key must appear in no file under AGENTOS_HOME
(SQLite DBs included, read as bytes), none in the workspace, and none on any console."""

import io
import json
from pathlib import Path

import pytest

from agentos.core.redaction import clear_secrets, register_secret
from agentos.engine.console import ConsoleRouter
from agentos.engine.coordinator import ParallelCoordinator
from agentos.workflows.item import ItemJob, WorkflowKind
from tests.helpers.cli import run_cli
from tests.helpers.fake_llm_servers import FakeLLMServer, echo
from tests.test_worker_launcher import hostile_runner

pytestmark = pytest.mark.timeout(240)
KEYS = {
    "rejected": "sk-invalid-9f8e7d6c5b4a39281706",
    "limited": "sk-ratelimit-0a1b2c3d4e5f60718293",
    "good": "sk-good-5c6d7e8f9a0b1c2d3e4f",
}


def all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    """Every file, as bytes, except the one place a key belongs: the credentials file."""
    return [
        (p, p.read_bytes()) for p in root.rglob("*") if p.is_file() and p.name != "openai-credentials.json"
    ]


def leaks(secret: str, roots: list[Path], consoles: list[str]) -> list[str]:
    found = [str(p) for root in roots for p, data in all_bytes(root) if secret.encode() in data]
    found += [f"console #{i}" for i, text in enumerate(consoles) if secret in text]
    return found


def test_no_key_reaches_any_sink(demo: Path, home: Path) -> None:
    home.mkdir(parents=True)
    entries = [{"name": n, "type": "api_key", "key": k, "enabled": True} for n, k in KEYS.items()]
    (home / "openai-credentials.json").write_text(json.dumps({"credentials": entries}))
    issue = demo / "issues" / "8.md"
    issue.write_text(issue.read_text() + "\nagentos-test-500: the server fails on this one.\n")
    echo = demo / "issues" / "3.md"
    echo.write_text(echo.read_text() + "\nagentos-test-echo: the server echoes the key in its answers.\n")
    consoles: list[str] = []
    with FakeLLMServer("openai", retry_after=1, echo_key=True) as server:
        common = ["--repo", str(demo), "--provider", "openai:gpt-test"]
        env = {"AGENTOS_OPENAI_BASE_URL": server.url + "/v1"}
        batch = run_cli("lld-workflow", *common, "--all", "--parallel", "2", home=home, timeout=180, **env)
        consoles += [batch.stdout, batch.stderr]
        single = run_cli("lld-workflow", *common, "--issue", "8", "--fresh", home=home, timeout=120, **env)
        consoles += [single.stdout, single.stderr]
    # The attack happened: every key was used, and the server echoed each one back.
    assert all(server.calls[k] >= 1 for k in KEYS.values()), server.calls
    assert batch.returncode == 1 and single.returncode == 1, batch.stdout + single.stdout
    assert "Credential rejected was rejected" in batch.stdout
    assert "Credential limited rate-limited" in batch.stdout
    summary, _single = sorted(home.glob("logs/parallel/*/summary.json"))  # the single run has one too
    failed = [i for i in json.loads(summary.read_text())["items"] if i["item"] == "LLD-8"]
    assert "Incorrect API key provided: <key:" in failed[0]["error"]
    assert "Incorrect API key provided: <key:" in single.stdout
    assert "The key you sent: <key:" in (demo / "docs" / "lld" / "active" / "LLD-003.md").read_text()

    # A worker that prints the key in split writes and across a 64 KiB read.
    register_secret(KEYS["good"], "good")
    try:
        sink = io.StringIO()
        folder = home / "logs" / "hostile"
        folder.mkdir(parents=True)
        coordinator = ParallelCoordinator(1)
        runner = hostile_runner(folder, coordinator, ConsoleRouter(sink), {"LEAKED": KEYS["good"]})
        job = ItemJob(
            WorkflowKind.ISSUE,
            "splitkey",
            str(demo),
            str(folder / "x.db"),
            str(folder / "a.jsonl"),
            "mock",
            "mock",
        )
        coordinator.execute_parallel([job], runner, lambda j: j.item_id)
    finally:
        clear_secrets()
    consoles.append(sink.getvalue())
    assert "<key:good>" in (folder / "ISSUE-splitkey.log").read_text()

    assert list(home.glob("checkpoints/**/*.db")), "the failed item's checkpoint is kept (and searched)"
    for name, secret in KEYS.items():
        assert leaks(secret, [home, demo], consoles) == [], f"key {name} leaked"


def secret_parts(shown: str, form: str, secret: str) -> list[str]:
    """Every 10-character window of the part of `shown` that depends on the secret alone
    (base64 edges mix in the bytes beside it): none may survive redaction, not even a piece."""
    core = shown
    if form.startswith("b64-"):
        offset = int(form[-1])
        core = shown[-(-8 * offset // 6) : 8 * (offset + len(secret.encode())) // 6]
    return [core[i : i + 10] for i in range(len(core) - 9)]


@pytest.mark.parametrize(
    "form",
    ["url", "url-path", "url-lowerhex", "json-slash", "upper", "lower", "hex", "b64-0", "b64-1", "b64-2"],
)
def test_an_encoded_echo_of_the_key_reaches_no_sink(demo: Path, home: Path, form: str) -> None:
    """Issue 20 finding 6: the key echoed encoded in an answer (issue 3: into the LLD) and in
    the answer and an error (issue 5: its review is refused, so its checkpoint is kept)."""
    secret = "sk-good-Zq9+/x7Y_w8v=0aBcD-1"  # characters that URL and base64 encodings change
    for number, extra in ((3, ""), (5, "\nagentos-test-review-400: the review fails.\n")):
        issue = demo / "issues" / f"{number}.md"
        issue.write_text(issue.read_text() + "\nagentos-test-echo: echo the key.\n" + extra)
    with FakeLLMServer("openai", echo_key=True, echo_form=form) as server:
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            "--issue",
            "3",
            "--issue",
            "5",
            "--provider",
            "openai:gpt-test",
            home=home,
            OPENAI_API_KEY=secret,
            AGENTOS_OPENAI_BASE_URL=server.url + "/v1",
        )
    assert result.returncode == 1, result.stdout + result.stderr
    echoed = echo(secret, form)
    assert echoed != secret
    lld = (demo / "docs" / "lld" / "active" / "LLD-003.md").read_text()
    assert "The key you sent: " in lld and "<key:openai-api-key>" in lld  # the echo arrived, redacted
    refused = [line for line in result.stdout.splitlines() if "review refused for key" in line]
    assert refused and all("<key:openai-api-key>" in line for line in refused)  # so did the error's
    assert list(home.glob("checkpoints/**/*.db")), "issue 5's checkpoint is kept, and searched"
    (summary,) = home.glob("logs/parallel/*/summary.json")
    assert "<key:openai-api-key>" in summary.read_text()
    consoles = [result.stdout, result.stderr]
    for shown in [secret, echoed, *secret_parts(echoed, form, secret)]:
        assert leaks(shown, [home, demo], consoles) == [], shown
