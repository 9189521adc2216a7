"""The coordinator is the only writer to the console. Everything goes through here.

`ConsoleRouter` is a run's one console (`core.printing.Console`), handed to every part
that speaks: it gathers each thread's writes into whole lines and writes every line once,
redacted, to the terminal (around the live panel, when one is up) and to `coordinator.log`.
`ProgressDisplay` is the progress listener: on a terminal it feeds the live panel
(`engine.panel`), elsewhere (CI, pipes, `--no-panel`) it prints a plain progress line each
time an item ends, as it always did.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agentos.core.progress_note import ProgressNote
from agentos.core.redaction import redact
from agentos.core.std_streams import TextSink
from agentos.engine.panel import BAR_WIDTH, LivePanel, PanelState, progress_bar
from agentos.keys.pool import PoolStatus

if TYPE_CHECKING:
    from agentos.engine.result import ProgressStats, WorkflowResult

__all__ = ["BAR_WIDTH", "ConsoleRouter", "ProgressDisplay", "progress_bar"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


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
        self.panel: LivePanel | None = None  # the live panel, while one is up
        self._lock = threading.Lock()
        self._partial: dict[int, str] = {}

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        with self._lock:
            buffered = self._partial.pop(ident, "") + text
            *lines, rest = buffered.split("\n")
            if rest:
                self._partial[ident] = rest
            self._emit_all(lines)
        return len(text)

    # -- the live panel: erased before scrolled lines, the same frame put back after them --
    def pin(self, panel: LivePanel) -> None:
        with self._lock:
            self.panel = panel

    def unpin(self, panel: LivePanel) -> None:
        """Take the panel off the screen for good (the end of a run, an error, Ctrl+C)."""
        with self._lock:
            if self.panel is not panel:
                return
            self.panel = None
            self._write_terminal(panel.erase())

    def repaint(self, panel: LivePanel, rows: list[str]) -> None:
        """Draw `rows` in place of the panel's current frame, in one write."""
        with self._lock:
            if self.panel is not panel:
                return
            text = panel.erase()
            panel.rows = rows
            self._write_terminal(text + panel.frame())

    def _write_terminal(self, text: str) -> None:
        if text:
            self.terminal.write(text)
            self.terminal.flush()

    def _emit_all(self, lines: list[str]) -> None:
        shown = [text for text in map(self._emit, lines) if text is not None]
        if not shown:
            return
        if self.panel is not None:  # one write: the panel off, the lines, the panel back
            body = "".join(text + "\n" for text in shown)
            self._write_terminal(self.panel.erase() + body + self.panel.frame())
            return
        for text in shown:
            self.terminal.write(text + "\n")
            self.terminal.flush()

    def line(self, text: str) -> None:
        self.write(text + "\n")

    def _emit(self, line: str) -> str | None:
        """Log `line`; the text of it the terminal shows, or None."""
        clean = _CONTROL.sub("?", redact(line))
        if self.log is not None:
            try:
                self.log.write(clean + "\n")
                self.log.flush()
            except (OSError, ValueError) as exc:  # disk full: the console still shows it, once said
                self.log = None
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                warning = (
                    f"[COORDINATOR] Warning: cannot write coordinator.log ({reason}); "
                    "from here on, only the console has the coordinator's lines\n"
                )
                if self.panel is not None:
                    warning = self.panel.erase() + warning
                self.terminal.write(warning)
        if self.show is not None:
            return self.show(clean)
        return clean

    def flush(self) -> None:
        with self._lock:
            self._emit_all([self._partial.pop(ident) for ident in list(self._partial)])
            if self.log is not None:
                self.log.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def __del__(self) -> None:
        """No implicit close at garbage collection (io.IOBase would close the wrapped stream)."""


class ProgressDisplay:
    """Listener for ParallelCoordinator: the live panel on a terminal, plain lines otherwise.

    `live`: draw the panel (see `engine.panel.panel_wanted`). `quiet` (-q): the panel keeps
    the bar and the pool line only. `pool`: the key pool at a glance, for the pool line.
    """

    def __init__(
        self,
        total: int,
        router: ConsoleRouter,
        live: bool,
        *,
        quiet: bool = False,
        pool: Callable[[], PoolStatus | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.router = router
        self._clock = clock
        self.state = PanelState(total, clock())
        self._lock = threading.Lock()
        self.panel = LivePanel(router, self.state, pool, quiet=quiet) if live else None

    def start(self) -> None:
        if self.panel is not None:
            self.state.started = self._clock()
            self.panel.start()

    def stop(self) -> None:
        if self.panel is not None:
            self.panel.stop()

    def tick(self, now: float) -> None:
        """The coordinator's main loop, on every pass: the panel redraws when it is due."""
        if self.panel is None:
            return
        try:
            self.panel.tick(now)
        except Exception as exc:  # a view never costs the run: go on with plain lines
            self.panel.stop()
            self.panel = None
            self.router.line(
                f"[COORDINATOR] Warning: the live panel failed ({type(exc).__name__}: {exc}); "
                "going on with plain progress lines"
            )

    def note(self, item_id: str, note: ProgressNote) -> None:
        """A worker's progress note (node, round, key, tokens)."""
        self.state.note(item_id, note)

    def item_started(self, item_id: str, stats: ProgressStats) -> None:
        with self._lock:  # after the bar line of an item that just ended, as it always was
            self.state.item_started(item_id, self._clock())

    def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
        with self._lock:
            self.state.item_finished(result.item_id, stats.completed, stats.interrupted)
            if self.panel is None:
                self.router.line(progress_bar(stats.completed, self.total, interrupted=stats.interrupted))
