"""Two real runs on one key pool, at once: the real CLI, the real SDK, one loopback server
that allows each key LIMIT calls per WINDOW seconds, one home (and so one key ledger)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.rate_limited_server import RateLimitedServer

from tests.helpers.cli import cli_env, with_verbose
from tests.helpers.live_run import LiveRun

pytestmark = pytest.mark.timeout(240)
KEYS = {"alpha": "sk-pool-alpha-0123456789abcdef", "beta": "sk-pool-beta-fedcba9876543210"}
LIMIT, WINDOW = 3, 3.0


def workspace(root: Path, name: str, items: int) -> Path:
    ws = root / name
    (ws / "issues").mkdir(parents=True)
    for n in range(1, items + 1):
        (ws / "issues" / f"{n}.md").write_text(f"# Issue {n}\n\nStore and serve record type {n} of {name}.\n")
    return ws


def write_keys(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "openai-credentials.json"
    path.write_text(json.dumps({"credentials": [{"name": n, "key": s} for n, s in KEYS.items()]}))
    path.chmod(0o600)


def start(ws: Path, home: Path, server: RateLimitedServer) -> subprocess.Popen[str]:
    args = [
        "--repo",
        str(ws),
        "--all",
        "--parallel",
        "4",
        "--per-key-concurrency",
        "3",
        "--provider",
        "openai:gpt-test",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.lld", *with_verbose(args, True)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(home, AGENTOS_OPENAI_BASE_URL=server.url + "/v1"),
    )


def approved(home: Path, ws: Path) -> int:
    return sum(1 for p in (ws / "docs" / "lld" / "status").glob("*.json") if '"approved"' in p.read_text())


def agentos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home),
        check=False,
    )


def test_two_runs_at_once_share_the_keys_budget(tmp_path: Path, home: Path) -> None:
    write_keys(home)
    first, second = workspace(tmp_path, "first", 6), workspace(tmp_path, "second", 6)
    with RateLimitedServer(LIMIT, WINDOW, latency=0.1) as server:
        runs = [start(first, home, server), start(second, home, server)]
        outs = [run.communicate(timeout=200)[0] for run in runs]
        refused, served = server.refused(), server.served()
    for run, out in zip(runs, outs, strict=True):
        assert run.returncode == 0, out
        assert "Traceback" not in out
    assert approved(home, first) == 6 and approved(home, second) == 6  # every item done, once
    assert served == 24  # 2 runs x 6 items x (draft + review): no item was done twice
    assert refused <= 2 * len(KEYS), f"{refused} refusals: the runs did not pace against each other"
    ledger = (home / "keys.db").read_bytes() + b"".join(p.read_bytes() for p in home.glob("keys.db-*"))
    for secret in KEYS.values():
        assert secret.encode() not in ledger and all(secret not in out for out in outs)
    listed = agentos(home, "keys", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["key"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == set(KEYS) and sum(r["calls_last_hour"] for r in rows.values()) >= 24
    assert all(row["budget"].startswith(f"{LIMIT} req/") for row in rows.values()), rows
    assert all(secret not in listed.stdout for secret in KEYS.values())


def test_a_run_killed_mid_batch_leaves_nothing_that_blocks_the_other(tmp_path: Path, home: Path) -> None:
    """kill -9 of one run: the other goes on and finishes; the killed one resumes later."""
    write_keys(home)
    doomed_ws, survivor_ws = workspace(tmp_path, "doomed", 8), workspace(tmp_path, "survivor", 6)
    with RateLimitedServer(LIMIT, WINDOW, latency=0.3) as server:
        doomed = LiveRun(
            "lld-workflow",
            "--repo", str(doomed_ws), "--all", "--parallel", "4", "--per-key-concurrency", "3",
            "--provider", "openai:gpt-test",
            home=home,
            AGENTOS_OPENAI_BASE_URL=server.url + "/v1",
        )  # fmt: skip
        survivor = start(survivor_ws, home, server)
        try:
            doomed.wait_for(r"permit: key", count=3, timeout=90)
            doomed.signal_group(signal.SIGKILL)
            doomed.wait(timeout=30)
        finally:
            if doomed.proc.poll() is None:
                doomed.signal_group(signal.SIGKILL)
        out = survivor.communicate(timeout=200)[0]
        assert survivor.returncode == 0, out
        assert approved(home, survivor_ws) == 6
        again = start(doomed_ws, home, server)
        again_out = again.communicate(timeout=200)[0]
        assert again.returncode == 0, again_out
        assert approved(home, doomed_ws) == 8
        assert server.max_refused_per_window() <= 2
    with sqlite3.connect(home / "keys.db") as ledger:
        in_flight = ledger.execute("SELECT count(*) FROM calls WHERE expires_at IS NULL").fetchone()[0]
    assert in_flight <= 4  # only the killed run's own calls, which the others time out by themselves
