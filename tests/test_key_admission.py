"""Two runs decide on one key under its lock in the ledger, never on a stale view (issue 22).

Each run's budget book reads the other runs' slots at most every READ_EVERY_S; between two
reads, two runs could both take the key's last free slot, and runs that start together
could both probe a limit neither knows. Both were seen in the real benchmark (two runs,
`reset` = until whole: one refusal on each key within 20 ms of start-up). Here the clock is
frozen, so a cached view never refreshes by itself: only the admission's fresh read under
the key's lock keeps the runs within the limit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agentos.backend.key_ledger import KeyLedger, KeyModel
from agentos.backend.local.key_ledger import SqliteKeyLedger
from agentos.core.printing import Lines
from agentos.keys.budget_book import BudgetBook, Grant
from agentos.keys.key_budget import PROBE_GAP_S, PROBE_SETTLE_S
from agentos.llm.rate_limits import Budget, Outcome, RateLimitInfo
from tests.helpers.rate_sim import FakeClock, FakePool

pytestmark = pytest.mark.timeout(120)
Ledgers = Callable[[FakeClock, str], KeyLedger]


@pytest.fixture(params=["sqlite", "postgres"])
def ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> Ledgers:
    """One home's keys.db, or one team's Postgres: each call is another run's ledger."""
    if request.param == "sqlite":
        return lambda clock, run: SqliteKeyLedger(tmp_path / "keys.db", run=run, clock=clock, pid=1)
    from agentos.backend.postgres.key_ledger import PostgresKeyLedger

    url = request.getfixturevalue("postgres_url")
    return lambda clock, run: PostgresKeyLedger(url, run=run, clock=clock)


def book(ledgers: Ledgers, clock: FakeClock, run: str) -> BudgetBook:
    pool = FakePool(clock, ["k"], per_key_concurrency=8)
    return BudgetBook({"openai": pool}, clock=clock, wall=clock, ledger=ledgers(clock, run), console=Lines())


def grants(*books: BudgetBook) -> list[tuple[int, Grant]]:
    """Each book in turn asks for a permit at the same instant until none gets one."""
    got: list[tuple[int, Grant]] = []
    progress = True
    while progress:
        progress = False
        for n, b in enumerate(books):
            result = b.try_acquire("openai")
            if isinstance(result, Grant):
                got.append((n, result))
                progress = True
    return got


def test_two_runs_never_both_take_the_last_free_slot(ledgers: Ledgers) -> None:
    clock = FakeClock()
    clock.now = 1000.0
    a, b = book(ledgers, clock, "A"), book(ledgers, clock, "B")
    probe = a.try_acquire("openai")
    assert isinstance(probe, Grant)
    clock.now += 0.3
    a.complete(probe.id, Outcome.OK, RateLimitInfo(Budget(4, 3, 10.0), Budget()), sent_at=1000.0)
    taken = grants(a, b)  # a, b, a, b...: each decides right after the other's grant
    assert len(taken) == 3, taken  # 4 a window, one of them the probe
    assert [n for n, _ in taken] == [0, 1, 0]


def test_runs_starting_together_probe_an_unknown_limit_one_call_at_a_time(ledgers: Ledgers) -> None:
    clock = FakeClock()
    clock.now = 1000.0
    books = [book(ledgers, clock, run) for run in "ABC"]
    taken = grants(*books)
    assert len(taken) == 1, taken
    ((n, first),) = taken
    clock.now += PROBE_GAP_S
    assert grants(*books) == []  # the probe is not answered yet: a 429 would come back at once
    books[n].complete(first.id, Outcome.OK, None, sent_at=1000.0)  # no headers: nothing learned
    assert len(grants(*books)) == 1  # the next probe, by whichever run asks first
    clock.now += PROBE_SETTLE_S
    assert len(grants(*books)) == 1  # not refused by now: admitted, and the next may go


def test_a_run_that_knew_nothing_paces_by_what_another_learned_before_its_first_call(
    ledgers: Ledgers,
) -> None:
    clock = FakeClock()
    clock.now = 1000.0
    a, b = book(ledgers, clock, "A"), book(ledgers, clock, "B")
    probe = b.try_acquire("openai")
    assert isinstance(probe, Grant)
    clock.now += 0.3
    b.complete(probe.id, Outcome.OK, RateLimitInfo(Budget(2, 1, 10.0), Budget()), sent_at=1000.0)
    taken = grants(a, b)  # a's first look at the key is its admission
    assert [n for n, _ in taken] == [0]  # one slot of 2 was left: a took it, as first to ask
    assert a.stats()["openai"]["k"]["limit"] == 2
    assert a.stats()["openai"]["k"]["limit_from"] == "headers"


