"""The live panel's rendering on an injected clock and fixed widths, and its terminal protocol:
erased before scrolled lines, the same frame put back after them, nothing drawn at a stale
width after a resize, a clean terminal at the end. Real terminals: test_panel_tmux.py."""

from __future__ import annotations

import io
import os
import pickle
import re
import signal
from pathlib import Path

import pytest

from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.progress_note import MAX_NOTE_BYTES, ProgressNote
from agentos.core.redaction import clear_secrets, register_secret
from agentos.engine.console import ConsoleRouter, ProgressDisplay
from agentos.engine.panel import (
    ERASE,
    MIN_INTERVAL_S,
    LivePanel,
    PanelState,
    panel_wanted,
    render,
    short_duration,
    short_tokens,
)
from agentos.engine.result import ProgressStats, WorkflowResult
from agentos.keys.pool import CredentialCoordinator, PoolStatus
from agentos.llm.errors import RateLimited

pytestmark = pytest.mark.timeout(30)
COOLING_UNTIL = 1_800_000_000.0


def busy_state() -> PanelState:
    state = PanelState(total=10, started=0.0)
    state.item_started("LLD-41", 1.0)
    state.item_started("ISSUE-a-very-long-identifier-for-one-item", 2.0)
    state.note("LLD-41", ProgressNote(node="review", round=2, key="team-b", tokens=3100))
    state.note(
        "ISSUE-a-very-long-identifier-for-one-item",
        ProgressNote(node="draft_issue_body", round=1, key="team-a", tokens=812),
    )
    state.item_finished("LLD-3", done=2, interrupted=0)
    return state


POOL = PoolStatus(total=3, usable=2, cooling=1, cooling_until=COOLING_UNTIL, rate_limited=1, waiting=2)


def test_a_wide_terminal_shows_every_field_of_each_running_item() -> None:
    rows = render(busy_state(), POOL, 160, 30, now=75.0)
    assert re.match(r"^  LLD-41 +review +r2 +1m14s  key team-b +3\.1k tok$", rows[0]), rows[0]
    assert rows[1].startswith("  ISSUE-a-very-long-ident~ ") and "draft_issue_body r1" in rows[1], rows[1]
    assert rows[1].endswith("812 tok") and "key team-a" in rows[1]
    from agentos.core.durations import clock_time

    assert rows[2] == (
        f"  keys 2/3 usable, 1 cooling until {clock_time(COOLING_UNTIL)} | 2 calls waiting | 429s: 1"
    )
    assert rows[3] == "  [==>       ] 2/10 workflows complete | 1m15s"  # no ETA before 3 are done
    assert len(rows) == 4


@pytest.mark.parametrize("width", [20, 40, 60, 61, 79, 80, 100, 160, 400])
def test_no_row_ever_reaches_the_last_column(width: int) -> None:
    """A row that filled the last column could wrap on some terminals: every row is cut."""
    for quiet in (False, True):
        rows = render(busy_state(), POOL, width, 30, now=3725.0, quiet=quiet)
        assert rows and all(len(row) <= width - 1 for row in rows), rows


@pytest.mark.parametrize(("width", "height"), [(0, 30), (1, 30), (19, 30), (80, 0), (80, 3)])
def test_a_terminal_too_small_gets_no_panel(width: int, height: int) -> None:
    assert render(busy_state(), POOL, width, height, now=1.0) == []


@pytest.mark.parametrize("height", [4, 5, 6, 7, 8])
def test_a_low_terminal_keeps_the_bar_and_a_line_to_scroll(height: int) -> None:
    rows = render(busy_state(), POOL, 80, height, now=1.0)
    assert 0 < len(rows) <= height - 1 and "workflows complete" in rows[-1]


def test_sixty_columns_cut_fields_and_keep_every_column() -> None:
    rows = render(busy_state(), POOL, 60, 30, now=75.0)
    assert all(len(row) <= 59 for row in rows)
    assert rows[1].startswith("  ISSUE-a-ver~ draft_iss~ r1 "), rows[1]  # cut, marked with ~
    assert rows[0].rstrip().endswith("3.1k tok") and rows[1].rstrip().endswith("812 tok")
    assert rows[2].startswith("  keys 2/3 ok 1 cool>") and "wait 2 | 429 1" in rows[2], rows[2]
    assert rows[3].startswith("  [==>       ] 2/10 workflows complete")


