"""Workspace files are untrusted data: read only regular files inside the workspace, bounded.

Every input agentos reads from the user's repository (issues, briefs, template overrides,
`agentos.toml`, LLD status records) comes through `read_text` here, and every file read
from AGENTOS_HOME through `read_home_file`, so one rule holds:

- the path, with every symlink resolved, must stay inside the workspace;
- it must be a regular file: a directory, FIFO, socket or device is refused *before* it
  is opened (a FIFO would block the run; a device could be endless);
- it is opened with O_NOFOLLOW | O_NONBLOCK and checked again with fstat, so a file swapped
  between the check and the open is refused too, never followed;
- it is read with a bounded read: at most `max_bytes + 1` bytes, never the whole of a
  20 MB file to learn that it is too big.

A refusal is a `FileRefused` that names the file and the reason. Nothing of a refused
file is returned, so nothing of it can reach a provider, a log or the lineage.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from agentos.core.errors import FileRefused
from agentos.core.plain_text import foreign_encoding, strip_bom, strip_controls

if TYPE_CHECKING:
    from agentos.core.paths import Workspace

DEFAULT_MAX_ITEM_BYTES = 1_048_576  # 1 MB; `max_item_bytes` in agentos.toml changes it
LIMIT_HINT = "raise max_item_bytes in agentos.toml if this file is meant to be read"
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_CHUNK = 65536


def shown_path(path: Path, root: Path | None) -> str:
    """`path` relative to the workspace when it lies inside it, for short, clear messages."""
    if root is not None:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return str(path)


def _link_text(path: Path, resolved: Path) -> str:
    """`it is a symlink to /proc/self/environ` (and where that leads, when it differs)."""
    try:
        target = os.readlink(path)
    except OSError:
        return f"it is a symlink to {resolved}"
    return f"it is a symlink to {target}" + ("" if target == str(resolved) else f" (-> {resolved})")


def _kind(mode: int) -> str | None:
    """Why a file of this mode is not a regular file (None: it is one)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "it is a directory, not a regular file"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a regular file"
    return "it is not a regular file"


def check_file(
    path: Path,
    root: Path | None,
    *,
    what: str,
    max_bytes: int,
    allow_symlinks: bool = True,
    limit_hint: str = LIMIT_HINT,
) -> tuple[Path, os.stat_result]:
    """Refuse `path` unless it is a regular file inside `root`, at most `max_bytes` long.

    Returns the resolved path and its stat without opening it. A missing path raises
    FileNotFoundError (the caller knows whether "missing" is an error). With `root` None
    there is no containment rule; with `allow_symlinks` False a symlink is refused outright.
    """
    path = Path(path)
    shown = shown_path(path, root)
    link = os.lstat(path)  # FileNotFoundError: missing, for the caller to report
    resolved = Path(os.path.realpath(path))
    is_link = stat.S_ISLNK(link.st_mode)
    if is_link and not allow_symlinks:
        raise FileRefused(what, path, f"{_link_text(path, resolved)}; replace it with a regular file", shown)
    if root is not None:
        base = Path(os.path.realpath(root))
        if not resolved.is_relative_to(base):
            where = _link_text(path, resolved) if is_link else f"it resolves to {resolved}"
            raise FileRefused(
                what, path, f"{where}, outside the workspace; agentos reads only files inside it", shown
            )
    try:
        st = os.stat(resolved)
    except FileNotFoundError:
        raise FileRefused(what, path, f"{_link_text(path, resolved)}, which does not exist", shown) from None
    except OSError as exc:
        raise FileRefused(what, path, f"it cannot be examined ({exc.strerror})", shown) from None
    kind = _kind(st.st_mode)
    if kind is not None:
        raise FileRefused(what, path, kind, shown)
    if st.st_size > max_bytes:
        raise FileRefused(
            what, path, f"it is {st.st_size} bytes, over the limit of {max_bytes} bytes ({limit_hint})", shown
        )
    return resolved, st


def read_bytes(
    path: Path,
    root: Path | None,
    *,
    what: str,
    max_bytes: int,
    allow_symlinks: bool = True,
    limit_hint: str = LIMIT_HINT,
) -> bytes:
    """The bytes of `path` under the rule in the module docstring; at most `max_bytes`."""
    resolved, st = check_file(
        path, root, what=what, max_bytes=max_bytes, allow_symlinks=allow_symlinks, limit_hint=limit_hint
    )
    shown = shown_path(Path(path), root)
    try:
        fd = os.open(resolved, _OPEN_FLAGS)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FileRefused(what, Path(path), f"it cannot be opened ({reason})", shown) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise FileRefused(what, Path(path), "it changed while being opened; not read", shown)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            try:
                chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            except OSError as exc:
                raise FileRefused(what, Path(path), f"it cannot be read ({exc.strerror})", shown) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise FileRefused(
                what, Path(path), f"it grew over the limit of {max_bytes} bytes ({limit_hint})", shown
            )
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(
    path: Path,
    root: Path | None,
    *,
    what: str,
    max_bytes: int,
    errors: str = "replace",
    allow_symlinks: bool = True,
    limit_hint: str = LIMIT_HINT,
) -> str:
    """`read_bytes` decoded as UTF-8. With `errors="strict"`, bad UTF-8 is a FileRefused
    that names the file and the byte offset, never a bare UnicodeDecodeError."""
    data = read_bytes(
        path, root, what=what, max_bytes=max_bytes, allow_symlinks=allow_symlinks, limit_hint=limit_hint
    )
    encoding = foreign_encoding(data)
    if encoding is not None:
        raise FileRefused(
            what, Path(path), f"it is {encoding}, not UTF-8; save it as UTF-8", shown_path(Path(path), root)
        )
    try:
        return strip_bom(data).decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise FileRefused(
            what,
            Path(path),
            f"it is not valid UTF-8 (byte {exc.start}); save it as UTF-8",
            shown_path(Path(path), root),
        ) from None


def read_home_file(path: Path, *, what: str, max_bytes: int, limit_hint: str, errors: str = "strict") -> str:
    """A file agentos reads from AGENTOS_HOME (credentials, credential state, audit files),
    by the rules of workspace files and stricter: no symlink at all, since nothing agentos
    writes there is one. A FIFO, a link to /dev/zero or a huge file is a FileRefused that
    names it, never a hang, a MemoryError or a crawl; a missing file is FileNotFoundError."""
    return read_text(
        path, None, what=what, max_bytes=max_bytes, errors=errors, allow_symlinks=False, limit_hint=limit_hint
    )


def read_input(workspace: Workspace, path: Path, *, what: str, errors: str = "strict") -> str:
    """A workspace input file, under the workspace's own size limit, without control
    characters (a NUL or a terminal escape is never copied into what agentos writes).
    Strict UTF-8: a Latin-1 or Windows-1252 file is refused by name ("not valid UTF-8
    (byte N)"), never sent to a provider and written into an LLD with its letters lost."""
    text = read_text(path, workspace.root, what=what, max_bytes=workspace.max_item_bytes, errors=errors)
    return strip_controls(text)
