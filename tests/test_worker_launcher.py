"""The real process engine with hostile workers: lines never mix, the coordinator survives."""

import io
import os
import re
import threading
import time
from pathlib import Path

import pytest

from agentos.core.outcome import ItemStatus
from agentos.engine.console import ConsoleRouter
from agentos.engine.coordinator import ParallelCoordinator
from agentos.engine.fork_server import make_context
from agentos.engine.worker_launcher import WorkerLauncher
from agentos.workflows.item import ItemJob, WorkflowKind
from tests.helpers.hostile import hostile_main

pytestmark = pytest.mark.timeout(90)
LINE = re.compile(r"^\[(?P<id>[A-Za-z0-9-]+)\] (?P<text>.*)$")


def jobs(tmp_path: Path, *keys: str) -> list[ItemJob]:
    return [
        ItemJob(
            WorkflowKind.ISSUE,
            k,
            str(tmp_path),
            str(tmp_path / f"{k}.db"),
            str(tmp_path / f"{k}.jsonl"),
            "mock",
            "mock",
        )
        for k in keys
    ]


def hostile_runner(
    tmp_path: Path, coordinator: ParallelCoordinator, router: ConsoleRouter, env: dict[str, str]
) -> WorkerLauncher:
    """The real process engine, running `hostile_main` instead of the workflow worker."""
    return WorkerLauncher(
        make_context([]),
        router,  # type: ignore[arg-type]
        lambda job: tmp_path / f"{job.item_id}.log",
        coordinator.stop_event,
        coordinator.force_event,
        env,
        target=hostile_main,
    )


def run(tmp_path: Path, *keys: str, parallel: int = 4):  # type: ignore[no-untyped-def]
    sink = io.StringIO()
    router = ConsoleRouter(sink)
    coordinator = ParallelCoordinator(parallel)
    runner = hostile_runner(tmp_path, coordinator, router, {})
    stats, results = coordinator.execute_parallel(jobs(tmp_path, *keys), runner, lambda j: j.item_id)
    router.flush()
    return stats, {r.item_id: r for r in results}, sink.getvalue().splitlines()


def test_hostile_output_never_mixes_lines(tmp_path: Path) -> None:
    keys = ("halfline", "megabyte", "badutf8", "chatty", "stderr")
    stats, _results, lines = run(tmp_path, *keys, parallel=5)
    assert stats.success_count == 5
    assert all(LINE.match(line) for line in lines), [ln[:80] for ln in lines if not LINE.match(ln)][:3]
    by_id: dict[str, list[str]] = {}
    for line in lines:
        m = LINE.match(line)
        assert m
        by_id.setdefault(m["id"], []).append(m["text"])
    assert by_id["ISSUE-halfline"] == ["first half second half"]
    assert by_id["ISSUE-chatty"] == [
        f"chatty line {i:03d} with some padding to make it longer" for i in range(300)
    ]
    assert by_id["ISSUE-badutf8"] == ["bad bytes \ufffd\ufffd\ufffd here"]
    assert by_id["ISSUE-stderr"] == ["to stderr"]
    mega = by_id["ISSUE-megabyte"]
    assert "".join(mega[:-1]) == "x" * 1_000_000 and mega[-1] == "after the megabyte"
    # The item log holds the full, unprefixed output.
    assert (tmp_path / "ISSUE-chatty.log").read_text().count("\n") == 300
    assert (tmp_path / "ISSUE-megabyte.log").stat().st_size > 1_000_000


def test_crashes_fail_their_item_only(tmp_path: Path) -> None:
    stats, results, lines = run(tmp_path, "crash", "segfault", "garbage", "chatty")
    assert stats.failed == 3 and stats.success_count == 1
    assert "exited with code 3" in (results["ISSUE-crash"].error or "")
    assert "killed by signal 11" in (results["ISSUE-segfault"].error or "")
    assert "without reporting an outcome" in (results["ISSUE-garbage"].error or "")
    assert "[ISSUE-crash] about to crash" in lines


def test_progress_notes_reach_the_panel_and_garbage_among_them_is_dropped(tmp_path: Path) -> None:
    """Notes travel on the result pipe ahead of the outcome, read as they come (3,000 of them
    overflow a pipe's buffer: a coordinator that read them only at the end would hang)."""
    from agentos.core.progress_note import ProgressNote

    sink = io.StringIO()
    router = ConsoleRouter(sink)
    coordinator = ParallelCoordinator(3)
    notes: list[tuple[str, ProgressNote]] = []
    runner = WorkerLauncher(
        make_context([]),
        router,  # type: ignore[arg-type]
        lambda job: tmp_path / f"{job.item_id}.log",
        coordinator.stop_event,
        coordinator.force_event,
        {},
        target=hostile_main,
        on_progress=lambda item_id, note: notes.append((item_id, note)),
    )
    _stats, results = coordinator.execute_parallel(
        jobs(tmp_path, "notes", "garbage", "ratelimited"), runner, lambda j: j.item_id
    )
    router.flush()
    by_id = {r.item_id: r for r in results}
    outcome = by_id["ISSUE-notes"].outcome
    assert outcome is not None and outcome.status is ItemStatus.APPROVED and outcome.rounds == 1
    assert "without reporting an outcome" in (by_id["ISSUE-garbage"].error or "")  # as before
    mine = [note for item_id, note in notes if item_id == "ISSUE-notes"]
    assert mine[0] == ProgressNote.worker_started()
    assert mine[1] == ProgressNote(node="draft", round=1, key="team-a", tokens=10)
    assert mine[2] == ProgressNote(node="?[2Jboom")
    assert [n.tokens for n in mine[3:]] == list(range(3000))
    assert [n for item_id, n in notes if item_id == "ISSUE-garbage"] == [ProgressNote.worker_started()]
    assert "[ISSUE-notes] noted" in sink.getvalue().splitlines()
    paused = [n for item_id, n in notes if item_id == "ISSUE-ratelimited"]  # waits for a key to resume
    assert paused == [ProgressNote.worker_started(), ProgressNote(node="paused for a key", key="(waiting)")]


