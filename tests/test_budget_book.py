"""The budget book: per-call key choice, waiting order, the capacity line; and whole paced
batches simulated on an injected clock against sliding-window servers."""

import threading
import time

import pytest

from agentos.core.printing import Lines
from agentos.keys.budget_book import NOTE_AFTER_S, NOTE_EVERY_S, BudgetBook, Grant
from agentos.llm.rate_limits import Budget, Outcome, RateLimitInfo
from tests.helpers.rate_sim import FakeClock, FakePool, simulate


def book_with(keys: int = 3, concurrency: int = 4, rpm: int | None = None):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    pool = FakePool(clock, [f"k{i}" for i in range(1, keys + 1)], concurrency, rpm)
    lines = Lines()
    return BudgetBook({"openai": pool}, clock=clock, console=lines), clock, pool, lines


def info(limit: int, remaining: int, reset: float) -> RateLimitInfo:
    return RateLimitInfo(Budget(limit, remaining, reset), Budget())


def test_each_call_gets_the_key_with_the_most_room() -> None:
    book, clock, _, _ = book_with(keys=2)
    first = book.try_acquire("openai")
    assert isinstance(first, Grant)
    book.complete(first.id, Outcome.OK, info(4, 1, 10.0), sent_at=0.0)  # that key has 1 left
    clock.now = 1.0
    second = book.try_acquire("openai")
    assert isinstance(second, Grant) and second.key != first.key
    assert second.secret.startswith(f"secret-{second.key}")


def test_a_key_cooling_in_the_pool_is_never_granted() -> None:
    book, clock, pool, _ = book_with(keys=2)
    pool.cooling["k1"] = 50.0
    keys = set()
    for step in range(6):
        clock.now = step * 1.0
        grant = book.try_acquire("openai")
        assert isinstance(grant, Grant)
        keys.add(grant.key)
        book.complete(grant.id, Outcome.OK)
    assert keys == {"k2"}


def test_a_key_rejected_on_the_channel_is_never_granted_again() -> None:
    """Issue 21 point 5: the book hears of a rejection from the call itself, not only when
    the item's outcome comes back, so no second call goes out on a rejected key."""
    book, clock, pool, _ = book_with(keys=2)
    first = book.try_acquire("openai")
    assert isinstance(first, Grant)
    book.complete(first.id, Outcome.REJECTED, sent_at=0.0)
    assert pool.rejected == {first.key}
    keys = set()
    for step in range(1, 7):
        clock.now = step * 1.0
        grant = book.try_acquire("openai")
        assert isinstance(grant, Grant)
        keys.add(grant.key)
        book.complete(grant.id, Outcome.OK)
    assert first.key not in keys


def test_no_key_with_room_says_when_one_will_have_it() -> None:
    book, _clock, _, _ = book_with(keys=1, rpm=2)
    for _ in range(2):
        grant = book.try_acquire("openai")
        assert isinstance(grant, Grant)
        book.complete(grant.id, Outcome.OK, sent_at=0.0)
    assert book.try_acquire("openai") == pytest.approx(60.15)


def test_waiting_calls_drafts_first_then_in_order() -> None:
    book, _, pool, _ = book_with(keys=1, rpm=1)
    clock = time.monotonic
    book.clock = clock
    pool.clock = clock  # type: ignore[assignment]
    blocker = book.try_acquire("openai")
    assert isinstance(blocker, Grant)
    order: list[str] = []

    def wait(name: str, urgent: bool) -> None:
        if book.acquire("openai", urgent=urgent) is not None:
            order.append(name)

    threads = []
    for name, urgent in (("review-1", False), ("review-2", False), ("draft-1", True)):
        thread = threading.Thread(target=wait, args=(name, urgent))
        thread.start()
        threads.append(thread)
        time.sleep(0.05)
    for budget in book._budgets.values():  # the minute is over: room for one call at a time
        budget.limit = 10**6
    book.complete(blocker.id, Outcome.OK)
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["draft-1", "review-1", "review-2"]


def test_a_waiter_that_goes_away_leaves_the_queue() -> None:
    book, _, _, _ = book_with(keys=1, rpm=1)
    book.clock = time.monotonic
    book.try_acquire("openai")
    gone = threading.Event()
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(book.acquire("openai", cancelled=gone.is_set)))
    thread.start()
    time.sleep(0.05)
    gone.set()
    thread.join(timeout=5)
    assert result == [None] and book._queues["openai"] == []


