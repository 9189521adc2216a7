"""A stopped fork server (issue 20 finding 18): start-up has a deadline, and the fork server
and resource tracker end with the coordinator, so `lld-workflow ... | cat` ends at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env

pytestmark = pytest.mark.timeout(120)


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def fork_server_of(pid: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children_of(pid):
            if "forkserver" in cmdline(child):
                return child
        time.sleep(0.01)
    raise AssertionError("no fork server appeared")


def start(demo: Path, home: Path, **env: str) -> subprocess.Popen[bytes]:
    """`lld-workflow ... | cat`: our stdout is a pipe that ends when every writer is gone."""
    return subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.lld", "--repo", str(demo), "--all", "--provider", "mock"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=cli_env(home, **env),
    )


def test_a_stopped_fork_server_during_start_up_ends_the_run_at_its_deadline(demo: Path, home: Path) -> None:
    run = start(demo, home, AGENTOS_STARTUP_TIMEOUT="3")
    server = fork_server_of(run.pid)
    os.kill(server, signal.SIGSTOP)
    try:
        started = time.monotonic()
        out, _ = run.communicate(timeout=60)  # EOF: every holder of the pipe is gone
        elapsed = time.monotonic() - started
    finally:
        run.kill()
        os.kill(server, signal.SIGKILL) if os.path.exists(f"/proc/{server}") else None
    text = out.decode()
    assert run.returncode == 1, text
    assert "the fork server (preloading the stack) did not answer within 3s" in text
    assert elapsed < 30
    assert not os.path.exists(f"/proc/{server}") or "Z" in Path(f"/proc/{server}/stat").read_text().split()[2]


def test_ctrl_c_in_the_first_second_ends_everything_and_the_pipe(demo: Path, home: Path) -> None:
    run = start(demo, home)
    server = fork_server_of(run.pid)
    os.kill(server, signal.SIGSTOP)  # the worst case: a fork server that cannot notice anything
    os.kill(run.pid, signal.SIGINT)
    try:
        started = time.monotonic()
        out, _ = run.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        run.kill()
        if os.path.exists(f"/proc/{server}"):
            os.kill(server, signal.SIGKILL)
    assert run.returncode == 130, out.decode()
    assert elapsed < 10, elapsed


def test_a_fork_server_stopped_mid_run_fails_the_stalled_start_only(demo: Path, home: Path) -> None:
    """Stopped after the warm-up: the next start stalls, the server is killed and named, and the
    items already running end as they would have (not "exited with code 255")."""
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentos.cli.lld",
            "--repo",
            str(demo),
            "--parallel",
            "2",
            "--provider",
            "mock",
        ]
        + [flag for n in (3, 5, 8, 12) for flag in ("--issue", str(n))]
        + ["-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=cli_env(home, AGENTOS_STARTUP_TIMEOUT="8", AGENTOS_MOCK_LATENCY="1.2"),  # a preload, loaded
        text=True,
    )
    assert run.stdout is not None
    lines: list[str] = []
    server = None
    try:
        for line in run.stdout:
            lines.append(line)
            if server is None and sum(">>> Worker process" in seen for seen in lines) == 2:
                server = fork_server_of(run.pid)
                os.kill(server, signal.SIGSTOP)  # both running; the next start will stall
        code = run.wait(30)
    finally:
        run.kill()
        if server is not None and os.path.exists(f"/proc/{server}"):
            os.kill(server, signal.SIGKILL)
    text = "".join(lines)
    assert server is not None, text
    assert code == 1, text
    assert "did not answer within 8s (AGENTOS_STARTUP_TIMEOUT)" in text, text
    assert "exited with code 255" not in text, text
    assert "approved" in text.split("Summary:")[-1], text
