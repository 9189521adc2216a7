"""A closed or broken stdout fails nothing: the run goes on, recorded in the run folder."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from agentos.core.std_streams import Terminal
from tests.helpers.cli import cli_env, issue_flags, run_dirs

pytestmark = pytest.mark.timeout(120)
ISSUES = issue_flags(3, 5, 8, 12, 17)


def _shell(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=90,
        env=cli_env(home),
        check=False,
    )


def _cli(demo: Path) -> str:
    args = ["--repo", str(demo), *ISSUES, "--parallel", "3", "--provider", "mock"]
    return shlex.join([sys.executable, "-m", "agentos.cli.lld", *args])


def _summary(home: Path) -> dict[str, object]:
    (run_dir,) = run_dirs(home)
    data: dict[str, object] = json.loads((run_dir / "summary.json").read_text())
    return data


def test_head_closing_the_pipe_fails_no_item(demo: Path, home: Path) -> None:
    result = _shell(f'{_cli(demo)} | head -5; echo "exit=${{PIPESTATUS[0]}}" >&2', home)
    assert len(result.stdout.splitlines()) == 5
    assert "exit=0" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Broken pipe" not in result.stderr, result.stderr
    summary = _summary(home)
    assert summary["exit_code"] == 0
    assert {i["status"] for i in summary["items"]} == {"approved"}  # type: ignore[attr-defined]
    (run_dir,) = run_dirs(home)
    log = (run_dir / "coordinator.log").read_text()
    assert "Summary: 5 approved" in log  # the run folder is the record
    assert "The console stopped taking output" in log


def test_closed_stdout_runs_to_the_end(demo: Path, home: Path) -> None:
    result = _shell(f"{_cli(demo)} >&-", home)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert {i["status"] for i in _summary(home)["items"]} == {"approved"}  # type: ignore[attr-defined]
    assert not list((home / "checkpoints").rglob("*.db"))  # nothing wrote into a stray fd 1


def test_terminal_drops_output_after_a_failed_write(tmp_path: Path) -> None:
    class Broken:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def isatty(self) -> bool:
            return True

        def fileno(self) -> int:
            raise OSError("no fd")

    terminal = Terminal(Broken())  # type: ignore[arg-type]
    assert terminal.write("one\n") == 4
    terminal.flush()
    assert terminal.broken == "Broken pipe"
    assert not terminal.isatty()
    assert Terminal(None).broken == "stdout is closed"


def _with_closed_pipe(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run a command whose stdout is a pipe nobody reads: the first write gets EPIPE.

    The read end is closed before the command starts, so every run takes the same path
    (with `| head -1` the outcome depended on who was faster).
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=cli_env(home),
            check=False,
        )
    finally:
        os.close(write_end)


COMMANDS = {
    "lld dry run": ["-m", "agentos.cli.lld", "--repo", "{demo}", "--all", "--dry-run", "--provider", "mock"],
    "issue dry run": [
        "-m",
        "agentos.cli.issue",
        "--repo",
        "{demo}",
        "--all",
        "--dry-run",
        "--provider",
        "mock",
    ],
    "lld help": ["-m", "agentos.cli.lld", "--help"],
    "issue help": ["-m", "agentos.cli.issue", "--help"],
    "agentos help": ["-m", "agentos.cli.runs", "--help"],
    "agentos runs": ["-m", "agentos.cli.runs", "runs"],
    "agentos show": ["-m", "agentos.cli.runs", "show"],
    "agentos clean": ["-m", "agentos.cli.runs", "clean", "--older-than", "1m", "--dry-run"],
    "one item": ["-m", "agentos.cli.lld", "--repo", "{demo}", "--issue", "3", "--provider", "mock"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_survives_a_closed_pipe(name: str, demo: Path, home: Path) -> None:
    if name in {"agentos show", "agentos runs", "agentos clean"}:  # something to list
        seed = _with_closed_pipe(
            ["-m", "agentos.cli.lld", "--repo", str(demo), *ISSUES, "--parallel", "2", "--provider", "mock"],
            home,
        )
        assert seed.returncode == 0, seed.stderr
    args = [a.replace("{demo}", str(demo)) for a in COMMANDS[name]]
    result = _with_closed_pipe(args, home)
    assert result.returncode == 0, result.stderr
    assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr, result.stderr
