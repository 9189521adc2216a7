"""The live panel: what each worker is doing now, the key pool and the bar, pinned on a terminal.

Only on a terminal (`panel_wanted`): in a pipe, in CI or with `--no-panel` the console is
exactly the scroll of prefixed lines and plain progress lines it always was. On a terminal
the panel sits under those lines:

    [LLD-12] APPROVED after 1 review round(s): docs/lld/active/LLD-12.md   <- scrolls, untouched
      LLD-41   review    r2     14s  key team-b      3.1k tok               <- one row per running item
      LLD-42   draft     r1      3s  key team-a        812 tok
      keys 2/3 usable, 1 cooling until 08:12:05 | 0 calls waiting | 429s: 1
      [=====>    ] 5/10 workflows complete | 2m10s | ETA 2m08s

It is drawn by the coordinator's main loop (`tick`, at most every `MIN_INTERVAL_S`), never by
a thread of its own, and only when its text changed. The router (`ConsoleRouter`) erases it
before it writes scrolled lines and puts the same frame back after them, in one write, so a
line and the panel never interleave. The cursor rests at the panel's top-left corner: erasing
is "clear from here down", which stays right even when a terminal reflows the panel on a
resize. A resize (SIGWINCH) only sets a flag (the `core.stop_signals` pattern); until the next
tick has read the new width, the panel stays erased rather than drawn at the old width, so a
resize never tears or wraps a row. Every row is cut to the width (never wrapped) and shows
printable ASCII only: names come from worker notes and credentials files.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from agentos.core import environment
from agentos.core.durations import clock_time
from agentos.core.progress_note import ProgressNote, clean_text
from agentos.core.redaction import redact
from agentos.keys.pool import PoolStatus

if TYPE_CHECKING:
    from agentos.engine.console import ConsoleRouter

MIN_INTERVAL_S = 0.25  # at most 4 frames a second
ETA_AFTER = 3  # items finished before the bar shows an ETA
MIN_WIDTH = 20  # narrower or lower than these: no panel (a cut row says nothing)
MIN_HEIGHT = 4
ERASE = "\r\x1b[J"  # from the panel's top-left corner: clear to the end of the screen


def panel_wanted(isatty: bool, no_panel: bool = False, env: dict[str, str] | None = None) -> bool:
    """Whether a run draws the live panel: on a terminal that understands cursor moves, unless
    the operator or the environment opted out (`--no-panel`, AGENTOS_NO_PANEL, CI, TERM=dumb)."""
    source = os.environ if env is None else env
    if not isatty or no_panel:
        return False
    if environment.NO_PANEL.get(source):
        return False
    if source.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return source.get("TERM", "") not in ("", "dumb")


@dataclass
class ItemActivity:
    """One running item as the panel shows it."""

    item_id: str
    started: float  # the panel's clock
    node: str = "starting"
    round: int | None = None
    key: str | None = None
    tokens_before: int = 0  # earlier worker processes of this item (a resume after a 429)
    tokens: int = 0  # the current worker's


@dataclass
class PanelState:
    """The panel's model: fed by listener calls and worker notes (any thread), read by `render`."""

    total: int
    started: float
    done: int = 0
    interrupted: int = 0
    running: dict[str, ItemActivity] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def item_started(self, item_id: str, now: float) -> None:
        with self.lock:
            self.running[item_id] = ItemActivity(clean_text(item_id), now)

    def item_finished(self, item_id: str, done: int, interrupted: int) -> None:
        with self.lock:
            self.running.pop(item_id, None)
            self.done, self.interrupted = done, interrupted

    def note(self, item_id: str, note: ProgressNote) -> None:
        with self.lock:
            item = self.running.get(item_id)
            if item is None:
                return
            if note.new_worker:
                item.tokens_before += item.tokens
                item.tokens = 0
            if note.node is not None:
                item.node = clean_text(note.node)
            if note.round is not None:
                item.round = note.round
            if note.key is not None:
                item.key = clean_text(note.key)
            if note.tokens is not None:
                item.tokens = note.tokens

    def snapshot(self) -> tuple[int, int, list[ItemActivity]]:
        with self.lock:
            return self.done, self.interrupted, [ItemActivity(**vars(a)) for a in self.running.values()]


