"""An item's log file, every line stamped: a failed write fails this item only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from agentos.engine.timestamped_log import TimestampedLog


class ItemLog:
    """The item's log file. A failed write (disk full, I/O error) fails this item only:
    `on_error` is told once, and the output still reaches the console."""

    def __init__(self, path: Path, on_error: Callable[[str], None]) -> None:
        self.path = path
        self.on_error = on_error
        self._file: TimestampedLog | None = None
        self.failed = False

    def __enter__(self) -> ItemLog:
        try:
            # every line stamped; the console is not
            self._file = TimestampedLog(open(self.path, "a", encoding="utf-8", errors="replace"))
        except OSError as exc:
            self._fail(exc)
        return self

    def write(self, text: str) -> None:
        if self._file is not None and not self.failed:
            try:
                self._file.write(text)
            except (OSError, ValueError) as exc:
                self._fail(exc)

    def flush(self) -> None:
        if self._file is not None and not self.failed:
            try:
                self._file.flush()
            except (OSError, ValueError) as exc:
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        reason = getattr(exc, "strerror", None) or str(exc)
        self.on_error(f"disk error: cannot write the item log {self.path}: {reason}")

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.close()
