"""`agentos checkpoints` (issue 19 finding 4): list the kept checkpoint DBs, and prune them on request."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentos.core.file_lock import FileLock, lock_path
from tests.helpers.cli import cli_env, issue_flags, kept_db, run_cli

OLD = time.time() - 30 * 86400


def agentos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home),
        check=False,
    )


@pytest.mark.timeout(150)
def test_checkpoints_lists_why_and_prunes_only_ours(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(3, 8), "--parallel", "2", "--provider", "mock",
        "--item-timeout", "1s", home=home, AGENTOS_MOCK_LATENCY="3",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # timed out: both checkpoints kept
    three, eight = kept_db(home, demo, 3), kept_db(home, demo, 8)
    assert three.is_file() and eight.is_file()
    foreign = home / "checkpoints" / "other-0123456789ab" / "lld_workflow_77.db"
    foreign.parent.mkdir()
    foreign.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)  # an SQLite file without our mark
    for path in (three, foreign):
        os.utime(path, (OLD, OLD))

    listed = agentos(home, "checkpoints")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    workspace = str(demo.resolve())
    assert f"lld_workflow 3, workspace {workspace}: failed: timed out after 1s (--item-timeout)" in out, out
    assert " 30d old  lld_workflow 3" in out and "3 kept checkpoint(s)" in out
    assert "not agentos's: it is an SQLite database that agentos did not create" in out
    rows = json.loads(agentos(home, "checkpoints", "--json").stdout)
    assert {r["item"] for r in rows} == {"3", "8", None}
    assert all(r["run"] for r in rows if r["item"]) and rows[0]["age_s"] >= 29 * 86400

    dry = agentos(home, "checkpoints", "--prune", "--older-than", "7d", "--dry-run")
    assert dry.returncode == 0 and f"Would delete {three}" in dry.stdout and three.is_file(), dry.stdout
    old = agentos(home, "checkpoints", "--prune", "--older-than", "7d")
    assert old.returncode == 0, old.stderr
    assert not three.exists() and eight.is_file() and foreign.is_file(), old.stdout
    assert f"Left alone {foreign}: it is an SQLite database that agentos did not create" in old.stdout

    lock = FileLock(lock_path(demo.resolve(), "lld_workflow_8"))  # a run is working on LLD-8 now
    assert lock.try_acquire()
    try:
        busy = agentos(home, "checkpoints", "--prune")
        assert f"Left alone {eight}: a run (pid {os.getpid()}) is working on 8" in busy.stdout, busy.stdout
        assert eight.is_file()
    finally:
        lock.release()
    assert agentos(home, "checkpoints", "--prune").returncode == 0
    assert not eight.exists() and not list(eight.parent.glob("lld_workflow_8.db*")) and foreign.is_file()
    assert "No kept checkpoints" not in agentos(home, "checkpoints").stdout  # the foreign file stays listed


def test_no_kept_checkpoints_and_a_bad_age(home: Path) -> None:
    empty = agentos(home, "checkpoints")
    assert empty.returncode == 0 and "No kept checkpoints" in empty.stdout, empty.stderr
    bad = agentos(home, "checkpoints", "--prune", "--older-than", "soon")
    assert bad.returncode == 2 and "--older-than takes a positive age" in bad.stderr