def test_runs_racing_in_threads_stay_within_the_limit(ledgers: Ledgers) -> None:
    """Real concurrency: four runs' books ask at once from their own threads, on one frozen
    instant, after the limit is known. The key's lock lets exactly the limit through."""
    clock = FakeClock()
    clock.now = 1000.0
    books = [book(ledgers, clock, f"run{n}") for n in range(4)]
    probe = books[0].try_acquire("openai")
    assert isinstance(probe, Grant)
    clock.now += 0.3
    books[0].complete(probe.id, Outcome.OK, RateLimitInfo(Budget(6, 5, 10.0), Budget()), sent_at=1000.0)
    start = threading.Barrier(len(books))
    got: list[Grant] = []

    def ask(b: BudgetBook) -> None:
        start.wait()
        for _ in range(10):
            result = b.try_acquire("openai")
            if isinstance(result, Grant):
                got.append(result)

    threads = [threading.Thread(target=ask, args=(b,)) for b in books]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 5  # 6 a window, one of them the probe


def test_a_key_another_run_was_refused_on_is_not_granted_in_the_same_instant(ledgers: Ledgers) -> None:
    """The pool re-reads other runs' cool-downs once a second; the admission reads them at once."""
    from agentos.backend.key_ledger import KeyRef, fingerprint

    clock = FakeClock()
    clock.now = 1000.0
    a = book(ledgers, clock, "A")
    other = ledgers(clock, "B")
    other.mark(KeyRef(fingerprint("secret-k-0123456789"), "openai", "k"), cooldown_until=1009.0)
    result = a.try_acquire("openai")
    assert result == 1009.0
    clock.now = 1009.0
    assert isinstance(a.try_acquire("openai"), Grant)


def test_a_429_in_one_run_holds_the_key_off_in_every_run_at_once(ledgers: Ledgers) -> None:
    """The book marks the key in the ledger as the answer arrives, not when the worker's
    error reaches the pool: the real benchmark (two header-less runs, load average 12) saw
    another run sent on the key 300 ms after the first refusal, and refused too."""
    clock = FakeClock()
    clock.now = 1000.0
    a, b = book(ledgers, clock, "A"), book(ledgers, clock, "B")
    probe = a.try_acquire("openai")
    assert isinstance(probe, Grant)
    clock.now += 0.01
    a.complete(probe.id, Outcome.RATE_LIMITED, None, sent_at=1000.0, retry_after=9.0)
    clock.now += PROBE_GAP_S  # the probe gap alone would let b send now
    assert b.try_acquire("openai") == 1009.01
    assert not a.pools["openai"].is_usable("k")  # a's own pool holds it off, in silence
    assert a.console == []


def test_a_hostile_cool_down_in_the_store_is_bounded_as_the_pool_bounds_it(ledgers: Ledgers) -> None:
    """Another writer of the store (or a corrupt row) marks the key cooling until 1e300: the
    admission must not wait forever on it, and bounds it exactly as the pool does."""
    from agentos.backend.key_ledger import KeyRef, fingerprint
    from agentos.core.retry_hints import MAX_RESET_AHEAD_S

    clock = FakeClock()
    clock.now = 1000.0
    a = book(ledgers, clock, "A")
    ledgers(clock, "B").mark(KeyRef(fingerprint("secret-k-0123456789"), "openai", "k"), cooldown_until=1e300)
    result = a.try_acquire("openai")
    assert result == 1000.0 + MAX_RESET_AHEAD_S


def test_a_hostile_slot_in_the_store_holds_no_longer_than_the_longest_window(ledgers: Ledgers) -> None:
    """Another run's call settled to free at 1e300 (a hostile writer, a corrupt row) would
    hold the key's last slot forever: no slot is held past the longest window a key can have."""
    from agentos.backend.key_ledger import KeyRef, fingerprint
    from agentos.keys.budget_book import SLOT_AHEAD_S

    clock = FakeClock()
    clock.now = 1000.0
    a = book(ledgers, clock, "A")
    other = ledgers(clock, "B")
    key = KeyRef(fingerprint("secret-k-0123456789"), "openai", "k")
    other.hold(key, 1, 999.0)
    other.settle(key.fp, 1, 1e300, "ok")
    other.learn(key, KeyModel(1, 10.0, "headers"))
    result = a.try_acquire("openai")
    assert result == 1000.0 + SLOT_AHEAD_S
