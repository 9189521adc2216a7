"""Chaos: SIGKILL, SIGINT, SIGTERM or SIGSTOP the coordinator or a worker at random instants.

Seeded, a handful of iterations. Each one asserts: no traceback, the documented exit
code, no process left behind; then re-runs until done and asserts that the workspace
is identical to an uninterrupted reference run. Each iteration is a test of its own, with
its own seeded instants, so the parallel suite spreads them over its workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.cli import DEMO, run_cli
from tests.helpers.live_run import LiveRun, kill_all, process_gone, wait_until_handling_signals

pytestmark = pytest.mark.timeout(200)
SEED = int(os.environ.get("AGENTOS_CHAOS_SEED", "20261123"))  # another seed: explore locally
ITERATIONS = 7
KEYS = (3, 5, 12, 42)
ACTIONS = (
    "sigint-group",  # Ctrl+C: 130
    "sigterm-coordinator",  # SIGTERM: 130
    "sigkill-coordinator",  # killed: the workers follow it; the next run resumes
    "sigkill-worker",  # that item fails (1); the next run resumes it
    "sigstop-worker-then-sigint",  # a stopped worker does not keep the run alive: 130
    "sigint-worker",  # one worker interrupted: its item is resumable (130)
    "ctrl-z-fg-ctrl-c",  # the terminal's group stopped, continued, then interrupted: 130
)


def _args(workspace: Path) -> list[str]:
    return ["--repo", str(workspace), "--all", "--parallel", "3", "--provider", "mock"]


def _workspace(path: Path) -> Path:
    """The demo with only KEYS' issues, so `--all` (the user's re-run) picks up what is left."""
    shutil.copytree(DEMO, path)
    for issue in (path / "issues").glob("*.md"):
        if int(issue.stem) not in KEYS:
            issue.unlink()
    return path


def _snapshot(workspace: Path) -> dict[str, str]:
    """Every file the workflows wrote, minus the status files' timestamps."""
    files: dict[str, str] = {}
    for path in sorted(workspace.rglob("*")):
        if path.is_file() and ".agentos" not in path.relative_to(workspace).parts:  # lock files
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.parent.name == "status" and path.suffix == ".json":
                data = json.loads(text)
                data.pop("updated", None)
                text = json.dumps(data, sort_keys=True)
            files[str(path.relative_to(workspace))] = text
    return files


def _settle(run: LiveRun, seconds: float = 8.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while run.session_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    return run.session_processes()


def _strike(run: LiveRun, action: str, rng: random.Random) -> None:
    if action == "ctrl-z-fg-ctrl-c":
        time.sleep(rng.uniform(0.0, 3.0))
        run.signal_group(signal.SIGSTOP)  # coordinator and fork server; workers run on
        time.sleep(rng.uniform(0.2, 1.5))
        run.signal_group(signal.SIGCONT)
        time.sleep(rng.uniform(0.0, 0.5))
        run.signal_group(signal.SIGINT)
        return
    if action in ("sigint-group", "sigterm-coordinator", "sigkill-coordinator"):
        time.sleep(rng.uniform(0.0, 3.5))  # start-up included: imports, preload, items
        sig = {"sigint-group": signal.SIGINT, "sigterm-coordinator": signal.SIGTERM}.get(
            action, signal.SIGKILL
        )
        if action == "sigint-group":
            run.signal_group(sig)
        else:
            os.kill(run.proc.pid, sig)
        return
    run.wait_for(r">>> Worker process \d+ started", timeout=60)
    time.sleep(rng.uniform(0.0, 1.5))
    pids = sorted(run.worker_pids.values())
    target = rng.choice([p for p in pids if not process_gone(p)] or pids)
    sig = {"sigkill-worker": signal.SIGKILL, "sigint-worker": signal.SIGINT}.get(action, signal.SIGSTOP)
    with contextlib.suppress(ProcessLookupError):  # it finished its item just now
        os.kill(target, sig)
    if sig == signal.SIGSTOP:
        time.sleep(rng.uniform(0.1, 1.0))
        run.signal_group(signal.SIGINT)


def _plan() -> list[str]:
    """The iterations' actions: the seed's order of ACTIONS."""
    actions = list(ACTIONS)
    random.Random(SEED).shuffle(actions)
    return actions[:ITERATIONS]


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What an uninterrupted run writes (once per test process)."""
    root = tmp_path_factory.mktemp("chaos-reference")
    reference = _workspace(root / "reference")
    done = run_cli("lld-workflow", *_args(reference), home=root / "reference-home")
    assert done.returncode == 0, done.stdout
    return _snapshot(reference)


@pytest.mark.parametrize(("n", "action"), list(enumerate(_plan())), ids=lambda v: str(v))
def test_chaos_loses_nothing_and_leaves_nothing(
    tmp_path: Path, expected: dict[str, str], n: int, action: str
) -> None:
    rng = random.Random(SEED + n)  # each iteration's own instants, whichever worker runs it
    workspace, home = tmp_path / f"ws-{n}", tmp_path / f"home-{n}"
    _workspace(workspace)
    run = LiveRun("lld-workflow", *_args(workspace), home=home, AGENTOS_MOCK_LATENCY="0.4")
    try:
        wait_until_handling_signals(run)
        _strike(run, action, rng)
        code = run.wait(timeout=40)
        leftovers = _settle(run)
    finally:
        kill_all(run)
    where = f"iteration {n}: {action}\n{run.output}"
    print(f"chaos {n}: {action} -> exit {code}, {len(run.output.splitlines())} lines")
    assert "Traceback" not in run.output and "KeyboardInterrupt" not in run.output, where
    assert leftovers == [], where
    if action == "sigkill-coordinator":
        assert code == -signal.SIGKILL, where
    elif action == "sigkill-worker":
        assert code in (1, 0), where  # 0: the worker had already finished its item
    else:
        assert code in (130, 0), where  # 0 only if everything had finished first
        assert code == 130 or "Summary: 4 approved, 0 need revision, 0 failed" in run.output, where

    for _attempt in range(3):  # resume until done: the same command, no signals
        again = run_cli("lld-workflow", *_args(workspace), home=home)
        if again.returncode == 0:
            break
    assert again.returncode == 0, f"{where}\n--- resume ---\n{again.stdout}{again.stderr}"
    assert not list((home / "checkpoints").glob("**/*.db")), where
    assert _snapshot(workspace) == expected, where
