"""The coordinator is the only writer to the console. Everything goes through here.

`ConsoleRouter` is a run's one console (`core.printing.Console`), handed to every part
that speaks: it gathers each thread's writes into whole lines and writes every line once,
redacted, above the progress bar on a terminal, and to `coordinator.log`. `ProgressDisplay` draws the bar (rich, on a terminal) or prints a
plain progress line each time an item ends (CI, pipes).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, cast

from rich.console import Console
from rich.live import Live
from rich.text import Text

from agentos.core.redaction import redact
from agentos.core.std_streams import TextSink

if TYPE_CHECKING:
    from agentos.engine.result import ProgressStats, WorkflowResult

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
BAR_WIDTH = 10


def progress_bar(done: int, total: int, width: int = BAR_WIDTH, interrupted: int = 0) -> str:
    """`[=====>    ] 5/10 workflows complete`; `..., 2 interrupted` when some were.

    `done` counts finished items only: an interrupted item is not complete."""
    filled = min(width, (done * width) // total) if total else width
    inner = "=" * filled + (">" if filled < width else "")
    extra = f", {interrupted} interrupted" if interrupted else ""
    return f"[{inner.ljust(width)}] {done}/{total} workflows complete{extra}"


class ConsoleRouter(io.TextIOBase):
    """The run's console: line-atomic across threads, mirrored to a log.

    A real `io.TextIOBase`, so it can stand wherever a `TextIO` is expected. Its owner
    closes it explicitly; garbage collection never closes what it wraps.
    """

    encoding = "utf-8"

    def __init__(
        self, terminal: TextSink, log: TextSink | None = None, show: Callable[[str], str | None] | None = None
    ) -> None:
        self.terminal = terminal
        self.log = log
        self.show = show  # what of a line reaches the terminal (verbosity); the log gets every line
        self.live_console: Console | None = None  # set while a progress bar is live
        self._lock = threading.Lock()
        self._partial: dict[int, str] = {}

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        with self._lock:
            buffered = self._partial.pop(ident, "") + text
            *lines, rest = buffered.split("\n")
            if rest:
                self._partial[ident] = rest
            for line in lines:
                self._emit(line)
        return len(text)

    def line(self, text: str) -> None:
        self.write(text + "\n")

    def _emit(self, line: str) -> None:
        clean = _CONTROL.sub("?", redact(line))
        if self.log is not None:
            try:
                self.log.write(clean + "\n")
                self.log.flush()
            except (OSError, ValueError) as exc:  # disk full: the console still shows it, once said
                self.log = None
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.terminal.write(
                    f"[COORDINATOR] Warning: cannot write coordinator.log ({reason}); "
                    "from here on, only the console has the coordinator's lines\n"
                )
        if self.show is not None:
            shown = self.show(clean)
            if shown is None:
                return
            clean = shown
        if self.live_console is not None:
            self.live_console.print(Text(clean), soft_wrap=True, highlight=False)
        else:
            self.terminal.write(clean + "\n")
            self.terminal.flush()

    def flush(self) -> None:
        with self._lock:
            for ident in list(self._partial):
                self._emit(self._partial.pop(ident))
            if self.log is not None:
                self.log.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def __del__(self) -> None:
        """No implicit close at garbage collection (io.IOBase would close the wrapped stream)."""


class ProgressDisplay:
    """Listener for ParallelCoordinator: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int, router: ConsoleRouter, live: bool) -> None:
        self.total = total
        self.router = router
        self._done = 0
        self._interrupted = 0
        self._running: list[str] = []
        self._lock = threading.Lock()
        self._live: Live | None = None
        if live:
            # rich types `file` as IO[str]; it only writes and flushes, which a TextSink does.
            console = Console(file=cast(IO[str], router.terminal), force_terminal=True, highlight=False)
            self._live = Live(
                self._render(),
                console=console,
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def _render(self) -> Text:
        running = ", ".join(self._running[:6]) + (" ..." if len(self._running) > 6 else "")
        suffix = f"  running: {running}" if running else ""
        return Text(progress_bar(self._done, self.total, interrupted=self._interrupted) + suffix)

    def start(self) -> None:
        if self._live is not None:
            self._live.start()
            self.router.live_console = self._live.console

    def stop(self) -> None:
        if self._live is not None:
            self.router.live_console = None
            self._live.stop()

    def item_started(self, item_id: str, stats: ProgressStats) -> None:
        with self._lock:
            self._running.append(item_id)
            self._refresh()

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
        with self._lock:
            if result.item_id in self._running:
                self._running.remove(result.item_id)
            self._done, self._interrupted = stats.completed, stats.interrupted
            self._refresh()
            if self._live is None:
                self.router.line(progress_bar(self._done, self.total, interrupted=self._interrupted))

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
