"""The credential pool with an injected clock: no test sleeps through a real backoff."""

import random
import threading
from pathlib import Path

import pytest

from agentos.backend.local.key_ledger import SqliteKeyLedger
from agentos.keys.sources import Credential
from agentos.keys.state import CredentialState
from agentos.llm.errors import AuthError, QuotaExhausted, RateLimited
from agentos.workflows.parallel import CredentialCoordinator


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def creds(*names: str, provider: str = "gemini") -> list[Credential]:
    return [Credential(n, f"secret-{n}-xyz", provider) for n in names]


def test_acquire_and_release_plain_strings() -> None:
    pool = CredentialCoordinator(["k1-secret", "k2-secret"])
    a = pool.acquire(timeout=0)
    b = pool.acquire(timeout=0)
    assert {a, b} == {"k1-secret", "k2-secret"}
    assert pool.acquire(timeout=0) is None
    pool.release(a)  # type: ignore[arg-type]
    assert pool.acquire(timeout=0) == a


def test_reservation_is_fair_round_robin() -> None:
    clock = Clock()
    pool = CredentialCoordinator(creds("a", "b", "c"), clock=clock)
    seen = []
    for _ in range(6):
        key = pool.acquire(timeout=0)
        assert key is not None
        seen.append(key.name)
        clock.now += 1
        pool.release(key)
    assert seen == ["a", "b", "c", "a", "b", "c"]


def test_rate_limited_key_cools_down_for_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    pool = CredentialCoordinator(creds("a"), clock=clock)
    key = pool.acquire(timeout=0)
    assert key is not None
    pool.release(key, rate_limited=True, backoff_seconds=30)
    out = capsys.readouterr().out
    assert "rate-limited" in out and "30" in out and "secret" not in out
    assert pool.acquire(timeout=0) is None
    assert pool.usable_count() == 0
    assert pool.earliest_available() == clock.now + 30
    clock.now += 29.9
    assert pool.acquire(timeout=0) is None
    clock.now += 0.2
    assert pool.acquire(timeout=0) is key


def test_backoff_without_hint_is_exponential_with_jitter_and_capped() -> None:
    clock = Clock()
    pool = CredentialCoordinator(creds("a"), clock=clock, rng=random.Random(7))
    waits = []
    for _ in range(12):
        key = pool.acquire(timeout=0)
        assert key is not None
        start = clock.now
        pool.release(key, rate_limited=True)
        until = pool.earliest_available()
        assert until is not None
        waits.append(until - start)
        clock.now = until
    assert 1.0 <= waits[0] <= 2.0
    assert 2.0 <= waits[1] <= 4.0
    assert waits[5] > waits[1]
    assert max(waits) <= 300.0


def test_quota_exhausted_until_reset() -> None:
    clock = Clock()
    pool = CredentialCoordinator(creds("a", "b"), clock=clock)
    key = pool.acquire(timeout=0)
    assert key is not None
    pool.report(key, QuotaExhausted(clock.now + 3600, key_name=key.name))
    assert pool.usable_count() == 1
    other = pool.acquire(timeout=0)
    assert other is not None and other.name != key.name
    assert pool.acquire(timeout=0) is None
    clock.now += 3601
    assert pool.acquire(timeout=0) is key


def test_auth_error_disables_key(capsys: pytest.CaptureFixture[str]) -> None:
    pool = CredentialCoordinator(creds("bad", "good"))
    first = pool.acquire(timeout=0)
    assert first is not None and first.name == "bad"
    pool.report(first, AuthError("401", key_name="bad"))
    assert "Credential bad was rejected" in capsys.readouterr().out
    assert pool.usable_count() == 1
    assert pool.earliest_available() is None  # a rejected key never comes back by itself


def test_per_key_concurrency() -> None:
    pool = CredentialCoordinator(creds("a"), per_key_concurrency=2)
    assert pool.acquire(timeout=0) is not None
    assert pool.acquire(timeout=0) is not None
    assert pool.acquire(timeout=0) is None


