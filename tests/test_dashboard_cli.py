"""`agentos dashboard` and `agentos show --timeline` as commands: stopping, bad flags, a busy port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env
from tests.helpers.live_run import catches

AGENTOS = [sys.executable, "-m", "agentos.cli.runs"]


def _agentos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENTOS, *args], env=cli_env(home), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("after", [0.0, 0.1, 0.4])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_in_the_first_second_ends_the_dashboard_with_130(home: Path, after: float, sig: int) -> None:
    """`after` seconds after the CLI's first instant (its handlers in place): before, during
    and after uvicorn sets its own handlers, never a server left running."""
    proc = subprocess.Popen(
        [*AGENTOS, "dashboard", "--port", "0", "--no-browser"],
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not catches(proc.pid, signal.SIGTERM):
        assert time.monotonic() < deadline and proc.poll() is None, "the CLI never installed its handlers"
        time.sleep(0.002)
    time.sleep(after)
    os.kill(proc.pid, sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"still serving 20 s after a signal sent {after}s in") from None
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err


@pytest.mark.timeout(60)
def test_a_busy_port_and_bad_flags_are_clear_errors(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        taken = _agentos(home, "dashboard", "--port", str(port), "--no-browser")
    assert taken.returncode == 2 and f"cannot serve on 127.0.0.1:{port}" in taken.stderr
    assert "token=" not in taken.stdout + taken.stderr
    no_timeline = _agentos(home, "show", "-o", "x.html")
    assert no_timeline.returncode == 2 and "-o/--output goes with --timeline" in no_timeline.stderr
    no_runs = _agentos(home, "show", "--timeline")
    assert no_runs.returncode == 2 and "no finished runs" in no_runs.stderr
    bad = _agentos(home, "show", "--timeline", "../../etc")
    assert bad.returncode == 2, bad.stderr


@pytest.mark.timeout(60)
def test_the_browser_is_opened_without_the_token_on_its_command_line(home: Path, tmp_path: Path) -> None:
    """Any local user reads a command line in `ps`: the browser gets a private redirect file."""
    seen = tmp_path / "browser-argv"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\n')
    browser.chmod(0o755)
    proc = subprocess.Popen(
        [*AGENTOS, "dashboard", "--port", "0"],
        env=cli_env(home, BROWSER=f"{browser} %s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split(": ", 1)[1]
        token = url.rsplit("=", 1)[1]
        deadline = time.monotonic() + 20
        while not seen.exists() or not seen.read_text():
            assert time.monotonic() < deadline, "the browser was never started"
            time.sleep(0.05)
        argv = seen.read_text()
        assert token not in argv and argv.startswith("file://")
        opener = Path(argv.strip().removeprefix("file://"))
        assert opener.parent == home and oct(opener.stat().st_mode & 0o777) == "0o600"
        assert f'url={url}"' in opener.read_text()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(20)
    assert not opener.exists()  # removed when the dashboard stops
