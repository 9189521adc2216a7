"""Atomic file writes: readers see the old file or the whole new one, even after a crash.

One helper for every file agentos rewrites (LLDs, lineage, summary.json, the credential
state): a unique temp file in the same folder, fsync, `os.replace`, then fsync the folder,
so a power cut cannot leave a renamed but empty file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

# The temp files of `write_text_atomic`: `.NAME.` + 8 characters of tempfile's alphabet + `.tmp`.
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def is_temp_file(name: str) -> bool:
    """Whether `name` is one of our temp files: an unfinished write, never a user's file."""
    return _TEMP.match(name) is not None


def sweep_temp_files(folder: Path, name: str | None = None) -> None:
    """Remove what a writer killed mid-write (SIGKILL, power cut) left in `folder`: the temp
    files of `name`, or all of ours. Only where one writer owns the files (an item's, under its
    lock); the finished file, if any, is untouched."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if is_temp_file(entry.name) and (name is None or entry.name.startswith(f".{name}.")):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)


def write_text_atomic(path: Path, text: str, *, make_parents: bool = True, sweep: bool = False) -> None:
    """Replace `path` with `text` (UTF-8) atomically. The temp file never outlives a failure;
    with `sweep` (one writer owns `path`), neither does one a killed earlier writer left."""
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        if sweep:
            sweep_temp_files(path.parent, path.name)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise with_filename(exc, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise with_filename(exc, path) from None
        raise
    _fsync_folder(path.parent)


def with_filename(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file we were writing: a full disk reported without a
    path would send the user to the wrong disk."""
    if exc.filename is not None and exc.errno is not None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


MAX_SIBLINGS = 1000


def move_without_replacing(source: Path, target: Path) -> Path:
    """Move `source` to `target`, or, when `target` exists, to `<stem>-2<suffix>`, `-3`...
    Never replaces a file: `os.link` fails on an existing name, atomically. Returns the path used.

    A name that already is `source` (a run killed between the link and the unlink) is the
    move half done: it is finished, not copied again to a numbered sibling. Where hard
    links are not supported, the file is copied into a name created with O_EXCL instead."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_SIBLINGS + 1):
        candidate = target if n == 1 else target.with_name(f"{target.stem}-{n}{target.suffix}")
        try:
            _link_or_copy(source, candidate)
        except FileExistsError:
            if not _same_file(source, candidate):
                continue
        os.unlink(source)
        _fsync_folder(candidate.parent)
        return candidate
    raise FileExistsError(f"{target} and {MAX_SIBLINGS - 1} numbered siblings all exist")


def _same_file(a: Path, b: Path) -> bool:
    try:
        one, two = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (one.st_dev, one.st_ino) == (two.st_dev, two.st_ino)


def _link_or_copy(source: Path, target: Path) -> None:
    """A new name for `source`; FileExistsError when `target` exists, whatever the file system."""
    try:
        os.link(source, target, follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    data = source.read_bytes()
    fd = os.open(target, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(target)
        if isinstance(exc, OSError):
            raise with_filename(exc, target) from None
        raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable. Best effort: some file systems refuse a folder fd."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
