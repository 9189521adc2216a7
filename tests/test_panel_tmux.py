"""The live panel in a real terminal: a real batch run (OFFLINE MOCK provider) inside tmux, at 60
and 160 columns and through a resize, read back with `tmux capture-pane`; and the same run in
a pipe, where the console is the plain one it always was.

Each test runs its own tmux server on a private socket (`tmux -L`), killed in teardown.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env, run_cli, run_dirs

pytestmark = [
    pytest.mark.timeout(180),
    # Skipped on a machine without tmux; never in CI, which installs it (.ci/run).
    pytest.mark.skipif(
        shutil.which("tmux") is None and not os.environ.get("CI"), reason="tmux is not installed"
    ),
]

HEIGHT = 30
DONE = "__RUN_EXITED__"
PREFIXED = re.compile(r"^\[(?:COORDINATOR|LLD-\d+|ISSUE-[\w-]+)\] ")
# The panel's rows (engine/panel.py): what must appear while running and never stay behind.
ITEM_ROW = re.compile(
    r"^  (?:LLD-\d+|ISSUE-[\w~-]+) +\S+ +(?:r\d+|-) +\d+(?:s|m\d\ds|h\d\dm)  key \S+ +[\d.]+[kM]? tok$"
)
POOL_ROW = re.compile(r"^  keys \d+/\d+ (?:usable,|ok) ")
BAR_ROW = re.compile(r"^  \[[=> ]{10}\] \d+/\d+ workflows complete.* \| \d+")
FRAGMENT = re.compile(
    r"\d tok\b|workflows complete \||calls waiting|\| wait \d|429s: \d"
)  # any piece of a row
PANEL_ROWS = (ITEM_ROW, POOL_ROW, BAR_ROW, re.compile(r"^  \.\.\. and \d+ more running"))


# What keeps a run from drawing the panel (engine.panel.panel_wanted), and the outer terminal's
# TERM: none of it may reach the pane. A CI runner sets CI=true, and an `unset` before the
# exports would be undone by them.
NOT_EXPORTED = ("TERM", "CI", "AGENTOS_NO_PANEL")


def exports(home: Path, **env: str) -> str:
    """The pane's environment as `export` lines: the tests' CLI environment, minus
    `NOT_EXPORTED`, which are unset."""
    variables = cli_env(home, **env)
    return "unset CI AGENTOS_NO_PANEL\n" + "".join(
        f"export {k}={shlex.quote(v)}\n" for k, v in variables.items() if k not in NOT_EXPORTED
    )


class Tmux:
    def __init__(self) -> None:
        self.socket = f"agentos-test-{uuid.uuid4().hex[:12]}"

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    def lines(self, history: bool = False) -> list[str]:
        """The pane's lines, wrapped ones joined (`-J`): a panel row that wrapped shows up longer
        than the width; `history` adds what scrolled off the top."""
        args = ["capture-pane", "-p", "-J", "-t", "run"] + (["-S", "-"] if history else [])
        return [line.rstrip() for line in self(*args).splitlines()]

    def kill(self) -> None:
        """Stop the server (its panes' processes with it) and remove its socket file."""
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=15, check=False
        )
        folder = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (folder / self.socket).unlink(missing_ok=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    server = Tmux()
    try:
        yield server
    finally:
        server.kill()


def start_run(
    tmux: Tmux,
    tmp_path: Path,
    home: Path,
    demo: Path,
    width: int,
    *flags: str,
    module: str = "agentos.cli.lld",
    **env: str,
) -> None:
    """`lld-workflow --all` (or `module`'s) on the demo, in a detached tmux session `width` wide."""
    command = [sys.executable, "-m", module, "--repo", str(demo), "--all", "--parallel", "3"]
    script = tmp_path / "run.sh"
    script.write_text(
        "trap true INT\n"  # the shell outlives a Ctrl+C to report the exit code
        + exports(home, **{"AGENTOS_MOCK_LATENCY": "0.3", **env})
        + f"cd {shlex.quote(str(tmp_path))}\n"
        + shlex.join([*command, "--provider", "mock", *flags])
        + f"\necho {DONE} $?\nwhile :; do sleep 600; done\n"
    )
    tmux(
        "new-session",
        "-d",
        "-s",
        "run",
        "-x",
        str(width),
        "-y",
        str(HEIGHT),
        f"sh {shlex.quote(str(script))}",
    )


def watch(tmux: Tmux, deadline_s: float = 120) -> list[list[str]]:
    """Capture the screen every ~0.1 s until the run has exited; every capture."""
    captures = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        screen = tmux.lines()
        captures.append(screen)
        if any(line.startswith(DONE) for line in screen):
            return captures
        time.sleep(0.1)
    raise AssertionError("the run did not end in time:\n" + "\n".join(captures[-1]))


def panel_rows(lines: list[str]) -> list[str]:
    return [line for line in lines if any(p.match(line) for p in PANEL_ROWS)]


def check_run(tmux: Tmux, captures: list[list[str]], home: Path, width: int) -> list[str]:
    """What every run in a terminal must show; returns the final history."""
    # While running: the panel, one row per running item, the pool line and the bar.
    during = [panel_rows(c) for c in captures]
    assert any(any(ITEM_ROW.match(r) for r in rows) for rows in during), captures[len(captures) // 2]
    assert any(any(POOL_ROW.match(r) for r in rows) for rows in during)
    assert any(any(BAR_ROW.match(r) and "ETA" in r for r in rows) for rows in during)
    # No panel row ever reached the last column or wrapped (joined, it would be longer).
    for rows in during:
        assert all(len(r) < width for r in rows), [r for r in rows if len(r) >= width]
    # The end: the panel is gone, from the screen and from the scroll-back.
    history = tmux.lines(history=True)
    assert panel_rows(history) == [], panel_rows(history)
    assert not [line for line in history if FRAGMENT.search(line)]
    assert "\x1b" not in "".join(history)
    # The prefixed lines are intact: exactly the console's lines, in order, as the log has them.
    (run_dir,) = run_dirs(home)
    logged = [
        line.split(" ", 1)[1].rstrip()
        for line in (run_dir / "coordinator.log").read_text().splitlines()
        if " " in line
    ]
    shown = [line for line in history if PREFIXED.match(line)]
    assert shown == [line for line in logged if PREFIXED.match(line)]
    assert any(re.match(r"^\[[\w-]+\] APPROVED after", line) for line in shown)
    return history


@pytest.mark.parametrize("width", [60, 160])
def test_the_panel_in_a_real_terminal(tmux: Tmux, tmp_path: Path, home: Path, demo: Path, width: int) -> None:
    extra = {"AGENTOS_SIMULATE_429": "1"} if width == 160 else {}  # a cooling key on the pool line
    start_run(tmux, tmp_path, home, demo, width, "-v", **extra)
    captures = watch(tmux)
    history = check_run(tmux, captures, home, width)
    assert f"{DONE} 1" in history  # LLD-9 has no body: the run's exit code is its own
    if width == 160:
        pool_lines = [r for c in captures for r in panel_rows(c) if POOL_ROW.match(r)]
        assert any(re.search(r"1 cooling until \d\d:\d\d:\d\d", r) for r in pool_lines), pool_lines[:5]


def test_a_resize_mid_run_leaves_no_torn_line(tmux: Tmux, tmp_path: Path, home: Path, demo: Path) -> None:
    """160 columns, then 60 while items run: the panel is redrawn at the new width (a row drawn
    at the old one would wrap, and show up joined, longer than 60), and no piece of an old
    frame is left anywhere."""
    # issue-workflow: its items are named after their briefs, so rows at 160 columns are wide
    start_run(tmux, tmp_path, home, demo, 160, "-v", module="agentos.cli.issue", AGENTOS_MOCK_LATENCY="0.6")
    before: list[list[str]] = []
    deadline = time.monotonic() + 60
    while not any(len(r) >= 60 for r in panel_rows(before[-1] if before else [])):
        assert time.monotonic() < deadline, "no wide panel appeared"
        before.append(tmux.lines())
        time.sleep(0.05)
    tmux("resize-window", "-t", "run", "-x", "60")
    # The old frame, as tmux reflowed it, stays until the coordinator's next tick (0.1 s, or
    # later on a loaded machine) redraws the panel at the new width; from then on, no row may
    # reach the last column.
    deadline = time.monotonic() + 30
    while not (rows := panel_rows(tmux.lines())) or any(len(r) >= 60 for r in rows):
        assert time.monotonic() < deadline, "the panel was not redrawn at the new width"
        time.sleep(0.05)
    after = watch(tmux)
    running = [panel_rows(c) for c in after[:-1]]
    assert sum(1 for rows in running if any(ITEM_ROW.match(r) for r in rows)) >= 3, after[len(after) // 2]
    assert all(len(r) < 60 for rows in running for r in rows), [
        r for rows in running for r in rows if len(r) >= 60
    ]
    history = check_run(tmux, before + after, home, 160)
    assert not [line for line in history if FRAGMENT.search(line)]


def test_quiet_keeps_the_bar_and_the_pool_line(tmux: Tmux, tmp_path: Path, home: Path, demo: Path) -> None:
    start_run(tmux, tmp_path, home, demo, 100, "-q")
    captures = watch(tmux)
    rows = [r for c in captures for r in panel_rows(c)]
    assert any(POOL_ROW.match(r) for r in rows) and any(BAR_ROW.match(r) for r in rows)
    assert not any(ITEM_ROW.match(r) for r in rows)
    assert panel_rows(tmux.lines(history=True)) == []


def test_no_panel_flag_keeps_the_plain_console_on_a_terminal(
    tmux: Tmux, tmp_path: Path, home: Path, demo: Path
) -> None:
    start_run(tmux, tmp_path, home, demo, 100, "--no-panel")
    captures = watch(tmux)
    assert not any(panel_rows(c) for c in captures)
    history = tmux.lines(history=True)
    assert "[===========] 11/11 workflows complete" not in history  # a bar is 10 wide, as ever
    assert "[==========] 11/11 workflows complete" in history  # the plain progress lines


def test_in_a_pipe_the_console_is_the_plain_one(demo: Path, home: Path) -> None:
    """No escape code, no panel row: exactly the prefixed lines the log has, and the plain
    progress lines, as before the panel existed."""
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        "--all",
        "--parallel",
        "3",
        "--provider",
        "mock",
        home=home,
        TERM="xterm-256color",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    lines = result.stdout.splitlines()
    assert panel_rows(lines) == []
    (run_dir,) = run_dirs(home)
    logged = [line.split(" ", 1)[1] for line in (run_dir / "coordinator.log").read_text().splitlines()]
    assert [ln for ln in lines if PREFIXED.match(ln)] == [ln for ln in logged if PREFIXED.match(ln)]
    progress = [ln for ln in lines if "workflows complete" in ln]
    assert progress[-1] == "[==========] 11/11 workflows complete" and len(progress) == 11


@pytest.mark.parametrize("when", ["first-second", "mid-run", "twice"])
def test_ctrl_c_leaves_a_clean_terminal(
    tmux: Tmux, tmp_path: Path, home: Path, demo: Path, when: str
) -> None:
    """Ctrl+C typed into the terminal (the whole foreground group gets it), with the panel up or
    before it is: the run drains, exits 130, and no piece of the panel is left."""
    start_run(tmux, tmp_path, home, demo, 80, "-v", AGENTOS_MOCK_LATENCY="0.6")
    if when == "first-second":
        time.sleep(0.4)  # the CLI is still importing: the panel is not up yet
    else:
        deadline = time.monotonic() + 60
        while not any(ITEM_ROW.match(r) for r in panel_rows(tmux.lines())):
            assert time.monotonic() < deadline, "no panel appeared"
            time.sleep(0.05)
    tmux("send-keys", "-t", "run", "C-c")
    if when == "twice":  # the second press, over a second later, kills the workers at once
        time.sleep(1.2)
        tmux("send-keys", "-t", "run", "C-c")
    watch(tmux)
    history = tmux.lines(history=True)
    assert f"{DONE} 130" in history, history[-20:]
    assert panel_rows(history) == [] and not [line for line in history if FRAGMENT.search(line)]
    assert "\x1b" not in "".join(history)


def test_ctrl_z_takes_the_panel_off_and_fg_brings_it_back(
    tmux: Tmux, tmp_path: Path, home: Path, demo: Path
) -> None:
    """Job control in an interactive shell: Ctrl+Z erases the panel before the process stops
    (nothing of it is left under the shell's `Stopped`), `fg` draws it again, and the end is clean."""
    rc = tmp_path / "bashrc"
    rc.write_text("PS1='$ '\n" + exports(home, AGENTOS_MOCK_LATENCY="0.5"))
    tmux("new-session", "-d", "-s", "run", "-x", "100", "-y", str(HEIGHT), f"bash --rcfile {rc} -i")
    command = [sys.executable, "-m", "agentos.cli.lld", "--repo", str(demo), "--all", "--parallel", "3"]
    tmux("send-keys", "-t", "run", shlex.join([*command, "--provider", "mock"]), "Enter")
    deadline = time.monotonic() + 60
    while not any(ITEM_ROW.match(r) for r in panel_rows(tmux.lines())):
        assert time.monotonic() < deadline, "no panel appeared"
        time.sleep(0.05)
    tmux("send-keys", "-t", "run", "C-z")
    while not any("Stopped" in line for line in tmux.lines()):
        assert time.monotonic() < deadline, "the run did not stop"
        time.sleep(0.05)
    stopped = tmux.lines(history=True)
    assert panel_rows(stopped) == [] and not [ln for ln in stopped if FRAGMENT.search(ln)], stopped
    tmux("send-keys", "-t", "run", "fg", "Enter")
    captures: list[list[str]] = []
    while not captures or not any(line.startswith("[COORDINATOR] Summary written") for line in captures[-1]):
        assert time.monotonic() < deadline + 60, "the run did not end"
        captures.append(tmux.lines())
        time.sleep(0.1)
    time.sleep(0.5)  # the prompt is back: nothing typed during the run (the terminal would echo it)
    tmux("send-keys", "-t", "run", f"echo {DONE} $?", "Enter")
    captures += watch(tmux)
    assert any(any(ITEM_ROW.match(r) for r in panel_rows(c)) for c in captures)  # back after `fg`
    history = tmux.lines(history=True)
    assert f"{DONE} 1" in history, history[-10:]
    assert panel_rows(history) == [] and not [ln for ln in history if FRAGMENT.search(ln)]