def test_report_rate_limited_uses_retry_after() -> None:
    clock = Clock()
    pool = CredentialCoordinator(creds("a"), clock=clock)
    key = pool.acquire(timeout=0)
    assert key is not None
    pool.report(key, RateLimited(12, key_name="a"))
    assert pool.earliest_available() == clock.now + 12


def test_cooldowns_survive_the_run(tmp_path: Path) -> None:
    clock = Clock()
    state = SqliteKeyLedger(tmp_path / "keys.db", clock=clock)
    first = CredentialCoordinator(creds("a", "b"), clock=clock, ledger=state)
    key = first.acquire(timeout=0)
    assert key is not None
    first.release(key, rate_limited=True, backoff_seconds=60)
    clock.now += 10
    second = CredentialCoordinator(creds("a", "b"), clock=clock, ledger=state)  # a new run
    assert second.usable_count() == 1
    got = second.acquire(timeout=0)
    assert got is not None and got.name != key.name
    state.close()
    assert b"secret" not in (tmp_path / "keys.db").read_bytes()


def test_state_file_is_safe_with_concurrent_writers(tmp_path: Path) -> None:
    state = CredentialState(tmp_path / "state.json")

    def writer(n: int) -> None:
        for i in range(20):
            state.update({f"p/key-{n}-{i}": {"cooldown_until": 2e9, "quota_until": 0.0}}, now=0.0)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(state.load()) == 80


def test_keys_added_to_the_file_during_a_run_are_picked_up() -> None:
    clock = Clock()
    available = creds("a")
    pool = CredentialCoordinator(list(available), clock=clock, source=lambda: available)
    key = pool.acquire(timeout=0)
    assert key is not None
    pool.release(key, rate_limited=True, backoff_seconds=600)
    assert pool.usable_count() == 0
    available.append(Credential("b", "secret-b-xyz", "gemini"))
    pool._last_refresh = 0.0  # the next look at the file is due
    assert pool.usable_count() == 1
    got = pool.acquire(timeout=0)
    assert got is not None and got.name == "b"


def test_waiting_acquire_wakes_on_release() -> None:
    pool = CredentialCoordinator(["only-key-1"])
    held = pool.acquire(timeout=0)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(timeout=5)))
    waiter.start()
    pool.release(held)  # type: ignore[arg-type]
    waiter.join(5)
    assert got == ["only-key-1"]


def test_close_wakes_waiters_with_none() -> None:
    pool = CredentialCoordinator(["only-key-1"])
    pool.acquire(timeout=0)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(timeout=None)))
    waiter.start()
    pool.close()
    waiter.join(5)
    assert got == [None]


def test_a_key_met_by_another_callers_call_is_marked_without_releasing_it() -> None:
    from agentos.keys.pools import PoolSet

    clock = Clock()
    pool = CredentialCoordinator(creds("a", "b", provider="openai"), clock=clock, per_key_concurrency=2)
    pools = PoolSet({"openai": pool})
    lease = pools.acquire(timeout=0)
    assert lease is not None and lease["openai"].name == "a"
    error = RateLimited(5.0, key_name="b")  # a paced call of this item went out on key b
    error.provider = "openai"
    pools.report(lease, error)
    assert not pool.is_usable("b") and pool.is_usable("a")
    assert pool.rate_limited_counts() == {"a": 0, "b": 1}
    assert pools.rate_limited_counts() == {"openai": {"a": 0, "b": 1}}
    assert pool.acquire(timeout=0).name == "a"  # type: ignore[union-attr]  # a was released, b cools
    clock.now += 5.1
    assert pool.is_usable("b")
    pool.mark("nobody", error)  # unknown names are ignored
    pool.mark("b", AuthError("rejected", key_name="b"))
    assert not pool.is_usable("b")
    assert [c.name for c in pool.credentials()] == ["a", "b"]
