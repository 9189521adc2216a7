"""Rate-limit headers are untrusted input: parsed in linear time, every number bounded."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentos.core.retry_hints import MAX_RETRY_AFTER_S
from agentos.llm.rate_limits import (
    MAX_COUNT,
    NO_INFO,
    Budget,
    CallObserver,
    RateLimitInfo,
    parse_count,
    parse_go_duration,
    parse_rate_limits,
    parse_reset_time,
    rate_limit_headers,
)

OPENAI = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-tokens": "6m0.5s",
    "content-type": "application/json",
}


def test_openai_headers() -> None:
    info = parse_rate_limits(OPENAI)
    assert info.requests == Budget(60, 59, 1.0)
    assert info.tokens == Budget(150000, 149984, 360.5)


def test_anthropic_headers_reset_is_an_rfc3339_time() -> None:
    now = 1_700_000_000.0
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 42))
    headers = {
        "Anthropic-RateLimit-Requests-Limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-tokens-remaining": "79000",
        "anthropic-ratelimit-tokens-reset": reset,
    }
    info = parse_rate_limits(headers, now=now)
    assert info.requests == Budget(50, 49, 42.0)
    assert info.tokens == Budget(80000, 79000, 42.0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("8.64s", 8.64), ("7", 7.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", "-1s", "1x", "inf", "nan", "1e400", "1..2s", "1s" * 40, "１s", None, 5]
)
def test_bad_go_durations_are_dropped(text: object) -> None:
    assert parse_go_duration(text) is None


@pytest.mark.parametrize(
    ("value", "count"),
    [("12", 12), (12, 12), ("0", 0), ("99999999999", MAX_COUNT), (3.0, 3), (" 7 ", 7)],
)
def test_counts(value: object, count: int) -> None:
    assert parse_count(value) == count


@pytest.mark.parametrize("value", ["-1", -1, "1.5", "²", "1e3", "nan", float("inf"), True, None, "9" * 100])
def test_bad_counts_are_dropped(value: object) -> None:
    assert parse_count(value) is None


def test_hostile_values_are_clamped_or_dropped() -> None:
    headers = {
        "x-ratelimit-limit-requests": "0",  # a limit of 0 is not a limit: dropped
        "x-ratelimit-remaining-requests": "5",
        "x-ratelimit-reset-requests": "99999999h",
        "x-ratelimit-limit-tokens": "10",
        "x-ratelimit-remaining-tokens": "50",  # more than the limit: clamped to it
        "x-ratelimit-reset-tokens": "1e18",
    }
    info = parse_rate_limits(headers)
    assert info.requests.limit is None and not info.requests.known
    assert info.requests.reset_s == MAX_RETRY_AFTER_S
    assert info.tokens == Budget(10, 10, MAX_RETRY_AFTER_S)


def test_anthropic_bad_reset_times() -> None:
    assert parse_reset_time("2024-06-15T12:00:00", 0.0) is None  # no time zone
    assert parse_reset_time("tomorrow", 0.0) is None
    assert parse_reset_time("2024-06-15T12:00:00Z" + " " * 100, 0.0) is None
    assert parse_reset_time("2000-01-01T00:00:00Z", time.time()) == 0.0  # in the past: now


def test_only_rate_limit_headers_are_kept_and_bounded() -> None:
    headers = {**OPENAI, "x-ratelimit-limit-requests": "1" * 5000, "set-cookie": "secret"}
    kept = rate_limit_headers(headers)
    assert "set-cookie" not in kept and "content-type" not in kept
    assert all(len(v) <= 65 for v in kept.values())
    assert parse_rate_limits(headers).requests.limit is None  # the long value is not a number
    many = {f"x-ratelimit-x{i}": "1" for i in range(1000)}
    assert len(rate_limit_headers(many)) == 32


def test_from_dict_revalidates_what_another_process_sent() -> None:
    info = parse_rate_limits(OPENAI)
    assert RateLimitInfo.from_dict(info.to_dict()) == info
    hostile = {"requests": {"limit": float("nan"), "remaining": -3, "reset_s": float("inf")}, "tokens": "x"}
    assert RateLimitInfo.from_dict(hostile) == NO_INFO
    assert RateLimitInfo.from_dict(None) == NO_INFO
    assert RateLimitInfo.from_dict({"requests": {"limit": True, "remaining": 1}}).requests.limit is None


@given(st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=20))
def test_any_headers_parse_without_error(headers: dict[str, str]) -> None:
    info = parse_rate_limits(headers)
    for budget in (info.requests, info.tokens):
        assert budget.limit is None or 1 <= budget.limit <= MAX_COUNT
        assert budget.reset_s is None or 0 <= budget.reset_s <= MAX_RETRY_AFTER_S


def test_long_hostile_text_parses_in_linear_time() -> None:
    started = time.thread_time()  # CPU time: a loaded machine cannot stretch it
    for text in ("1" * 10**6 + "s", "1s" * 10**6, "." * 10**6):
        assert parse_go_duration(text) is None
    assert time.thread_time() - started < 1.0


def test_observer_keeps_send_time_and_headers() -> None:
    ticks = iter([5.0])
    observer = CallObserver(clock=lambda: next(ticks))
    observer.on_request(object())

    class Response:
        headers = OPENAI

    observer.on_response(Response())
    assert observer.sent_at == 5.0
    assert observer.info().requests == Budget(60, 59, 1.0)
    observer.reset()
    assert observer.sent_at is None and observer.info() == NO_INFO