def test_the_bar_shows_an_eta_once_three_items_finished() -> None:
    state = PanelState(total=10, started=0.0)
    state.item_finished("a", done=3, interrupted=1)
    rows = render(state, None, 120, 30, now=60.0, show_pool=False)
    assert rows == ["  [===>      ] 3/10 workflows complete, 1 interrupted | 1m00s | ETA 2m20s"]


def test_quiet_keeps_the_pool_line_and_the_bar_only() -> None:
    rows = render(busy_state(), POOL, 160, 30, now=75.0, quiet=True)
    assert len(rows) == 2 and rows[0].startswith("  keys 2/3") and "workflows complete" in rows[1]


def test_a_short_terminal_shows_what_fits_and_counts_the_rest() -> None:
    state = PanelState(total=20, started=0.0)
    for i in range(10):
        state.item_started(f"LLD-{i}", 0.0)
    rows = render(state, POOL, 100, 12, now=5.0)
    assert len(rows) == 6  # half the screen; the rest scrolls
    assert rows[3] == "  ... and 7 more running"


def test_names_from_workers_cannot_move_the_cursor_or_show_a_secret() -> None:
    register_secret("sk-live-0123456789abcdef", "team-a")
    try:
        state = PanelState(total=1, started=0.0)
        state.item_started("LLD-1", 0.0)
        state.note("LLD-1", ProgressNote(node="sk-live-0123456789abcdef", key="k\x1b[2J\u4e2d\n"))
        (row, *_) = render(state, None, 200, 30, now=1.0, show_pool=False)
    finally:
        clear_secrets()
    assert "\x1b" not in row and "\n" not in row and "\u4e2d" not in row
    assert "sk-live" not in row and "<key:team-a>" in row


def test_tokens_add_up_across_the_worker_processes_of_one_item() -> None:
    state = PanelState(total=1, started=0.0)
    state.item_started("LLD-1", 0.0)
    state.note("LLD-1", ProgressNote.worker_started())
    state.note("LLD-1", ProgressNote(tokens=500))
    state.note("LLD-1", ProgressNote.worker_started())  # a resume after a 429: a new process
    state.note("LLD-1", ProgressNote(tokens=120))
    assert state.snapshot()[2][0].tokens_before + state.snapshot()[2][0].tokens == 620
    state.note("unknown-item", ProgressNote(tokens=9))  # a late note of a finished item: ignored


def test_short_formats() -> None:
    assert [short_duration(s) for s in (-1, 0, 59.9, 60, 3599, 3600, 86399)] == [
        "0s",
        "0s",
        "59s",
        "1m00s",
        "59m59s",
        "1h00m",
        "23h59m",
    ]
    assert [short_tokens(t) for t in (0, 999, 1000, 123_456, 2_500_000)] == [
        "0 tok",
        "999 tok",
        "1.0k tok",
        "123.5k tok",
        "2.5M tok",
    ]


# -- notes off the wire -------------------------------------------------------------------
def test_a_note_survives_its_trip_and_garbage_is_no_note() -> None:
    note = ProgressNote(node="review", round=2, key="team-b", tokens=42)
    assert ProgressNote.decode(note.encode()) == note
    assert ProgressNote.decode(ProgressNote.worker_started().encode()) == ProgressNote(
        node="starting", key="-", tokens=0
    )  # new_worker is the coordinator's to set, never the wire's
    for garbage in (
        pickle.dumps(ItemOutcome(ItemStatus.APPROVED)),
        b"",
        b"{",
        b"[1, 2]",
        b'{"op": "acquire"}',
        b'{"op": "progress", "tokens": true}',
        b'{"op": "progress", "tokens": 1.5}',
        b'{"op": "progress", "node": 7}',
        b'{"op": "progress", "round": "2"}',
        b'{"op": "progress", "node": "' + b"x" * MAX_NOTE_BYTES + b'"}',
        b"\xff\xfe",
        b"[" * 100_000,
    ):
        assert ProgressNote.decode(garbage) is None, garbage[:40]
    clamped = ProgressNote.decode(
        b'{"op":"progress","tokens":-5,"round":99999999,"key":"' + b"k" * 500 + b'"}'
    )
    assert clamped == ProgressNote(key="k" * 64, round=9999, tokens=0)


