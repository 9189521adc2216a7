"""`agentos clean`: remove old run folders, and nothing else.

Only real directories named like a run folder count as runs: never a symlink's target,
never a checkpoint (those are `agentos checkpoints --prune`'s), never a mount inside one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from agentos.core.mounts import mounts_inside
from agentos.runs.history import RUN_NAME, run_folders, runs_root
from agentos.runs.kept_checkpoints import kept_checkpoints, kept_key
from agentos.runs.progress import running_pid
from agentos.runs.run_files import RunHistoryError
from agentos.runs.summary import read_summary


def newest_mtime(run_dir: Path) -> float:
    """The newest modification time of the folder and its direct entries (symlinks not followed)."""
    newest = os.lstat(run_dir).st_mtime
    try:
        with os.scandir(run_dir) as entries:
            for entry in entries:
                try:
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
                except OSError:
                    continue
    except OSError:
        pass
    return newest


@dataclass
class CleanPlan:
    remove: list[Path] = field(default_factory=list)
    keep: list[tuple[Path, str]] = field(default_factory=list)  # old folders kept, and why
    checkpoints: int = 0  # kept checkpoint DBs: clean never touches them


def plan_clean(older_than_s: float | None, now: float | None = None, keep: int = 0) -> CleanPlan:
    """Which run folders are older than the cutoff (every one when None) and not among the
    newest `keep`, and which of those must stay.

    An old folder stays when it is the newest run whose summary names a checkpoint DB
    that is still kept: a pending item needs that DB to resume, and that run's logs say
    why it stopped. A summary's checkpoint path is matched by its workspace folder and file
    name against the real files in `checkpoints/`; it is never used to find or delete anything."""
    cutoff = None if older_than_s is None else (time.time() if now is None else now) - older_than_s
    kept = kept_checkpoints()
    explains: dict[str, Path] = {}  # checkpoint file name -> newest run naming it
    folders = run_folders()
    for run_dir in folders:
        try:
            run = read_summary(run_dir)
        except RunHistoryError:
            continue
        for entry in run.items:
            key = kept_key(entry.checkpoint, kept) if entry.checkpoint else None
            if key is not None:
                explains[key] = run_dir  # folders are oldest first: the newest wins
    protected = {run_dir: name for name, run_dir in explains.items()}
    plan = CleanPlan(checkpoints=len(kept))
    for run_dir in folders[: max(len(folders) - keep, 0)]:  # oldest first: the newest `keep` stay
        try:
            if cutoff is not None and newest_mtime(run_dir) >= cutoff:
                continue
        except OSError:
            continue
        if running_pid(run_dir) is not None:
            plan.keep.append((run_dir, "it is still running"))
        elif run_dir in protected:
            plan.keep.append((run_dir, f"its logs explain the kept checkpoint {protected[run_dir]}"))
        elif inside := mounts_inside(run_dir):  # so --dry-run says so too, before anything goes
            plan.keep.append(
                (run_dir, f"another file system is mounted inside it at {inside[0]}; never crossed")
            )
        else:
            plan.remove.append(run_dir)
    return plan


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Mounted(Exception):
    def __init__(self, where: str) -> None:
        self.where = where


def remove_tree(path: Path) -> None:
    """Delete the folder `path` and everything in it, without recursion and with two
    descriptors open at most: a folder nested 3,000 deep is no RecursionError and no
    over-long path. Symlinks are removed, never followed. A folder on another file system
    (a mount point inside) is never entered: `_Mounted` names it, and it stays.
    Entries another process removes meanwhile are fine."""
    fd = os.open(path, _DIR_FLAGS)
    top = os.fstat(fd)
    names: list[str] = []  # the way down from `path`
    ids = [(top.st_dev, top.st_ino)]
    try:
        while True:
            child = _empty_but_folders(fd, top.st_dev, names)
            if child is not None:
                try:
                    child_fd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue
                info = os.fstat(child_fd)
                if info.st_dev != top.st_dev:
                    os.close(child_fd)
                    raise _Mounted("/".join([*names, child]))
                os.close(fd)
                fd, names, ids = child_fd, [*names, child], [*ids, (info.st_dev, info.st_ino)]
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            info = os.fstat(parent)
            if (info.st_dev, info.st_ino) != ids[-2]:
                os.close(parent)
                raise OSError(f"{'/'.join(names)} was moved while being removed")
            os.close(fd)
            fd = parent
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(names[-1], dir_fd=fd)
            names, ids = names[:-1], ids[:-1]
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def _empty_but_folders(fd: int, dev: int, names: list[str]) -> str | None:
    """Unlink every non-folder in the open folder `fd`; the name of one subfolder, or None."""
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                if info.st_dev != dev:
                    raise _Mounted("/".join([*names, entry.name]))
                return entry.name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=fd)
    return None


def remove_run_folder(run_dir: Path) -> bool:
    """Delete one run folder; False when it was gone already (another `clean` got there first).

    Symlinks inside are removed, never followed; the folder itself must still be a real
    directory directly under the runs root."""
    if run_dir.parent != runs_root() or not RUN_NAME.fullmatch(run_dir.name):
        raise RunHistoryError(run_dir, "not a run folder; left alone")
    try:
        mode = os.lstat(run_dir).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise RunHistoryError(run_dir, f"could not inspect it: {exc}") from None
    if not stat.S_ISDIR(mode):
        raise RunHistoryError(run_dir, "not a run folder; left alone")
    inside = mounts_inside(run_dir)  # a bind mount of this very disk has our st_dev
    if inside:
        raise RunHistoryError(
            run_dir, f"another file system is mounted inside it at {inside[0]}; never crossed, left there"
        )
    try:
        remove_tree(run_dir)
    except _Mounted as mounted:
        raise RunHistoryError(
            run_dir, f"another file system is mounted inside it at {mounted.where}; never crossed, left there"
        ) from None
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise RunHistoryError(run_dir, f"could not remove it: {exc}") from None
    return True
