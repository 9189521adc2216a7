"""Item locks: one owner at a time, the holder's pid for the message, freed by kill -9."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentos.file_lock import FileLock, lock_path, probe, workspace_lock

pytestmark = pytest.mark.timeout(60)

HOLDER = """
import sys, time
from pathlib import Path
from agentos.file_lock import FileLock
lock = FileLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def hold_in_child(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_second_owner_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "lld_workflow_3")
    child = hold_in_child(path)
    try:
        other = FileLock(path)
        assert not other.try_acquire()
        assert other.holder == child.pid
        assert probe(path) == child.pid
    finally:
        child.kill()
        child.wait(timeout=10)


def test_kill_9_frees_the_lock(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "issue_workflow_x")
    child = hold_in_child(path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    lock = FileLock(path)
    assert lock.try_acquire()
    assert probe(path) == os.getpid()
    assert path.read_text().strip() == str(os.getpid())
    lock.release()
    assert probe(path) is None


def test_probe_creates_nothing(tmp_path: Path) -> None:
    assert probe(lock_path(tmp_path, "lld_workflow_1")) is None
    assert list(tmp_path.iterdir()) == []


def test_locks_folder_is_git_ignored(tmp_path: Path) -> None:
    lock = FileLock(lock_path(tmp_path, "lld_workflow_1"))
    assert lock.try_acquire()
    lock.release()
    assert (tmp_path / ".agentos" / "locks" / ".gitignore").read_text() == "*\n"


def test_workspace_lock_waits_for_the_holder(tmp_path: Path) -> None:
    child = hold_in_child(lock_path(tmp_path, "filing"))
    killer = subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -9 {child.pid}"])
    started = time.monotonic()
    try:
        with workspace_lock(tmp_path, "filing", timeout=20):
            waited = time.monotonic() - started
            assert probe(lock_path(tmp_path, "filing")) == os.getpid()
    finally:
        child.kill()
        child.wait(timeout=10)
        killer.wait(timeout=10)
    assert waited >= 0.3, "it waited until the holder died"
