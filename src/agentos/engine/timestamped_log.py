"""Log files whose every line starts with an ISO 8601 local timestamp with its offset.

`coordinator.log` and the item logs are read after the fact, often next to another
machine's logs: `2026-11-23T14:25:30.123+01:00 >>> Executing: N1_design`. The stamp is
taken when a line's first character arrives, so a line written in pieces is stamped
once, with the time it started. The console is not stamped.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TextIO


@contextlib.contextmanager
def quietly_closed(handle: TextIO) -> Iterator[TextIO]:
    """`handle`, closed at the end without an error: closing flushes, and on a full disk
    that would raise after the run, losing the console summary that follows."""
    try:
        yield handle
    finally:
        with contextlib.suppress(OSError):
            handle.close()


def iso_now() -> str:
    """Local time with its UTC offset, to the millisecond."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


class TimestampedLog(io.TextIOBase):
    """A write-only text stream that stamps the start of every line, then passes it on.

    A real `io.TextIOBase`, so it can stand wherever a `TextIO` is expected. Its owner
    closes it explicitly; garbage collection never closes what it wraps.
    """

    encoding = "utf-8"

    def __init__(self, stream: TextIO, clock: Callable[[], str] = iso_now) -> None:
        self.stream = stream
        self._clock = clock
        self._at_line_start = True
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            parts = text.split("\n")
            out = []
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                if part and self._at_line_start:
                    out.append(f"{self._clock()} ")
                    self._at_line_start = False
                out.append(part)
                if not last:
                    if self._at_line_start:  # an empty line: stamped too, so no line is bare
                        out.append(self._clock())
                    out.append("\n")
                    self._at_line_start = True
            self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def __del__(self) -> None:
        """No implicit close at garbage collection (io.IOBase would close the wrapped stream)."""

    def close(self) -> None:
        self.stream.close()
