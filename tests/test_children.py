"""The one owner of live workers: TERM, grace, KILL, and a coordinator that always exits."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from agentos.engine.children import ChildRegistry, TermSequence
from agentos.engine.fork_server import make_context
from tests.helpers.live_run import LiveRun, kill_all

pytestmark = pytest.mark.timeout(90)


def _ignore_term(ready: Connection) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    ready.send("ignoring TERM")  # only now may the test send it: a busy machine starts slowly
    while True:
        time.sleep(1)


def _start_ignoring_term() -> BaseProcess:
    ctx = make_context([])
    ready_r, ready_w = ctx.Pipe(duplex=False)
    process: BaseProcess = ctx.Process(target=_ignore_term, args=(ready_w,))
    process.start()
    assert ready_r.poll(30), "the worker never got ready"
    ready_r.recv()
    return process


def _stop_self() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    os.setpgid(0, 0)
    os.kill(os.getpid(), signal.SIGSTOP)
    while True:
        time.sleep(1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_worker_that_ignores_term_is_killed_after_the_grace() -> None:
    clock = Clock()
    registry = ChildRegistry(TermSequence(grace=5.0), clock=clock)
    process = _start_ignoring_term()
    registry.add("x", process)
    registry.stop("x")
    assert registry.escalate() == []  # within the grace: TERM only
    process.join(0.5)
    assert process.exitcode is None
    clock.now += 5.0
    assert registry.escalate() == ["x"]
    process.join(10)
    assert process.exitcode == -signal.SIGKILL


def test_a_stopped_worker_is_woken_so_it_sees_the_term() -> None:
    registry = ChildRegistry()
    process = make_context([]).Process(target=_stop_self)
    process.start()
    registry.add("x", process)
    deadline = time.monotonic() + 10
    while _state(process.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _state(process.pid) == "T"
    registry.stop("x")  # TERM, then CONT
    process.join(10)
    assert process.exitcode == -signal.SIGTERM


def test_reap_leaves_nothing_for_the_exit_time_join() -> None:
    registry = ChildRegistry(TermSequence(grace=0.5))
    process = _start_ignoring_term()
    registry.add("x", process)
    assert registry.live() == ["x"]
    assert registry.reap(5.0) == []
    assert process.exitcode == -signal.SIGKILL
    assert process not in multiprocessing.active_children()


def test_a_worker_started_during_the_shutdown_is_stopped_at_once() -> None:
    registry = ChildRegistry()
    registry.stop_all()
    process = make_context([]).Process(target=_stop_self)
    process.start()
    time.sleep(0.3)
    registry.add("late", process)
    process.join(10)
    assert process.exitcode == -signal.SIGTERM


def _results(run: LiveRun) -> dict[str, list[str]]:
    line = next(ln for ln in run.lines if ln.startswith("RESULTS "))
    data: dict[str, list[str]] = json.loads(line.removeprefix("RESULTS "))
    return data


def _gone_soon(run: LiveRun, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while run.session_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    return run.session_processes()


@pytest.mark.parametrize("stuck", ["ignore-term", "sigstop"])
def test_sigint_with_a_stuck_worker_exits_within_the_grace(tmp_path: Path, home: Path, stuck: str) -> None:
    grace = 2.0
    run = LiveRun("hostile-batch", str(tmp_path), str(grace), "0", stuck, "ignore-term-b", home=home)
    try:
        run.wait_for(r">>> Worker process \d+ started", count=2)
        time.sleep(0.3)  # the sigstop worker has stopped itself
        sent = time.monotonic()
        run.signal_group(signal.SIGINT)
        code = run.wait(timeout=30)
        elapsed = time.monotonic() - sent
        leftovers = _gone_soon(run)
    finally:
        kill_all(run)
    assert code == 130, run.output
    assert elapsed < grace + 4.0, elapsed  # the grace, the KILL, the reap: never forever
    assert leftovers == [], "workers, fork server and resource tracker all end with the coordinator"
    results = _results(run)
    for key in (stuck, "ignore-term-b"):
        status, error = results[f"ISSUE-{key}"]
        assert status == "interrupted", (key, error)
        assert "killed by signal 9" in error
    assert "Still running after 2s" in run.output
    assert "Traceback" not in run.output


def test_item_timeout_fails_only_the_stuck_item(tmp_path: Path, home: Path) -> None:
    run = LiveRun("hostile-batch", str(tmp_path), "1.0", "1.5", "never-answers", "halfline", home=home)
    try:
        code = run.wait(timeout=30)
        leftovers = _gone_soon(run)
    finally:
        kill_all(run)
    assert code == 0, run.output
    assert leftovers == []
    results = _results(run)
    status, error = results["ISSUE-never-answers"]
    assert status == "failed" and error.startswith("timed out after 1.5s (--item-timeout)"), error
    assert results["ISSUE-halfline"][0] == "approved"
    assert "[ISSUE-never-answers] TIMED OUT after 1.5s" in run.output


def test_a_supervisor_that_never_returns_is_reported_interrupted_not_missing() -> None:
    from agentos.core.outcome import ItemStatus
    from agentos.engine.coordinator import ParallelCoordinator

    coordinator = ParallelCoordinator(2, shutdown_grace=0.3)
    release = threading.Event()

    def stubborn(item: str, credential: object) -> str:  # ignores every stop
        if item == "quick":
            return item
        coordinator.stop_event.set()  # a Ctrl+C arrives while it runs
        release.wait(30)
        return item

    started = time.monotonic()
    try:
        _, results = coordinator.execute_parallel(["stuck", "quick"], stubborn, str)
    finally:
        release.set()
    assert time.monotonic() - started < 0.3 + coordinator.children.sequence.reap + 2.0
    by_id = {r.item_id: r for r in results}
    assert by_id["stuck"].status is ItemStatus.INTERRUPTED
    assert by_id["stuck"].error == "still running at the shutdown deadline"
    assert "stuck" in coordinator.get_checkpoints()


def _fork_server_of(pid: int) -> int:
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError("no fork server")


def test_a_stuck_worker_is_still_killed_after_its_fork_server_was(tmp_path: Path, home: Path) -> None:
    """Issue 20 finding 18: a stalled start kills the fork server, whose sentinels then read
    "exited" for every running worker. The registry took them at their word: no TERM, no KILL,
    and a worker that ignores SIGTERM outlived the run (holding its stdout). The pid decides."""
    grace = 1.0
    run = LiveRun("hostile-batch", str(tmp_path), str(grace), "0", "ignore-term", home=home)
    try:
        run.wait_for(r">>> Worker process \d+ started")
        os.kill(_fork_server_of(run.proc.pid), signal.SIGKILL)  # what a stalled start does
        run.signal_group(signal.SIGINT)
        code = run.wait(timeout=30)
        leftovers = _gone_soon(run)
    finally:
        kill_all(run)
    assert code == 130, run.output
    assert leftovers == [], "the worker ends with the coordinator"
    status, error = _results(run)["ISSUE-ignore-term"]
    assert status == "interrupted", error
