"""Item locks: one owner at a time, the holder's pid for the message, freed by kill -9."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentos.core.file_lock import FileLock, LockError, lock_path, probe, workspace_lock
from tests.helpers.cli import issue_flags, run_cli

pytestmark = pytest.mark.timeout(60)

HOLDER = """
import signal, sys, time
from pathlib import Path
from agentos.core.file_lock import FileLock
lock = FileLock(Path(sys.argv[1]))
assert lock.try_acquire()
def let_go(*_):
    lock.release()  # deletes the file as it lets go
    sys.exit(0)
signal.signal(signal.SIGTERM, let_go)
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


def test_a_hard_linked_lock_file_is_refused_and_the_outside_file_kept(tmp_path: Path) -> None:
    """Issue 20 finding 10: a hard link planted at the lock path would take our pid."""
    outside = tmp_path / "outside" / "precious.txt"
    outside.parent.mkdir()
    outside.write_text("precious data\n")
    path = lock_path(tmp_path / "ws", "lld_workflow_3")
    path.parent.mkdir(parents=True)
    os.link(outside, path)
    with pytest.raises(LockError, match="2 hard links"):
        FileLock(path).try_acquire()
    assert outside.read_text() == "precious data\n"


def test_a_fifo_at_the_lock_path_is_refused_at_once(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "lld_workflow_4")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    with pytest.raises(LockError, match="not a regular file"):
        FileLock(path).try_acquire()


def test_the_holder_removes_its_lock_file_and_a_waiter_locks_the_new_one(tmp_path: Path) -> None:
    """Issue 19 finding 10: no lock file is left behind, and deleting never splits an owner."""
    path = lock_path(tmp_path, "filing")
    lock = FileLock(path)
    assert lock.try_acquire()
    lock.release()
    assert not path.exists()
    child = hold_in_child(path)
    killer = subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -TERM {child.pid}"])
    try:
        waiter = FileLock(path)
        assert waiter.try_acquire(blocking=True, timeout=20)
        assert child.wait(timeout=10) == 0  # it let go by deleting its file
        assert os.stat(path).st_ino == os.fstat(waiter._fd or -1).st_ino  # we hold the file at the path
        assert probe(path) == os.getpid()
        waiter.release()
        assert not path.exists()
    finally:
        child.kill()
        child.wait(timeout=10)
        killer.wait(timeout=10)


@pytest.mark.timeout(120)
def test_a_run_leaves_no_lock_files_and_refuses_a_planted_hard_link(demo: Path, home: Path) -> None:
    outside = home.parent / "precious.txt"
    outside.write_text("precious data\n")
    locks = demo / ".agentos" / "locks"
    locks.mkdir(parents=True)
    os.link(outside, locks / "lld_workflow_3.lock")
    result = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(3, 5, 8), "--provider", "mock", home=home
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "hard links" in out and "LLD-3" in out
    assert outside.read_text() == "precious data\n"
    assert sorted(p.name for p in locks.iterdir()) == ["lld_workflow_3.lock"], out  # only the planted link


def test_a_lock_file_its_holder_deletes_as_we_open_it_is_opened_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder deletes its lock file as it lets go; a waiter that opened it just before
    sees a file with no link. That is no planted file: open the new one. Found by three
    machines filing in one workspace (`cannot use the lock file ...filing.lock: it has 0
    hard links`)."""
    import agentos.core.file_lock as file_lock

    path = lock_path(tmp_path, "filing")
    path.parent.mkdir(parents=True)
    path.write_text("4242\n")
    real_open = os.open
    deleted: list[str] = []

    def open_then_holder_lets_go(name: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        fd = real_open(name, flags, mode)
        if not deleted:
            deleted.append(str(name))
            os.unlink(name)  # the holder's release, between our open and our fstat
        return fd

    monkeypatch.setattr(file_lock.os, "open", open_then_holder_lets_go)
    lock = FileLock(path)
    assert lock.try_acquire()
    assert deleted == [str(path)] and path.read_text() == f"{os.getpid()}\n"
    lock.release()
