"""Drive a real CLI run in its own session, read its output live, and send it signals.

Left-over processes and signal handlers are read from `/proc`, on purpose: agentos runs on
Linux (fork server, process groups, `fcntl` locks), and `/proc` shows exactly what the tests
need (session, state, SigCgt), where psutil would add a compiled dependency for portability
the product does not offer.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.helpers.cli import cli_env, with_verbose

WORKER_PID = re.compile(r"^\[(?P<id>[\w-]+)\] >>> Worker process (?P<pid>\d+) started")


class LiveRun:
    def __init__(self, command: str, *args: str, home: Path, verbose: bool = True, **env: str) -> None:
        module = {
            "lld-workflow": "agentos.cli.lld",
            "issue-workflow": "agentos.cli.issue",
            "hostile-batch": "tests.helpers.hostile_batch",
        }[command]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                *(with_verbose(args, verbose) if command != "hostile-batch" else args),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_env(home, **env),
            start_new_session=True,  # its own group, like a terminal job
        )
        self.lines: list[str] = []
        self.worker_pids: dict[str, int] = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                line = line.rstrip("\n")
                self.lines.append(line)
                match = WORKER_PID.match(line)
                if match:
                    self.worker_pids[match["id"]] = int(match["pid"])
                self._cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60) -> None:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for line in self.lines if regex.search(line)) < count:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._pending(regex, count)):
                    raise AssertionError(
                        f"never saw {pattern!r} x{count}; output:\n" + "\n".join(self.lines[-40:])
                    )
                self._cond.wait(min(left, 0.2))

    def _pending(self, regex: re.Pattern[str], count: int) -> bool:
        return sum(1 for line in self.lines if regex.search(line)) >= count

    def signal_group(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.1)  # let the reader thread take the last lines
        return code

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def session_processes(self) -> list[int]:
        """Live (non-zombie) processes still in this run's session."""
        alive = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            state, session = fields[0], int(fields[3])
            if session == self.proc.pid and state != "Z":
                alive.append(int(entry.name))
        return alive


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def kill_all(run: LiveRun) -> None:
    for pid in run.session_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def catches(pid: int, sig: int) -> bool:
    """Whether `pid` has a handler for `sig` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def wait_until_handling_signals(run: LiveRun, timeout: float = 30) -> None:
    """Wait for the CLI's first instant: its SIGTERM handler (Python has none by default)."""
    deadline = time.monotonic() + timeout
    while not catches(run.proc.pid, signal.SIGTERM):
        if time.monotonic() > deadline or run.proc.poll() is not None:
            raise AssertionError("the CLI never installed its signal handlers")
        time.sleep(0.002)