# -- the panel on a terminal ---------------------------------------------------------------
class Screen(io.StringIO):
    """What the router writes to the terminal, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def isatty(self) -> bool:
        return True


def live(size: list[tuple[int, int]], quiet: bool = False) -> tuple[Screen, ConsoleRouter, LivePanel]:
    screen = Screen()
    router = ConsoleRouter(screen)
    state = PanelState(total=4, started=0.0)
    state.item_started("LLD-1", 0.0)
    panel = LivePanel(
        router,
        state,
        lambda: POOL,
        quiet=quiet,
        size=lambda: os.terminal_size(size[0]),
    )
    return screen, router, panel


def frame(rows: list[str]) -> str:
    up = len(rows) - 1
    return "\n" * up + f"\x1b[{up}A" + "\r" + "\r\n".join("\x1b[2K" + r for r in rows) + f"\x1b[{up}A" + "\r"


def test_lines_scroll_above_the_panel_in_one_write_each() -> None:
    size = [(60, 30)]
    screen, router, panel = live(size)
    panel.start()
    try:
        panel.tick(1.0)
        rows = render(panel.state, POOL, 60, 30, 1.0)
        assert screen.writes == [frame(rows)]  # drawn once; the cursor back at its top-left corner
        router.line("[LLD-1] >>> Executing: draft")
        router.write("[LLD-2] one\n[LLD-2] two\n")
        assert screen.writes[1:] == [
            ERASE + "[LLD-1] >>> Executing: draft\n" + frame(rows),
            ERASE + "[LLD-2] one\n[LLD-2] two\n" + frame(rows),
        ]
    finally:
        panel.stop()
    assert screen.writes[-1] == ERASE  # the end: nothing of the panel is left
    router.line("[COORDINATOR] after the run")
    assert screen.writes[-1] == "[COORDINATOR] after the run\n"


def test_redraws_are_at_most_four_a_second_and_only_when_the_text_changed() -> None:
    screen, _router, panel = live([(80, 24)])
    panel.start()
    try:
        panel.tick(10.0)
        panel.state.item_started("LLD-2", 10.0)
        panel.tick(10.0 + MIN_INTERVAL_S / 2)  # too soon
        assert len(screen.writes) == 1
        panel.tick(10.0 + MIN_INTERVAL_S)
        assert len(screen.writes) == 2 and "LLD-2" in screen.writes[1]
        panel.tick(10.0 + MIN_INTERVAL_S + 0.3)  # the same text (elapsed shows whole seconds)
        assert len(screen.writes) == 2
    finally:
        panel.stop()


def test_a_resize_never_draws_the_old_width_and_the_next_tick_uses_the_new_one() -> None:
    size = [(160, 30)]
    screen, router, panel = live(size)
    previous = signal.getsignal(signal.SIGWINCH)
    panel.start()
    try:
        panel.state.note("LLD-1", ProgressNote(node="n" * 40, key="k" * 40))
        panel.tick(1.0)
        assert max(len(line) for line in screen.writes[0].split("\r\n")) > 60
        size[0] = (40, 10)
        os.kill(os.getpid(), signal.SIGWINCH)  # a real signal: the handler only sets the flag
        router.line("[LLD-1] a line during the resize")
        assert screen.writes[-1] == ERASE + "[LLD-1] a line during the resize\n"  # no stale frame
        panel.tick(1.1)  # due at once after a resize
        rows = render(panel.state, POOL, 40, 10, 1.1)
        assert screen.writes[-1] == frame(rows) and all(len(r) <= 39 for r in rows)
    finally:
        panel.stop()
    assert signal.getsignal(signal.SIGWINCH) == previous


def test_without_a_terminal_the_progress_lines_are_as_before() -> None:
    screen = Screen()
    router = ConsoleRouter(screen)
    display = ProgressDisplay(2, router, live=False)
    display.start()
    display.item_started("LLD-1", ProgressStats(total=2))
    display.tick(5.0)
    display.item_finished(WorkflowResult("LLD-1", True, None), ProgressStats(total=2, completed=1))
    display.stop()
    assert screen.getvalue() == "[=====>    ] 1/2 workflows complete\n"  # as it always was


def test_a_failing_panel_falls_back_to_plain_lines() -> None:
    screen = Screen()
    router = ConsoleRouter(screen)

    def broken() -> PoolStatus | None:
        raise RuntimeError("pool gone")

    display = ProgressDisplay(1, router, live=True, pool=broken)
    display.start()
    display.tick(1.0)
    display.item_finished(WorkflowResult("LLD-1", True, None), ProgressStats(total=1, completed=1))
    display.stop()
    text = screen.getvalue()
    assert "the live panel failed (RuntimeError: pool gone)" in text
    assert text.endswith("[==========] 1/1 workflows complete\n")


@pytest.mark.parametrize(
    ("isatty", "no_panel", "env", "wanted"),
    [
        (True, False, {"TERM": "xterm-256color"}, True),
        (False, False, {"TERM": "xterm-256color"}, False),  # a pipe
        (True, True, {"TERM": "xterm-256color"}, False),  # --no-panel
        (True, False, {"TERM": "dumb"}, False),
        (True, False, {}, False),  # no TERM: cursor moves are not known to work
        (True, False, {"TERM": "xterm", "CI": "true"}, False),
        (True, False, {"TERM": "xterm", "CI": "false"}, True),
        (True, False, {"TERM": "xterm", "AGENTOS_NO_PANEL": "1"}, False),
        (True, False, {"TERM": "xterm", "NO_COLOR": "1"}, True),  # the panel has no colour to drop
    ],
)
def test_who_gets_a_panel(isatty: bool, no_panel: bool, env: dict[str, str], wanted: bool) -> None:
    assert panel_wanted(isatty, no_panel, env) is wanted


def test_the_pool_line_counts_cooling_keys_and_429s() -> None:
    now = [1000.0]
    pool = CredentialCoordinator(["sk-a-0123456789", "sk-b-0123456789"], clock=lambda: now[0])
    key = pool.acquire()
    assert key is not None
    pool.report(key, RateLimited(30.0))
    status = pool.status()
    assert status == PoolStatus(total=2, usable=1, cooling=1, cooling_until=1030.0, rate_limited=1)
    now[0] = 1031.0
    assert pool.status() == PoolStatus(total=2, usable=2, rate_limited=1)


@pytest.mark.timeout(60)
def test_an_error_mid_run_leaves_the_terminal_clean(
    demo: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real batch run on a (pretend) terminal: the panel is up when the coordinator fails;
    the error propagates and the panel is erased on the way out."""
    from agentos.engine.coordinator import ParallelCoordinator
    from agentos.keys.pools import PoolSet
    from agentos.runs.batch import run_batch
    from agentos.workflows.item import ItemJob, WorkflowKind

    screen = Screen()
    monkeypatch.setattr("sys.stdout", screen)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AGENTOS_NO_PANEL", raising=False)

    def fail(self: ParallelCoordinator, *args: object, **kwargs: object) -> None:
        assert self.on_tick is not None
        self.on_tick(1.0)  # the panel is drawn
        raise RuntimeError("the coordinator broke")

    monkeypatch.setattr(ParallelCoordinator, "execute_parallel", fail)
    previous = signal.getsignal(signal.SIGWINCH)
    pools = PoolSet.load(["mock"])
    try:
        with pytest.raises(RuntimeError, match="the coordinator broke"):
            run_batch(
                workflow="lld-workflow",
                noun="issue",
                keys=["3"],
                make_job=lambda key, audit: ItemJob(
                    WorkflowKind.LLD, key, str(demo), str(home / f"{key}.db"), str(audit), "mock", "mock"
                ),
                pools=pools,
                parallel=1,
                no_wait=False,
                preload=[],
                provider_banner="OFFLINE MOCK",
            )
    finally:
        pools.close_ledger()
    drawn = [w for w in screen.writes if "workflows complete" in w]
    assert drawn and "\x1b[2K" in drawn[0]  # the panel was up
    assert screen.writes[-1] == ERASE  # and the last thing written took it away
    assert signal.getsignal(signal.SIGWINCH) == previous
