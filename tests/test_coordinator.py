"""The library contract of agentos.workflows.parallel, point by point."""

import os
import signal
import threading
import time
from typing import Any

import pytest

from agentos.core.errors import Interrupted
from agentos.engine.result import ProgressStats, WorkflowResult
from agentos.llm.errors import RateLimited
from agentos.workflows.parallel import (
    DEFAULT_PARALLELISM,
    MAX_PARALLELISM,
    CredentialCoordinator,
    ParallelCoordinator,
)


def ident(item: Any) -> str:
    return str(item)


def test_parallelism_defaults_and_cap(capsys: pytest.CaptureFixture[str]) -> None:
    assert DEFAULT_PARALLELISM == 3 and MAX_PARALLELISM == 10
    assert ParallelCoordinator().max_workers == 3
    assert ParallelCoordinator(None).max_workers == 3
    assert ParallelCoordinator(5).max_workers == 5
    assert capsys.readouterr().out == ""
    assert ParallelCoordinator(25).max_workers == 10
    out = capsys.readouterr().out
    assert "Warning" in out and "10" in out


@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_parallelism_is_rejected(bad: int) -> None:
    with pytest.raises(ValueError):
        ParallelCoordinator(bad)


def test_results_and_stats() -> None:
    calls: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def work(item: int, credential: Any) -> int:
        with lock:
            calls.append((item, credential))
        return item * 2

    stats, results = ParallelCoordinator(3).execute_parallel(range(7), work, ident)
    assert isinstance(stats, ProgressStats)
    assert (stats.total, stats.completed, stats.failed, stats.success_count) == (7, 7, 0, 7)
    assert sorted(calls) == [(i, None) for i in range(7)]
    assert all(isinstance(r, WorkflowResult) and r.success and r.error is None for r in results)
    assert sorted(r.item_id for r in results) == [str(i) for i in range(7)]
    assert all(r.duration >= 0 for r in results)


def test_one_exception_never_stops_the_others() -> None:
    def work(item: int, credential: Any) -> None:
        if item == 2:
            raise RuntimeError("boom on two")

    stats, results = ParallelCoordinator(2).execute_parallel(range(5), work, ident)
    assert (stats.completed, stats.failed, stats.success_count) == (5, 1, 4)
    failed = [r for r in results if not r.success]
    assert [(r.item_id, r.error) for r in failed] == [("2", "boom on two")]


def test_work_overlaps_with_parallelism() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def work(item: int, credential: Any) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.2)
        with lock:
            active -= 1

    ParallelCoordinator(3).execute_parallel(range(6), work, ident)
    assert peak == 3


def test_dynamic_scheduling_starts_next_item_when_one_ends() -> None:
    started: dict[int, float] = {}
    t0 = time.monotonic()

    def work(item: int, credential: Any) -> None:
        started[item] = time.monotonic() - t0
        time.sleep(1.0 if item == 0 else 0.1)

    ParallelCoordinator(2).execute_parallel(range(4), work, ident)
    # Items 2 and 3 run in the slot item 1 frees, long before slow item 0 ends.
    assert started[3] < 0.8


def test_dry_run_calls_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    def work(item: Any, credential: Any) -> None:
        raise AssertionError("must not run")

    stats, results = ParallelCoordinator(2).execute_parallel(["a", "b"], work, ident, dry_run=True)
    out = capsys.readouterr().out
    assert "Dry run mode" in out and "a" in out and "b" in out
    assert (stats.total, stats.completed, results) == (2, 0, [])


def test_credentials_are_passed_and_returned() -> None:
    pool = CredentialCoordinator(["key-one-secret", "key-two-secret"])
    seen: list[str] = []

    def work(item: int, credential: str) -> None:
        seen.append(credential)
        time.sleep(0.05)

    stats, _ = ParallelCoordinator(2, pool).execute_parallel(range(4), work, ident)
    assert stats.success_count == 4
    assert set(seen) <= {"key-one-secret", "key-two-secret"}
    assert pool.acquire(timeout=0) is not None and pool.acquire(timeout=0) is not None


def test_acquire_none_fails_the_item_only() -> None:
    class Empty:
        def acquire(self, timeout: float | None = None) -> None:
            return None

        def release(self, key: Any, rate_limited: bool = False, backoff_seconds: float | None = None) -> None:
            raise AssertionError("nothing to release")

    stats, results = ParallelCoordinator(2, Empty()).execute_parallel([1, 2], lambda i, c: None, ident)
    assert stats.failed == 2
    assert all((r.error or "").startswith("Failed to acquire credential") for r in results)


