"""stop_admitting(), --fail-fast and the listener fan-out, at the library level."""

import threading
import time
from typing import Any

import pytest

from agentos.core.outcome import ItemStatus
from agentos.engine.listeners import FailFast, ListenerGroup
from agentos.engine.result import ProgressStats, WorkflowResult
from agentos.workflows.parallel import ParallelCoordinator

pytestmark = pytest.mark.timeout(30)


def ident(item: Any) -> str:
    return str(item)


def test_stop_admitting_lets_running_items_finish_and_reports_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    coordinator = ParallelCoordinator(2)
    finished: list[int] = []
    one_running, stopped = threading.Event(), threading.Event()

    def work(item: int, credential: Any) -> None:
        if item == 1:  # running when the switch flips, and finishes after it
            one_running.set()
            assert stopped.wait(5)
        if item == 0:
            assert one_running.wait(5)
            coordinator.stop_admitting("budget reached")
            stopped.set()
            time.sleep(0.2)
        finished.append(item)

    stats, results = coordinator.execute_parallel(range(6), work, ident)
    by_id = {r.item_id: r for r in results}
    assert sorted(finished) == [0, 1]  # both had started; nothing new started
    assert [by_id[str(i)].status for i in range(2, 6)] == [ItemStatus.NOT_STARTED] * 4
    assert by_id["3"].error == "not started: budget reached"
    assert (stats.completed, stats.failed, stats.success_count) == (2, 0, 2)
    assert sorted(coordinator.get_checkpoints()) == ["2", "3", "4", "5"]
    assert not coordinator.stop_event.is_set()
    out = capsys.readouterr().out
    assert out.count("[COORDINATOR] Stopping early: budget reached.") == 1


def test_first_reason_wins_and_it_is_thread_safe() -> None:
    coordinator = ParallelCoordinator(1)
    threads = [threading.Thread(target=coordinator.stop_admitting, args=(f"r{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert coordinator.admission_stop_reason in {f"r{i}" for i in range(8)}
    first = coordinator.admission_stop_reason
    coordinator.stop_admitting("later")
    assert coordinator.admission_stop_reason == first
    stats, results = coordinator.execute_parallel([1, 2], lambda i, c: None, ident)
    assert [r.status for r in results] == [ItemStatus.NOT_STARTED] * 2 and stats.completed == 0


def test_fail_fast_listener_stops_admissions_after_the_first_failure() -> None:
    events: list[str] = []

    class Record:
        def item_started(self, item_id: str, stats: ProgressStats) -> None:
            events.append(f"start {item_id}")

        def item_finished(self, result: WorkflowResult, stats: ProgressStats) -> None:
            events.append(f"end {result.item_id}")

    group = ListenerGroup(Record())
    coordinator = ParallelCoordinator(1, listener=group)
    group.listeners.append(FailFast(coordinator.stop_admitting))

    def work(item: int, credential: Any) -> None:
        if item == 1:
            raise RuntimeError("wrong model name")

    stats, results = coordinator.execute_parallel(range(5), work, ident)
    assert events == ["start 0", "end 0", "start 1", "end 1"]
    assert coordinator.admission_stop_reason == "--fail-fast: 1 failed"
    assert stats.failed == 1 and sum(r.status is ItemStatus.NOT_STARTED for r in results) == 3
