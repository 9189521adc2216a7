"""The retry policy and the dead-pool rule, without a network (issue 19 findings 1-2)."""

from agentos.keys.pool import CredentialCoordinator
from agentos.keys.sources import Credential
from agentos.llm.errors import AuthError, ProviderError, RateLimited
from agentos.llm.retry import RetryPolicy


def test_only_transient_failures_are_retried() -> None:
    policy = RetryPolicy(rng=lambda: 1.0)
    assert policy.delay(ProviderError("HTTP 404", status=404), 1, 0.0) is None
    assert policy.delay(RateLimited(1.0), 1, 0.0) is None  # the key pool handles a 429
    assert policy.delay(ValueError("x"), 1, 0.0) is None
    assert policy.delay(ProviderError("HTTP 502", transient=True), 1, 0.0) == 1.0


def test_backoff_doubles_is_jittered_and_bounded() -> None:
    error = ProviderError("reset", transient=True)
    top = RetryPolicy(rng=lambda: 1.0)
    assert [top.delay(error, n, 0.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert top.delay(error, 4, 0.0) is None  # 3 retries at most
    assert RetryPolicy(rng=lambda: 0.25).delay(error, 3, 0.0) == 1.0  # full jitter
    assert RetryPolicy(retries=10, rng=lambda: 1.0).delay(error, 10, 0.0) == 15.0  # capped
    assert top.delay(error, 2, 44.0) is None  # the total wait is bounded


def test_a_servers_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy(rng=lambda: 1.0)
    assert policy.delay(ProviderError("503", transient=True, retry_after=3.0), 1, 0.0) == 3.0
    assert policy.delay(ProviderError("503", transient=True, retry_after=1e9), 1, 0.0) == 15.0
    assert policy.delay(ProviderError("503", transient=True, retry_after=float("inf")), 1, 0.0) == 1.0


def test_the_pool_is_dead_only_when_every_key_is_rejected() -> None:
    keys = [
        Credential("a", "secret-aaaaaa", "openai", origin="$OPENAI_API_KEY"),
        Credential("b", "secret-bbbbbb"),
    ]
    pool = CredentialCoordinator(keys)
    assert pool.dead_keys() == []
    pool.mark("a", AuthError("openai: HTTP 401 from host: bad key"))
    assert pool.dead_keys() == []  # b may still serve
    pool.mark("b", AuthError("openai: HTTP 401 from host: bad key"))
    lines = [dead.line() for dead in pool.dead_keys()]
    assert lines == [
        "a (from $OPENAI_API_KEY) was rejected: openai: HTTP 401 from host: bad key",
        "b (built in) was rejected: openai: HTTP 401 from host: bad key",
    ]


def test_a_cooling_key_keeps_the_pool_alive() -> None:
    now = [1000.0]
    pool = CredentialCoordinator(["secret-aaaaaa", "secret-bbbbbb"], clock=lambda: now[0])
    pool.mark("key-1", AuthError("rejected"))
    pool.mark("key-2", RateLimited(30.0))
    assert pool.dead_keys() == []
