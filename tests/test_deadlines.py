"""Every deadline is decided in one place, the coordinator's tick, on its injected clock.

The clock here runs far faster than the wall: a 60-second item timeout and a 1000-second
drain grace pass in a fraction of a real second. Were any of them timed elsewhere (a
Timer, a sleep, a pump's own deadline), these tests would wait for the real minutes.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from agentos.core.outcome import ItemStatus
from agentos.engine.coordinator import ParallelCoordinator


def fast_clock(step: float) -> object:
    ticks = itertools.count(0.0, step)
    lock = threading.Lock()

    def now() -> float:
        with lock:
            return next(ticks)

    return now


@pytest.mark.timeout(30)
def test_the_tick_expires_an_item_by_the_injected_clock() -> None:
    coordinator = ParallelCoordinator[None](1, item_timeout=60.0, clock=fast_clock(5.0))  # type: ignore[arg-type]
    reasons: list[str] = []
    expired = threading.Event()

    def work(item: str, lease: None) -> str:
        coordinator.on_expiry(item, lambda reason: (reasons.append(reason), expired.set()))
        assert expired.wait(10), "the tick never expired the item"
        return "stopped"

    started = time.monotonic()
    _, results = coordinator.execute_parallel(["slow"], work, str)
    assert reasons == ["timed out after 1m (--item-timeout)"]
    assert results[0].item_id == "slow"
    assert time.monotonic() - started < 8  # a fake minute, not a real one


@pytest.mark.timeout(30)
def test_an_item_within_its_timeout_is_left_alone() -> None:
    coordinator = ParallelCoordinator[None](1, item_timeout=3600.0, clock=fast_clock(0.001))  # type: ignore[arg-type]
    reasons: list[str] = []

    def work(item: str, lease: None) -> str:
        coordinator.on_expiry(item, reasons.append)
        time.sleep(0.5)  # a few ticks pass
        return "done"

    _, results = coordinator.execute_parallel(["quick"], work, str)
    assert reasons == [] and results[0].success


@pytest.mark.timeout(30)
def test_the_drain_deadline_is_the_ticks(capsys: pytest.CaptureFixture[str]) -> None:
    """A worker that ignores the stop: the tick's grace (1000 fake seconds) runs out, the rest
    is killed, and the coordinator stops waiting: the item is reported, never awaited forever."""
    coordinator = ParallelCoordinator[None](1, shutdown_grace=1000.0, clock=fast_clock(50.0))  # type: ignore[arg-type]
    release = threading.Event()
    running = threading.Event()

    def work(item: str, lease: None) -> str:
        running.set()
        release.wait(20)  # deaf to the stop
        return "late"

    def stop_soon() -> None:
        running.wait(10)
        coordinator.stop_event.set()

    threading.Thread(target=stop_soon, daemon=True).start()
    started = time.monotonic()
    try:
        _, results = coordinator.execute_parallel(["deaf"], work, str)
    finally:
        release.set()
    assert time.monotonic() - started < 8  # 1000 fake seconds of grace
    (result,) = results
    assert result.status is ItemStatus.INTERRUPTED
    assert result.error is not None and "shutdown deadline" in result.error
    assert "Still running after 1000s: deaf; killing" in capsys.readouterr().out
