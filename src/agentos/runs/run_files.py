"""A run folder's files, read as untrusted input: bounded, no symlink followed, never blocking.

Anything in a run folder may be corrupt, huge, of the wrong type, a symlink or a FIFO: it
was written by an earlier run that may have crashed, or by someone else. Every text read
back is cleaned (`clean_text`) before it is shown.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import unicodedata
from pathlib import Path
from typing import Any

MAX_SUMMARY_BYTES = 16 * 1024 * 1024
MAX_TEXT = 300
# Not shown as is: control characters (C0, C1), format characters (bidi overrides and
# isolates, zero-width), lone surrogates, and line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class RunHistoryError(Exception):
    """A run folder or its summary that cannot be used; `reason` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """A value from a summary, safe to print: a string without control characters, bounded."""
    text = value if isinstance(value, str) else "" if value is None else json.dumps(value, default=str)
    text = text[: limit * 2]
    if not (text.isascii() and text.isprintable()):  # printable ASCII hides nothing: the common case, fast
        text = "".join("?" if unicodedata.category(c) in _HIDDEN else c for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json(run_dir: Path, name: str, missing: str) -> dict[str, Any]:
    """A JSON object file of a run folder, opened without following symlinks or blocking, bounded."""
    path = run_dir / name
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise RunHistoryError(path, missing) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunHistoryError(path, f"{name} is a symlink; refused") from None
        raise RunHistoryError(path, f"cannot open {name}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RunHistoryError(path, f"{name} is not a regular file; refused")
        if info.st_size > MAX_SUMMARY_BYTES:
            raise RunHistoryError(path, f"{name} is {info.st_size} bytes, over {MAX_SUMMARY_BYTES}; refused")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(MAX_SUMMARY_BYTES + 1)
    except OSError as exc:
        raise RunHistoryError(path, f"cannot read {name}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RunHistoryError(path, f"{name} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise RunHistoryError(path, f"{name} holds a {type(data).__name__}, not an object")
    return data
