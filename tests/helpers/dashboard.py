"""Run the real `agentos dashboard` as a process, and drive Debian's chromium with Playwright.

No browser is downloaded: Playwright launches the system chromium (`apt-get install chromium`;
`.ci/run` installs it when missing). Shared by the browser tests and the screenshot script.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

URL = re.compile(r"agentos dashboard: (http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+)")
PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2;alert(2)">'


def chromium_path() -> str | None:
    """The system chromium, or None (the browser tests then skip, saying so)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


class DashboardProcess:
    """`python -m agentos.cli.runs dashboard --port 0 --no-browser` in its own session."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.runs", "dashboard", "--port", "0", "--no-browser"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._found = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self._found.wait(30):
            self.stop()
            raise AssertionError("the dashboard printed no URL:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            match = URL.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._found.set()

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    @property
    def token(self) -> str:
        return self.url.rsplit("=", 1)[1]

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; SIGKILL if it has not ended in 10 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                raise AssertionError("the dashboard did not stop on SIGTERM within 10 s") from None
        return self.proc.returncode


@contextlib.contextmanager
def dashboard(env: dict[str, str]) -> Iterator[DashboardProcess]:
    server = DashboardProcess(env)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def browser(executable: str) -> Iterator[Any]:
    """A headless chromium (Playwright's sync API). `--no-sandbox`: the tests may run as root."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


def wait_until(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