def test_each_item_runs_in_its_own_process(tmp_path: Path) -> None:
    sink = io.StringIO()
    coordinator = ParallelCoordinator(3)
    runner = hostile_runner(tmp_path, coordinator, ConsoleRouter(sink), {})
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(runner.pids.values())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    stats, _ = coordinator.execute_parallel(
        jobs(tmp_path, "halfline", "halfline-b", "halfline-c"), runner, lambda j: j.item_id
    )
    done.set()
    watcher.join()
    assert stats.success_count == 3
    assert len(seen) == 3 and os.getpid() not in seen


def test_a_key_printed_by_a_worker_is_redacted(tmp_path: Path) -> None:
    from agentos.core.redaction import clear_secrets, register_secret

    secret = "sk-live-0123456789abcdef"
    register_secret(secret, "team-a")
    try:
        sink = io.StringIO()
        coordinator = ParallelCoordinator(1)
        runner = hostile_runner(tmp_path, coordinator, ConsoleRouter(sink), {"LEAKED": secret})
        coordinator.execute_parallel(jobs(tmp_path, "leaky"), runner, lambda j: j.item_id)
    finally:
        clear_secrets()
    assert "[ISSUE-leaky] oops, the key is <key:team-a>" in sink.getvalue()
    assert secret not in sink.getvalue()
    assert secret not in (tmp_path / "ISSUE-leaky.log").read_text()


def test_items_run_with_more_than_1024_descriptors_open(tmp_path: Path) -> None:
    """Issue 20 finding 7: past fd 1,024, select() failed every item ("filedescriptor out of range")."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200 + 64
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard descriptor limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1200)]
    try:
        assert max(held) > 1024
        stats, results, _lines = run(tmp_path, "chatty", "halfline", parallel=2)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert stats.success_count == 2, {k: r.error for k, r in results.items()}


def test_a_worker_outlives_the_fork_server_being_killed(tmp_path: Path) -> None:
    """Issue 20 finding 18: a stalled start kills the fork server, which then reads as "exited"
    (255) for every running worker. A worker silent for a second was dropped, its item failed
    ("exited with code 255") while it ran on without supervision; it is now followed to its end."""
    from agentos.engine.fork_server import stop_helpers

    sink = io.StringIO()
    router = ConsoleRouter(sink)
    coordinator = ParallelCoordinator(1)
    runner = hostile_runner(tmp_path, coordinator, router, {})

    def kill_the_server_mid_item() -> None:
        deadline = time.monotonic() + 30
        while "ISSUE-quiet" not in runner.pids and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the worker is in its silent call
        stop_helpers()  # what a stalled start elsewhere does

    killer = threading.Thread(target=kill_the_server_mid_item)
    killer.start()
    stats, results = coordinator.execute_parallel(jobs(tmp_path, "quiet"), runner, lambda j: j.item_id)
    killer.join()
    router.flush()
    assert stats.success_count == 1, {r.item_id: r.error for r in results}
    assert "[ISSUE-quiet] answered" in sink.getvalue()


def test_a_start_cut_short_by_another_starts_stall_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20 finding 18: two starts wait on a stopped fork server; the first to reach its
    deadline kills the server, and the other's start then failed with a bare "EOFError: ".
    It is tried once more, on a new server, and its item runs."""
    import signal

    from agentos.engine.fork_server import stop_helpers

    monkeypatch.setenv("AGENTOS_STARTUP_TIMEOUT", "5")  # also what the new server has to preload
    coordinator = ParallelCoordinator(2)
    runner = hostile_runner(tmp_path, coordinator, ConsoleRouter(io.StringIO()), {})
    runner.ctx.Process(target=print).start()  # the server is up and preloaded
    from multiprocessing import forkserver

    server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    os.kill(server, signal.SIGSTOP)
    first, second = jobs(tmp_path, "halfline", "badutf8")
    outcomes: dict[str, object] = {}

    def run_item(job: ItemJob) -> None:
        try:
            outcomes[job.item_id] = runner(job, None)
        except Exception as exc:
            outcomes[job.item_id] = exc

    try:
        stalls = threading.Thread(target=run_item, args=(first,))
        stalls.start()  # its deadline comes 2 s before the second's
        time.sleep(2.0)
        cut_short = threading.Thread(target=run_item, args=(second,))
        cut_short.start()
        stalls.join(30)
        cut_short.join(30)
    finally:
        stop_helpers()
    assert "did not answer within 5s" in str(outcomes[first.item_id]), outcomes
    second_outcome = outcomes[second.item_id]
    assert getattr(second_outcome, "status", None) is not None, second_outcome
    assert second_outcome.status.succeeded, second_outcome  # type: ignore[attr-defined]