def test_the_calls_waiting_for_budget_are_counted_for_the_live_panel() -> None:
    book, _, _, _ = book_with(keys=1, rpm=1)
    book.clock = time.monotonic
    book.try_acquire("openai")
    gone = threading.Event()
    threads = [
        threading.Thread(target=lambda: book.acquire("openai", cancelled=gone.is_set)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while book.waiting < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert book.waiting == 3
    gone.set()
    for thread in threads:
        thread.join(timeout=5)
    assert book.waiting == 0


def test_close_wakes_every_waiter() -> None:
    book, _, _, _ = book_with(keys=1, rpm=1)
    book.clock = time.monotonic
    book.try_acquire("openai")
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(book.acquire("openai")))
    thread.start()
    time.sleep(0.05)
    book.close()
    thread.join(timeout=5)
    assert result == [None]
    assert book.acquire("gemini") is None  # no pool for it


def test_pool_at_capacity_is_said_and_not_repeated_too_often() -> None:
    book, clock, _, lines = book_with(keys=3)
    used: dict[str, int] = {}
    for _ in range(12):  # every key full: 4 req / 10 s each
        grant = book.try_acquire("openai")
        assert isinstance(grant, Grant)
        used[grant.key] = used.get(grant.key, 0) + 1
        book.complete(grant.id, Outcome.OK, info(4, 4 - used[grant.key], 10.0), sent_at=0.0)
    assert book.try_acquire("openai") == pytest.approx(10.15)
    book._queues["openai"] = [(1, 100 + i) for i in range(14)]  # 14 calls waiting
    book._head_since["openai"] = 0.0
    clock.now = NOTE_AFTER_S / 2
    book._note("openai", clock.now)
    assert lines == []  # a short wait is not worth a line
    clock.now = NOTE_AFTER_S
    book._note("openai", clock.now)
    book._note("openai", clock.now + NOTE_EVERY_S / 2)
    assert lines == ["[COORDINATOR] pool at capacity: 12 req/10s across 3 openai keys; 14 calls waiting"]


def test_stats_name_keys_and_never_secrets() -> None:
    book, _, _, _ = book_with(keys=2, rpm=30)
    grant = book.try_acquire("openai")
    assert isinstance(grant, Grant)
    book.complete(grant.id, Outcome.RATE_LIMITED, retry_after=2.0)
    stats = book.stats()["openai"]
    assert stats[grant.key]["refused"] == 1 and stats[grant.key]["limit_from"] in ("declared", "learned")
    assert "secret" not in repr(stats)


# -- whole batches, simulated ----------------------------------------------------------


@pytest.mark.parametrize(("keys", "parallel"), [(1, 3), (2, 10), (3, 3), (3, 10), (4, 10)])
def test_with_headers_a_batch_gets_no_429_and_nears_the_ideal(keys: int, parallel: int) -> None:
    result = simulate(items=24, parallel=parallel, keys=keys, headers=True)
    assert result.refused == 0
    # the pool's ideal makespan for this shape is within a few margins of this
    ideal = {1: 111.0, 2: 50.5, 3: 31.0 if parallel == 10 else 32.0, 4: 21.5}[keys]
    assert result.makespan <= ideal * 1.1


@pytest.mark.parametrize(("keys", "parallel"), [(1, 3), (2, 10), (3, 3), (3, 10), (4, 3), (4, 10)])
def test_without_headers_at_most_one_refusal_per_key_per_window(keys: int, parallel: int) -> None:
    result = simulate(items=24, parallel=parallel, keys=keys, headers=False)
    assert result.worst_window <= 1
    assert result.served == 48


def test_declared_rpm_paces_without_a_single_429() -> None:
    result = simulate(items=6, parallel=3, keys=2, limit=3, window=60.0, headers=False, rpm=3)
    assert result.refused == 0 and result.served == 12


def test_unknown_limit_below_the_concurrency_costs_one_refusal_per_key() -> None:
    result = simulate(items=12, parallel=10, keys=2, limit=2, window=10.0, headers=True)
    assert result.refused <= 2 and result.served == 24
