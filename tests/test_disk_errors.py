"""A full or failing disk mid-run fails only the affected item, with a clear, resumable message."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentos.core.errors import CheckpointError
from agentos.engine.console import ConsoleRouter
from agentos.engine.coordinator import ParallelCoordinator
from agentos.engine.fork_server import make_context
from agentos.engine.worker_launcher import WorkerLauncher
from agentos.workflows.checkpoint import CheckpointStore
from agentos.workflows.checkpoint_identity import Owner, create_marked
from agentos.workflows.disk import disk_problem
from tests.helpers.cli import cli_env
from tests.helpers.hostile import hostile_main
from tests.test_worker_launcher import jobs

pytestmark = pytest.mark.timeout(90)


def test_disk_problems_are_told_apart_from_corruption_and_bugs() -> None:
    assert disk_problem(sqlite3.OperationalError("database or disk is full"))
    assert disk_problem(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
    assert disk_problem(sqlite3.DatabaseError("file is not a database")) is None
    assert disk_problem(OSError(errno.ECONNRESET, "reset")) is None
    assert disk_problem(ValueError("x")) is None


RUN_ONE = """
import sys
from agentos.core.stop_flag import StopFlag
from agentos.workflows.item import ItemJob, WorkflowKind
from agentos.workflows.item_execution import run_item
job = ItemJob(WorkflowKind.LLD, "3", sys.argv[1], sys.argv[2], sys.argv[3], "mock", "mock")
print("OUTCOME", run_item(job, stop=StopFlag(), credentials={}).error)
"""


def _full_after(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("limit", [20_000, 120_000])
def test_a_full_disk_fails_the_item_clearly_and_never_suggests_fresh(
    demo: Path, home: Path, tmp_path: Path, limit: int
) -> None:
    db = tmp_path / "lld_workflow_3.db"
    result = subprocess.run(
        [sys.executable, "-c", RUN_ONE, str(demo), str(db), str(tmp_path / "audit.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home),
        preexec_fn=lambda: _full_after(limit),
        check=False,
    )
    out = result.stdout + result.stderr
    assert "OUTCOME disk error writing" in out, out
    assert "run the same command again to resume" in out
    assert "--fresh" not in out and "Traceback" not in out and "corrupt" not in out


def test_an_unwritable_item_log_fails_that_item_only(tmp_path: Path) -> None:
    coordinator = ParallelCoordinator(2, shutdown_grace=1.0)
    runner = WorkerLauncher(
        make_context([]),
        ConsoleRouter(io.StringIO()),  # type: ignore[arg-type]
        lambda job: Path("/dev/full") if job.key == "ignore-term" else tmp_path / f"{job.item_id}.log",
        coordinator.stop_event,
        coordinator.force_event,
        {},
        target=hostile_main,
        children=coordinator.children,
    )
    _, results = coordinator.execute_parallel(
        jobs(tmp_path, "ignore-term", "halfline"), runner, lambda j: j.item_id
    )
    by_id = {r.item_id: r for r in results}
    assert by_id["ISSUE-halfline"].success
    failed = by_id["ISSUE-ignore-term"]  # its worker ignores SIGTERM too: the KILL comes after 1 s
    assert not failed.success
    assert (failed.error or "").startswith("disk error: cannot write the item log /dev/full: No space left")


def _open_fds_to(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass
    return count


def test_a_corrupt_checkpoint_leaks_no_connection(tmp_path: Path) -> None:
    corrupt = tmp_path / "bad.db"
    create_marked(corrupt, Owner("ws", "lld_workflow", "1", "0" * 64))
    header = corrupt.read_bytes()[:100]  # agentos's mark stays; every page after it is garbage
    corrupt.write_bytes(header + b"\x00garbage, not SQLite" * 512)
    for _ in range(3):
        with pytest.raises(CheckpointError):
            CheckpointStore(corrupt).open()
    assert _open_fds_to(corrupt) == 0


@contextlib.contextmanager
def full_disk(folder: Path, size_kb: int = 600) -> Iterator[Path]:
    """A real small tmpfs at `folder` (root only), for a disk that fills up."""
    folder.mkdir(parents=True, exist_ok=True)
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "none", str(folder)], check=False
        ).returncode
    ):
        pytest.skip("needs root and tmpfs to fill a real disk")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()


@pytest.mark.timeout(120)
def test_a_full_home_still_ends_with_the_summary_or_why_not(demo: Path, tmp_path: Path) -> None:
    """Issue 20 finding 16: the run ended with a bare [Errno 28] and no summary."""
    with full_disk(tmp_path / "home") as home:
        result = subprocess.run(
            [sys.executable, "-m", "agentos.cli.lld", "--repo", str(demo), "--all", "--parallel", "3",
             "--provider", "mock"],
            capture_output=True, text=True, timeout=100, env=cli_env(home / "h"), check=False,
        )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Error: [Errno 28]" not in out and "Traceback" not in out  # a bare errno, naming nothing
    assert "[Errno" not in out, out  # every disk error is said in words, with its path
    assert "Summary: " in out
    assert "Summary written to" in out or "Could not write the summary" in out
    assert "Free space in" in out or "Summary written to" in out


@pytest.mark.timeout(120)
def test_a_full_workspace_disk_names_the_workspace_path(tmp_path: Path, home: Path) -> None:
    from tests.helpers.cli import DEMO

    with full_disk(tmp_path / "disk", 400) as disk:
        shutil.copytree(DEMO, disk / "ws")
        fill(disk)
        result = subprocess.run(
            [sys.executable, "-m", "agentos.cli.lld", "--repo", str(disk / "ws"), "--issue", "5",
             "--provider", "mock"],
            capture_output=True, text=True, timeout=100, env=cli_env(home), check=False,
        )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    failure = next(line for line in out.splitlines() if "FAILED" in line)
    assert f"{disk / 'ws'}/" in failure and "No space left on device" in failure, failure
    assert str(home) not in failure  # not a checkpoint path in the home: the wrong disk


@pytest.mark.timeout(120)
def test_a_full_issues_disk_names_the_issue_file_not_the_checkpoint(demo: Path, home: Path) -> None:
    """Filing wrote its temp file with no name on the error, so a full workspace disk was
    reported as 'disk error writing <home>/checkpoints/...db': the wrong disk."""
    issues = demo / "issues"
    saved = {p.name: p.read_bytes() for p in issues.iterdir()}
    with full_disk(issues, 200):
        for name, data in saved.items():
            (issues / name).write_bytes(data)
        fill(issues)
        result = subprocess.run(
            [sys.executable, "-m", "agentos.cli.issue", "--repo", str(demo), "--brief", "csv-import.md",
             "--provider", "mock"],
            capture_output=True, text=True, timeout=100, env=cli_env(home), check=False,
        )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    failure = next(line for line in out.splitlines() if "FAILED" in line)
    assert f"disk error writing {issues}/" in failure and "No space left on device" in failure, failure
    assert str(home) not in failure


def test_a_full_audit_disk_names_the_audit_file() -> None:
    """/dev/full answers every write with ENOSPC: the error names the audit file, so the
    item's failure points at the home, not at whatever the fallback would guess."""
    from agentos.core.events import AuditWriter, Event, EventType

    writer = AuditWriter(Path("/dev/full"))
    with pytest.raises(OSError) as raised:
        writer(Event(EventType.NODE_START, "LLD-1"))
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == "/dev/full"
    assert disk_problem(raised.value) == "No space left on device"