def test_waiting_for_a_busy_pool_is_announced(capsys: pytest.CaptureFixture[str]) -> None:
    pool = CredentialCoordinator(["first-key-secret", "second-key-secret"])

    def work(item: int, credential: str) -> None:
        time.sleep(0.2)

    stats, _ = ParallelCoordinator(3, pool).execute_parallel([1, 2, 3], work, ident)
    assert stats.success_count == 3
    out = capsys.readouterr().out
    assert "waiting for a key" in out  # normal queueing (issue 19 finding 7)
    assert "exhausted" not in out


def test_simulated_429_rotates_to_another_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTOS_SIMULATE_429", "true")
    pool = CredentialCoordinator(["first-key-secret", "second-key-secret"])
    got: list[str] = []
    ParallelCoordinator(1, pool).execute_parallel([1], lambda i, c: got.append(c), ident)
    assert got == ["second-key-secret"]
    out = capsys.readouterr().out
    assert "rate-limited" in out and "key-1" in out and "first-key-secret" not in out


def test_rate_limited_worker_resumes_with_another_key() -> None:
    pool = CredentialCoordinator(["alpha-secret", "beta-secret"])
    attempts: list[str] = []

    def work(item: int, credential: str) -> str:
        attempts.append(credential)
        if credential == "alpha-secret":
            raise RateLimited(60, key_name="key-1")
        return "done"

    stats, results = ParallelCoordinator(1, pool).execute_parallel([1], work, ident)
    assert stats.success_count == 1 and results[0].value == "done"
    assert attempts == ["alpha-secret", "beta-secret"]
    assert pool.usable_count() == 1
    (result,) = results  # the joblog counts both runs of the item (issue 19 finding 8)
    assert result.attempts == 2 and result.started_at is not None and result.ended_at is not None
    assert result.started_at <= result.ended_at


def test_interrupted_worker_is_reported_as_checkpoint() -> None:
    def work(item: int, credential: Any) -> None:
        raise Interrupted()

    coordinator = ParallelCoordinator(2)
    stats, _ = coordinator.execute_parallel([1], work, ident)
    assert stats.interrupted == 1 and coordinator.get_checkpoints() == ["1"]


def test_shutdown_from_another_thread_drains(capsys: pytest.CaptureFixture[str]) -> None:
    coordinator = ParallelCoordinator(2)
    started = threading.Semaphore(0)

    def work(item: int, credential: Any) -> None:
        started.release()
        deadline = time.monotonic() + 5
        while not coordinator.stop_event.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        if coordinator.stop_event.is_set():
            raise Interrupted()

    def stop_soon() -> None:
        for _ in range(2):  # both slots are busy
            started.acquire(timeout=5)
        coordinator.shutdown.handle(signal.SIGINT, None)

    threading.Thread(target=stop_soon).start()
    t0 = time.monotonic()
    stats, _results = coordinator.execute_parallel(range(6), work, ident)
    assert time.monotonic() - t0 < 3
    checkpoints = coordinator.get_checkpoints()
    assert sorted(checkpoints) == [str(i) for i in range(6)]  # 2 interrupted + 4 never started
    assert stats.interrupted == 2
    assert "Shutting down" in capsys.readouterr().out


def test_signal_handlers_installed_only_during_the_run() -> None:
    before = signal.getsignal(signal.SIGINT)
    during: list[Any] = []

    def work(item: int, credential: Any) -> None:
        during.append(signal.getsignal(signal.SIGINT))

    coordinator = ParallelCoordinator(1)
    coordinator.execute_parallel([1], work, ident)
    assert during and during[0] == coordinator.shutdown.handle
    assert signal.getsignal(signal.SIGINT) == before


def test_real_sigint_to_this_process_drains() -> None:
    coordinator = ParallelCoordinator(1)

    def work(item: int, credential: Any) -> None:
        if item == 0:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)

    _stats, _ = coordinator.execute_parallel(range(3), work, ident)
    assert coordinator.stop_event.is_set()
    assert "1" in coordinator.get_checkpoints() and "2" in coordinator.get_checkpoints()


def test_duplicate_signal_within_a_second_is_ignored() -> None:
    coordinator = ParallelCoordinator(1)
    coordinator.shutdown.handle(signal.SIGINT, None)
    coordinator.shutdown.handle(signal.SIGINT, None)
    assert coordinator.stop_event.is_set() and not coordinator.force_event.is_set()
    coordinator.shutdown.first_at = time.monotonic() - 2  # a second press, later
    coordinator.shutdown.handle(signal.SIGINT, None)
    assert coordinator.force_event.is_set()
