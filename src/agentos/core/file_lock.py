"""Advisory locks that die with their process: `fcntl.flock` on a file in the workspace.

A lock lives in `<workspace>/.agentos/locks/`, not in AGENTOS_HOME, so two runs with
different homes still meet on it. The kernel drops a flock when the last descriptor of
its open file goes away, so a crash or `kill -9` frees it; no stale lock to clean up.

The holder deletes its lock file when it lets go, while it still holds it; whoever takes
a lock checks, once it has it, that the path still names the file it locked, and starts
over if not. So nobody ever holds a lock on a file that is no longer there, and a run
leaves no lock files behind.

A lock file is opened without following a symlink, and refused unless it is a regular
file of ours with one link: a hard link planted at the path would otherwise make us
write our pid into a file elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from agentos.core.errors import AgentosError

LOCKS_DIR = (".agentos", "locks")
PROBE_RETRIES = 3  # a dry run probes with a shared lock for microseconds; do not mistake it for an owner
PROBE_PAUSE_S = 0.05
REOPEN_TRIES = 100  # a lock file deleted by its holder as we opened it: open the new one


class LockError(AgentosError):
    """The lock file cannot be created or opened (read-only workspace, wrong type)."""

    def __init__(self, path: Path, cause: str) -> None:
        self.path, self.cause = path, cause
        super().__init__(f"cannot use the lock file {path}: {cause}")


def lock_path(workspace_root: Path, name: str) -> Path:
    return workspace_root.joinpath(*LOCKS_DIR, f"{name}.lock")


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        data = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(data) if data else None
    return None


class FileLock:
    """One exclusive, non-blocking flock. `holder` is the other owner's pid when it failed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.holder: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        folder = self.path.parent
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        for _ in range(REOPEN_TRIES):
            try:
                if not folder.is_dir():
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / ".gitignore").write_text("*\n", encoding="utf-8")
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                raise LockError(self.path, exc.strerror or str(exc)) from None
            info = os.fstat(fd)
            if info.st_nlink == 0 and stat.S_ISREG(info.st_mode):
                os.close(fd)  # its holder deleted it as it let go, between our open and now
                continue
            problem = _not_ours(info)
            if problem is not None:
                os.close(fd)
                raise LockError(
                    self.path, f"{problem}; refusing to write to it (remove it if it is not needed)"
                )
            return fd
        raise LockError(self.path, f"it was deleted {REOPEN_TRIES} times as we opened it")

    def try_acquire(self, blocking: bool = False, timeout: float = 30.0) -> bool:
        """Take the lock and write our pid into it. False (and `holder` set) when another has it."""
        deadline = time.monotonic() + (timeout if blocking else PROBE_RETRIES * PROBE_PAUSE_S)
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.holder = _read_pid(fd)
                    os.close(fd)
                    return False
                os.close(fd)
                time.sleep(PROBE_PAUSE_S)
                continue
            except OSError as exc:
                os.close(fd)
                raise LockError(self.path, exc.strerror or str(exc)) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # its holder deleted it as it let go: lock the file now at the path
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd, self.holder = fd, None
        return True

    def release(self) -> None:
        """Delete the lock file (still holding it, and only if it is still ours), unlock, close."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                if _same_file(fd, self.path):
                    os.unlink(self.path)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _not_ours(info: os.stat_result) -> str | None:
    """Why an opened lock file must not be written to, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if info.st_nlink != 1:
        return f"it has {info.st_nlink} hard links (one may be a file outside the workspace)"
    if info.st_uid != os.geteuid():
        return f"it belongs to another user (uid {info.st_uid})"
    return None


def _same_file(fd: int, path: Path) -> bool:
    """Does `path` still name the file open as `fd`?"""
    try:
        on_disk, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def probe(path: Path) -> int | None:
    """Read-only: the pid holding `path` (0 if unknown), or None when it is free or absent.

    Creates nothing: a missing lock file means nobody holds it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def workspace_lock(workspace_root: Path, name: str, timeout: float = 60.0) -> Iterator[None]:
    """Hold `<workspace>/.agentos/locks/<name>.lock` for a short critical section (waits)."""
    lock = FileLock(lock_path(workspace_root, name))
    if not lock.try_acquire(blocking=True, timeout=timeout):
        raise LockError(lock.path, f"held by pid {lock.holder or 'unknown'} for more than {timeout:.0f}s")
    try:
        yield
    finally:
        lock.release()
