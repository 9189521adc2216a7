"""The credential-source contract with a plain `unittest.mock.Mock()`: capabilities come
from the class, and nothing a source raises escapes `execute_parallel`."""

import threading
import time
from typing import Any
from unittest.mock import Mock

import pytest

from agentos.engine.credential_gate import CredentialGate, capability
from agentos.llm.errors import RateLimited
from agentos.workflows.parallel import ParallelCoordinator

pytestmark = pytest.mark.timeout(30)


def ident(item: Any) -> str:
    return str(item)


def test_the_class_carries_its_limits() -> None:
    assert ParallelCoordinator.DEFAULT_PARALLELISM == 3
    assert ParallelCoordinator.MAX_PARALLELISM == 10
    assert ParallelCoordinator().max_workers == ParallelCoordinator.DEFAULT_PARALLELISM
    assert ParallelCoordinator(99).max_workers == ParallelCoordinator.MAX_PARALLELISM


def test_mock_whose_acquire_returns_none_fails_the_item_not_the_run() -> None:
    source = Mock()
    source.acquire.return_value = None
    stats, results = ParallelCoordinator(2, source).execute_parallel([1, 2, 3], lambda i, c: "ok", ident)
    assert (stats.total, stats.failed, stats.success_count) == (3, 3, 0)
    assert all((r.error or "").startswith("Failed to acquire credential") for r in results)
    source.release.assert_not_called()


def test_plain_mock_is_a_working_source_and_its_extras_are_ignored() -> None:
    source = Mock()  # acquire() returns a Mock credential; usable_count() would return a Mock
    credential = source.acquire.return_value  # made now: Mock creates it lazily, not thread-safely
    seen: list[Any] = []
    stats, _ = ParallelCoordinator(2, source).execute_parallel([1, 2], lambda i, c: seen.append(c), ident)
    assert stats.success_count == 2 and seen == [credential] * 2
    assert source.release.call_count == 2
    for extra in ("usable_count", "earliest_available", "report", "close"):
        assert capability(source, extra) is None
        getattr(source, extra).assert_not_called()


def test_a_mock_instance_attribute_is_not_a_capability() -> None:
    source = Mock()
    source.usable_count.return_value = 0  # would pause the run forever if it were believed
    stats, _ = ParallelCoordinator(1, source).execute_parallel([1], lambda i, c: None, ident)
    assert stats.success_count == 1
    source.usable_count.assert_not_called()


def test_a_capability_defined_on_the_class_is_used() -> None:
    class Counted:
        def acquire(self, timeout: float | None = None) -> str:
            return "k"

        def release(self, key: Any, rate_limited: bool = False, backoff_seconds: float | None = None) -> None:
            pass

        def usable_count(self) -> int:
            return 1

    gate = CredentialGate(Counted(), 3, threading.Event())
    assert gate.effective_limit(True) == 1


@pytest.mark.parametrize("returned", ["three", None, 2.5, True])
def test_a_usable_count_that_is_not_a_count_is_ignored(
    returned: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    class Odd:
        def acquire(self, timeout: float | None = None) -> str:
            return "k"

        def release(self, key: Any, rate_limited: bool = False, backoff_seconds: float | None = None) -> None:
            pass

        def usable_count(self) -> Any:
            return returned

    stats, _ = ParallelCoordinator(2, Odd()).execute_parallel([1, 2], lambda i, c: None, ident)
    assert stats.success_count == 2
    assert "usable_count() raised TypeError" in capsys.readouterr().out


def test_acquire_raising_fails_that_item_and_the_run_goes_on() -> None:
    source = Mock()
    calls = iter([RuntimeError("vault unreachable"), "key-b", "key-c"])

    def acquire(timeout: float | None = None) -> Any:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    source.acquire.side_effect = acquire
    stats, results = ParallelCoordinator(1, source).execute_parallel([1, 2, 3], lambda i, c: c, ident)
    by_id = {r.item_id: r for r in results}
    assert (stats.failed, stats.success_count) == (1, 2)
    assert (by_id["1"].error or "").startswith("Failed to acquire credential for 1")
    assert "vault unreachable" in (by_id["1"].error or "")


def test_release_raising_fails_that_item_only() -> None:
    source = Mock()
    source.release.side_effect = [OSError("lost the lease"), None]
    stats, results = ParallelCoordinator(1, source).execute_parallel([1, 2], lambda i, c: None, ident)
    assert (stats.failed, stats.success_count) == (1, 1)
    failed = next(r for r in results if not r.success)
    assert (failed.error or "").startswith(
        "Failed to release credential"
    ) and "lost the lease" in failed.error


def test_release_raising_after_a_rate_limit_fails_the_item() -> None:
    source = Mock()
    source.release.side_effect = RuntimeError("no")

    def work(item: int, credential: Any) -> None:
        raise RateLimited(5, key_name="k")

    stats, results = ParallelCoordinator(1, source).execute_parallel([1], work, ident)
    assert stats.failed == 1 and "release() raised RuntimeError" in (results[0].error or "")


def test_acquire_that_blocks_then_raises_during_a_run_never_hangs_it() -> None:
    source = Mock()

    def acquire(timeout: float | None = None) -> Any:
        time.sleep(0.05)
        raise KeyError("boom")

    source.acquire.side_effect = acquire
    t0 = time.monotonic()
    stats, _ = ParallelCoordinator(3, source).execute_parallel(range(6), lambda i, c: None, ident)
    assert stats.failed == 6 and time.monotonic() - t0 < 10
