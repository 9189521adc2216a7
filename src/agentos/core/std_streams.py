"""The console is a mirror of the run folder, not its record: a dead stdout stops nothing.

`cmd | head -5` closes the pipe after five lines, and `cmd >&-` starts us with no fd 1
at all. Neither may fail an item or print a traceback. The run carries on; everything
the console would have shown is in the run folder (`coordinator.log`, item logs,
`summary.json`), and the exit code is the run's own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from typing import TextIO

STD_FDS = (0, 1, 2)


def reopen_closed_std_fds() -> None:
    """Point a closed fd 0, 1 or 2 at /dev/null before anything opens a file.

    Otherwise the next `open()` would get fd 1, and whatever writes to "stdout" (a
    fork server, a library) would write into a log or a checkpoint DB.
    """
    for fd in STD_FDS:
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdout is None:
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115


def divert_to_devnull(stream: TextIO | None) -> None:
    """After a write failed: send this stream's fd to /dev/null, so later writes (ours,
    click's, the interpreter's final flush) succeed silently."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = stream.fileno() if stream is not None else -1
        if fd >= 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)


class TextSink(Protocol):
    """What agentos writes console and log text to: narrower than TextIO on purpose, so
    the router, the terminal wrapper and a timestamped log all fit without a cast."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class Terminal:
    """A TextIO stand-in for the console that never raises: after the first failed write
    (EPIPE, EBADF, EIO) it drops everything and says so once, in the log."""

    def __init__(self, stream: TextIO | Terminal | None) -> None:
        inner = stream.stream if isinstance(stream, Terminal) else stream
        self.stream: TextIO | None = inner  # one layer decides, so the first failure is ours
        self.broken: str | None = None if stream is not None else "stdout is closed"

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes with b"" to tell text from bytes
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.broken is None and self.stream is not None:
            try:
                self.stream.write(text)
            except (OSError, ValueError) as exc:
                self._fail(exc)
        return len(text)

    def flush(self) -> None:
        if self.broken is None and self.stream is not None:
            try:
                self.stream.flush()
            except (OSError, ValueError) as exc:
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.broken = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        divert_to_devnull(self.stream)

    def isatty(self) -> bool:
        try:
            return self.broken is None and self.stream is not None and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self.stream is None:
            raise OSError("stdout is closed")
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return getattr(self.stream, "errors", None) or "replace"

    @property
    def buffer(self) -> BinaryTerminal:
        """click writes bytes (and some messages) to `.buffer`; it must not raise either."""
        return BinaryTerminal(self)

    def writable(self) -> bool:
        return True


class BinaryTerminal:
    """The byte side of a `Terminal`: shares its broken state, so a failure on either
    side silences both."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def write(self, data: bytes) -> int:
        raw = getattr(self.terminal.stream, "buffer", None)
        if self.terminal.broken is None and raw is not None:
            try:
                self.terminal.stream.flush()  # type: ignore[union-attr]
                raw.write(data)
            except (OSError, ValueError) as exc:
                self.terminal._fail(exc)
        return len(data)

    def flush(self) -> None:
        raw = getattr(self.terminal.stream, "buffer", None)
        if self.terminal.broken is None and raw is not None:
            try:
                raw.flush()
            except (OSError, ValueError) as exc:
                self.terminal._fail(exc)


def guard_std_streams() -> None:
    """Make `sys.stdout` and `sys.stderr` pipe-safe for a whole command.

    `cmd --dry-run | head -1` closes the pipe after one line; the next `click.echo`
    would raise EPIPE and turn a finished command into `Error: [Errno 32] Broken pipe`
    and exit 1. Every command gets the same rule as the run's console: the reader
    leaving ends the output, not the command, and the exit code stays the command's.
    """
    if not isinstance(sys.stdout, Terminal):
        sys.stdout = Terminal(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, Terminal):
        sys.stderr = Terminal(sys.stderr)  # type: ignore[assignment]