def short_duration(seconds: float) -> str:
    """`9s`, `4m05s`, `1h02m`: a fixed few characters, for a column."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def short_tokens(tokens: int) -> str:
    if tokens < 1000:
        return f"{tokens} tok"
    if tokens < 1_000_000:
        return f"{tokens / 1000:.1f}k tok"
    return f"{tokens / 1_000_000:.1f}M tok"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "~" if width > 0 else ""


def item_rows(items: list[ItemActivity], width: int, now: float) -> list[str]:
    """One row per running item, columns sized to the terminal: names are cut, rows never wrap."""
    if not items:
        return []
    narrow = width < 100
    id_w = min(max(len(a.item_id) for a in items), 12 if narrow else 24)
    node_w = min(max(len(a.node) for a in items), 10 if narrow else 20)
    key_cap = min(max(len(a.key or "-") for a in items) + 4, 14 if narrow else 28)
    rows = []
    for a in items:
        round_ = f"r{a.round}" if a.round else "-"
        key = f"key {a.key}" if a.key else "key -"
        head = (
            f"  {_cut(a.item_id, id_w):<{id_w}} {_cut(a.node, node_w):<{node_w}} "
            f"{round_:<3} {short_duration(now - a.started):>6}  "
        )
        tokens = short_tokens(a.tokens_before + a.tokens)
        key_w = max(5, min(key_cap, width - 1 - len(head) - 2 - 9))
        rows.append(f"{head}{_cut(key, key_w):<{key_w}}  {tokens:>9}")
    return rows


def pool_row(pool: PoolStatus | None, width: int) -> str:
    """`keys 2/3 usable, 1 cooling until 08:12:05 | 0 calls waiting | 429s: 1`, shorter when narrow."""
    if pool is None:
        return "  keys: (reading the pool)"
    until = f" until {clock_time(pool.cooling_until)}" if pool.cooling_until is not None else ""
    rejected = f", {pool.rejected} rejected" if pool.rejected else ""
    full = (
        f"  keys {pool.usable}/{pool.total} usable, {pool.cooling} cooling{until}{rejected} | "
        f"{pool.waiting} call{'s' if pool.waiting != 1 else ''} waiting | 429s: {pool.rate_limited}"
    )
    if len(full) < width:
        return full
    until = f">{clock_time(pool.cooling_until)}" if pool.cooling_until is not None else ""
    rejected = f" {pool.rejected}x" if pool.rejected else ""
    return f"  keys {pool.usable}/{pool.total} ok {pool.cooling} cool{until}{rejected} | wait {pool.waiting} | 429 {pool.rate_limited}"


BAR_WIDTH = 10


def progress_bar(done: int, total: int, width: int = BAR_WIDTH, interrupted: int = 0) -> str:
    """`[=====>    ] 5/10 workflows complete`; `..., 2 interrupted` when some were.

    `done` counts finished items only: an interrupted item is not complete."""
    filled = min(width, (done * width) // total) if total else width
    inner = "=" * filled + (">" if filled < width else "")
    extra = f", {interrupted} interrupted" if interrupted else ""
    return f"[{inner.ljust(width)}] {done}/{total} workflows complete{extra}"


def bar_row(done: int, total: int, interrupted: int, elapsed: float) -> str:
    """The bar as it always was, with the time so far and, once a few items are done, an ETA."""
    eta = ""
    if done >= ETA_AFTER and total > done:
        eta = f" | ETA {short_duration(elapsed / done * (total - done))}"
    return f"  {progress_bar(done, total, interrupted=interrupted)} | {short_duration(elapsed)}{eta}"


def render(
    state: PanelState,
    pool: PoolStatus | None,
    width: int,
    height: int,
    now: float,
    *,
    quiet: bool = False,
    show_pool: bool = True,
) -> list[str]:
    """The panel's rows for a terminal of `width` x `height`: no row reaches the last column,
    and the panel never takes more than half the screen (the rest scrolls). A terminal too
    small to hold it gets none: no row may wrap, and the cursor moves must stay on screen."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return []
    done, interrupted, items = state.snapshot()
    footer = ([pool_row(pool, width)] if show_pool else []) + [
        bar_row(done, state.total, interrupted, now - state.started)
    ]
    rows: list[str] = []
    if not quiet:
        room = max(1, height // 2) - len(footer)
        shown = items if len(items) <= room else items[: max(0, room - 1)]
        rows = item_rows(shown, width, now)
        if len(shown) < len(items):
            rows.append(f"  ... and {len(items) - len(shown)} more running")
    return [_cut(redact(row), width - 1) for row in rows + footer][-(height - 1) :]


class LivePanel:
    """The panel on the terminal: drawn by `tick` (the coordinator's main loop), kept whole by
    the router around every scrolled line."""

    def __init__(
        self,
        router: ConsoleRouter,
        state: PanelState,
        pool: Callable[[], PoolStatus | None] | None = None,
        *,
        quiet: bool = False,
        size: Callable[[], os.terminal_size] | None = None,
    ) -> None:
        self.router = router
        self.state = state
        self.pool = pool
        self.quiet = quiet
        self._size = size or self._terminal_size
        self.width, self.height = self._size()
        self.rows: list[str] = []  # the frame on screen (or to put back after scrolled lines)
        self.drawn = False
        self.resized = False  # set by SIGWINCH; the next tick reads the new size
        self._last_pool: PoolStatus | None = None
        self._last_draw = -float("inf")
        self.suspend_asked = False  # set by SIGTSTP (Ctrl+Z); the next tick erases, then stops us
        self._previous: dict[int, Any] = {}  # the handlers to put back

    def _terminal_size(self) -> os.terminal_size:
        try:
            return os.get_terminal_size(self.router.terminal.fileno())  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):
            return shutil.get_terminal_size()

    # -- life --------------------------------------------------------------------------
    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._install(signal.SIGWINCH, self._on_resize)
            if signal.getsignal(signal.SIGTSTP) == signal.SIG_DFL:  # not when job control is off
                self._install(signal.SIGTSTP, self._on_suspend)
        atexit.register(self.stop)  # a last chance for a clean terminal if stop() is never reached
        self.router.pin(self)

    def stop(self) -> None:
        """Erase the panel for good: the terminal is left as if it never was."""
        atexit.unregister(self.stop)
        self.router.unpin(self)
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                with contextlib.suppress(ValueError, OSError, TypeError):
                    signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            self._previous.clear()

    def _install(self, signum: int, handler: Callable[[int, FrameType | None], None]) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._previous[signum] = signal.signal(signum, handler)

    def _on_resize(self, signum: int, frame: FrameType | None) -> None:
        """SIGWINCH's handler: a flag only."""
        self.resized = True

    def _on_suspend(self, signum: int, frame: FrameType | None) -> None:
        """SIGTSTP's handler (Ctrl+Z): a flag; the next tick erases the panel, then stops the
        process. A second Ctrl+Z before that tick (a coordinator not ticking) stops it at once."""
        if not self.suspend_asked:
            self.suspend_asked = True
            return
        os.kill(os.getpid(), signal.SIGSTOP)

    def _suspend(self) -> None:
        """Ctrl+Z: take the panel off the screen, stop as the shell asked, and redraw on `fg`."""
        self.suspend_asked = False
        self.router.repaint(self, [])  # erased: nothing of it under the shell's "Stopped"
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT (`fg`, `bg`)
            signal.signal(signal.SIGTSTP, self._on_suspend)
        self.resized = True  # the terminal may have changed meanwhile: read it, draw again

    # -- drawing -------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """From the coordinator's main loop: redraw when due and changed (or resized)."""
        if self.suspend_asked:
            self._suspend()
        resized = self.resized
        if not resized and now - self._last_draw < MIN_INTERVAL_S:
            return
        if resized:
            self.resized = False
            self.width, self.height = self._size()
        pool = self.pool() if self.pool is not None else None
        self._last_pool = pool or self._last_pool
        rows = render(
            self.state,
            self._last_pool,
            self.width,
            self.height,
            now,
            quiet=self.quiet,
            show_pool=self.pool is not None,
        )
        self._last_draw = now
        if rows != self.rows or resized or not self.drawn:
            self.router.repaint(self, rows)

    def erase(self) -> str:
        """The text that takes the panel off the screen (the router writes it)."""
        if not self.drawn:
            return ""
        self.drawn = False
        return ERASE

    def frame(self) -> str:
        """The text that draws the current rows from the cursor, leaving the cursor at their
        top-left corner; nothing while a resize is pending (the old width could wrap)."""
        if not self.rows or self.resized:
            return ""
        self.drawn = True
        up = len(self.rows) - 1
        reserve = "\n" * up + (f"\x1b[{up}A" if up else "")  # scroll first: the moves below stay exact
        body = "\r\n".join("\x1b[2K" + row for row in self.rows)
        return reserve + "\r" + body + (f"\x1b[{up}A" if up else "") + "\r"
