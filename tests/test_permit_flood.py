"""A flood on the permit socket during a real run (issue 20 finding 7): connections that never
authenticate, or connect and close at once, while a paced run works. The run still succeeds
and exits; before, it passed 1,024 descriptors (every item failed in select()) or its close()
blocked on its own listener's full backlog, so only Ctrl+C ended a run that had succeeded."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.cli import issue_flags, run_cli
from tests.helpers.fake_llm_servers import FakeLLMServer


class Flood:
    """Connects to the run's permit socket from the moment it appears until the run is over
    (silent connections: at most `count`, held open)."""

    def __init__(self, tmp: Path, count: int, hold: bool) -> None:
        self.tmp, self.count, self.hold = tmp, count, hold
        self.landed = 0
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        address = None
        while address is None and not self.stop.is_set():
            found = list(self.tmp.glob("agentos-permits-*/permits.sock"))
            address = str(found[0]) if found else None
            time.sleep(0.002)
        # Silent connections up to `count`; connect-and-close until the run is over, so its
        # listener's backlog is full when it closes.
        while address is not None and not self.stop.is_set() and (not self.hold or self.landed < self.count):
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            except OSError:  # our own descriptor limit: the flood is as big as it gets
                return
            sock.setblocking(False)
            try:
                sock.connect(address)
            except OSError:  # a full backlog, or the run is over
                sock.close()
                time.sleep(0.0002)
                continue
            self.landed += 1
            if self.hold:
                self.held.append(sock)  # connected, never a byte of the handshake
            else:
                sock.close()

    def __enter__(self) -> Flood:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        for sock in self.held:
            sock.close()


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("count", "hold"), [(6000, True), (0, False)], ids=["silent", "connect-and-close"])
def test_a_permit_socket_flood_during_a_real_run(demo: Path, home: Path, count: int, hold: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="agentos-flood-"))  # short: a socket path has 107 bytes at most
    try:
        with FakeLLMServer("openai") as server, Flood(tmp, count, hold) as flood:
            started = time.monotonic()
            result = run_cli(
                "lld-workflow",
                "--repo",
                str(demo),
                *issue_flags(3, 5, 8, 12),
                "--parallel",
                "1",  # items start one after another while the flood goes on
                "--provider",
                "openai:gpt-test",
                home=home,
                timeout=180,
                OPENAI_API_KEY="sk-test-flood-0123456789abcdef",
                AGENTOS_OPENAI_BASE_URL=server.url + "/v1",
                TMPDIR=str(tmp),
            )
            elapsed = time.monotonic() - started
            landed = flood.landed
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    out = result.stdout + result.stderr
    assert landed > 200, f"the flood never reached the socket ({landed}):\n{out}"
    assert result.returncode == 0, out
    assert "Summary: 4 approved" in out, out
    assert "filedescriptor out of range" not in out
    assert elapsed < 120, elapsed
