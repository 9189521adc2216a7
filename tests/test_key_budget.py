"""KeyBudget and the window estimator, on an injected clock: nothing sleeps."""

import math

import pytest

from agentos.keys.key_budget import (
    DECLARED_WINDOW_S,
    MARGIN_S,
    PROBE_GAP_S,
    PROBE_SETTLE_S,
    KeyBudget,
    LimitSource,
    learn_window,
)
from agentos.llm.rate_limits import Budget, Outcome, RateLimitInfo


def headers(limit: int, remaining: int, reset: float, tokens: Budget | None = None) -> RateLimitInfo:
    return RateLimitInfo(Budget(limit, remaining, reset), tokens or Budget())


def test_unknown_key_spaces_its_calls_until_an_answer_says_more() -> None:
    b = KeyBudget("k", max_in_flight=4)
    assert b.ready_at(0.0) == 0.0
    b.grant(1, 0.0)
    # A first 429 comes back before the next call leaves: the next waits for this answer,
    # or until a refusal would surely have come back (it was admitted, and is generating).
    assert b.ready_at(0.0) == PROBE_SETTLE_S
    b.grant(2, PROBE_SETTLE_S)
    b.complete(1, 2.1, Outcome.OK, headers(4, 2, 10.0), sent_at=0.01)
    assert b.source is LimitSource.HEADERS and b.limit == 4
    assert b.ready_at(2.1) == 2.1  # known now: no gap


def test_unknown_key_answered_without_headers_probes_again_after_the_gap() -> None:
    b = KeyBudget("k", max_in_flight=4)
    b.grant(1, 0.0)
    b.complete(1, 0.1, Outcome.OK, None, sent_at=0.01)
    assert b.source is LimitSource.UNKNOWN
    assert b.ready_at(0.1) == PROBE_GAP_S  # answered: only the gap is left
    b.shared = [(0.2, math.inf)]  # another run's probe, granted at 0.2, not answered yet
    assert b.ready_at(0.3) == 0.2 + PROBE_SETTLE_S


def test_headers_hold_each_slot_until_sent_plus_reset() -> None:
    b = KeyBudget("k", max_in_flight=8)
    for i in range(4):
        b.grant(i, 0.0)
    for i in range(4):
        b.complete(i, 0.5, Outcome.OK, headers(4, 3 - i, 10.0), sent_at=0.01 * i)
    assert b.headroom(1.0) == 0
    # the first slot frees when the first call's budget was whole again, plus the margin
    assert b.ready_at(1.0) == pytest.approx(0.0 + 10.0 + MARGIN_S)
    assert b.headroom(10.0 + MARGIN_S + 0.001) == 1
    assert b.headroom(10.0 + MARGIN_S + 0.031) == 4


def test_calls_in_flight_hold_a_slot_until_answered() -> None:
    b = KeyBudget("k", max_in_flight=8)
    b.grant(0, 0.0)
    b.complete(0, 0.5, Outcome.OK, headers(2, 1, 10.0), sent_at=0.0)
    b.grant(1, 0.6)  # in flight: no expiry known
    assert b.headroom(100.0) == 1  # the answered one freed; the one in flight still holds
    assert b.ready_at(100.0) == 100.0
    b.grant(2, 100.0)
    assert b.ready_at(100.0) == math.inf  # only an answer can free a slot now


def test_another_client_on_the_key_is_held_as_phantom_usage() -> None:
    b = KeyBudget("k", max_in_flight=8)
    b.grant(1, 0.0)
    # we sent one call, but the provider counts three: two are someone else's
    b.complete(1, 0.5, Outcome.OK, headers(4, 1, 8.0), sent_at=0.0)
    assert b.headroom(1.0) == 1
    assert b.held == [pytest.approx(0.5 + 8.0 + MARGIN_S)] * 2


def test_our_own_calls_answered_out_of_order_are_not_mistaken_for_another_client() -> None:
    b = KeyBudget("k", max_in_flight=8)
    b.grant(1, 0.0)
    b.grant(2, 0.01)
    # call 2 reached the provider first; call 1, sent before 2 was granted, saw it counted
    b.complete(1, 0.5, Outcome.OK, headers(4, 2, 10.0), sent_at=0.005)
    assert b.held == []


def test_a_429_blocks_the_key_for_its_hint_and_halves_concurrency() -> None:
    b = KeyBudget("k", max_in_flight=4, rpm=100)
    b.grant(1, 0.0)
    b.complete(1, 0.1, Outcome.RATE_LIMITED, None, sent_at=0.01, retry_after=7.0)
    assert b.ready_at(0.2) == pytest.approx(7.1)
    assert b.concurrency == 2.0 and b.refused == 1
    b.grant(2, 8.0)
    b.complete(2, 8.5, Outcome.OK, None, sent_at=8.0)
    assert b.concurrency == 2.5  # additive increase: +1/c per success


def test_a_surprise_429_makes_header_budgets_count_from_the_answer() -> None:
    b = KeyBudget("k", max_in_flight=8)
    b.grant(1, 0.0)
    b.complete(1, 5.0, Outcome.OK, headers(4, 3, 10.0), sent_at=0.0)
    assert b.calls[1].expires_at == pytest.approx(10.0 + MARGIN_S)  # from the send
    b.grant(2, 5.0)  # granted under a known limit
    b.complete(2, 5.1, Outcome.RATE_LIMITED, headers(4, 0, 4.9), sent_at=5.0, retry_after=1.0)
    assert b.after_response
    b.grant(3, 7.0)
    b.complete(3, 12.0, Outcome.OK, headers(4, 3, 10.0), sent_at=7.0)
    assert b.calls[3].expires_at == pytest.approx(22.0 + MARGIN_S)  # from the answer now


def test_declared_rpm_holds_each_slot_a_minute_from_its_send() -> None:
    b = KeyBudget("k", max_in_flight=8, rpm=2)
    assert b.source is LimitSource.DECLARED
    b.grant(1, 0.0)
    b.grant(2, 1.0)
    b.complete(1, 3.0, Outcome.OK, None, sent_at=0.1)
    b.complete(2, 4.0, Outcome.OK, None)  # send time unknown: from the grant, wider margin
    assert b.ready_at(5.0) == pytest.approx(0.1 + DECLARED_WINDOW_S + MARGIN_S)
    assert b.calls[2].expires_at == pytest.approx(1.0 + DECLARED_WINDOW_S + 0.02 * DECLARED_WINDOW_S)


def test_token_budget_holds_calls_that_would_not_fit() -> None:
    b = KeyBudget("k", max_in_flight=8)
    b.grant(1, 0.0, tokens=600)
    b.complete(1, 1.0, Outcome.OK, headers(100, 99, 1.0, Budget(1000, 400, 30.0)), sent_at=0.0)
    assert b.ready_at(1.0, tokens=300) == 1.0
    b.grant(2, 1.0, tokens=300)  # in flight: 100 left of what the provider announced
    assert b.ready_at(1.0, tokens=300) == pytest.approx(30.0 + MARGIN_S)  # when the budget is whole
    assert b.ready_at(1.0, tokens=5000) == math.inf  # bigger than the whole budget: alone, later


def test_abandoned_call_is_held_as_if_sent() -> None:
    b = KeyBudget("k", max_in_flight=8, rpm=1)
    b.grant(1, 0.0)
    b.abandon(1, 2.0)
    assert b.ready_at(2.0) > 60.0


def test_learns_limit_and_window_from_a_first_429() -> None:
    b = KeyBudget("k", max_in_flight=8)
    for i, t in enumerate([0.0, 0.25, 0.5, 0.75]):
        b.grant(i, t)
        b.complete(i, t + 0.5, Outcome.OK, None, sent_at=t + 0.01)
    b.grant(9, 1.3)
    # the provider counts 4 in 10 s: the oldest (sent 0.01) leaves at 10.01
    b.complete(9, 1.32, Outcome.RATE_LIMITED, None, sent_at=1.31, retry_after=8.69)
    assert (b.source, b.limit) == (LimitSource.LEARNED, 4)
    assert b.window == pytest.approx(10.0)
    # every earlier send is held for the learned window: no second 429 when the key cools
    assert b.ready_at(8.7) == pytest.approx(0.01 + 10.0 + MARGIN_S)


def test_learned_limit_grows_again_after_many_calls_without_a_429() -> None:
    b = KeyBudget("k", max_in_flight=8)
    b.source, b.limit, b.window = LimitSource.LEARNED, 2, 1.0
    t = 0.0
    for i in range(10):
        t += 2.0
        b.grant(i, t)
        b.complete(i, t + 0.1, Outcome.OK, None, sent_at=t)
    assert b.limit == 3


@pytest.mark.parametrize(
    ("times", "refused_at", "frees_at", "expected"),
    [
        # a burst of 4, then a refusal: 4 per 10 s
        ([0.0, 0.0, 0.0, 0.0], 1.0, 10.0, (4, 10.0)),
        # evenly spread sends; the first is the oldest in the window
        ([0.0, 1.0, 2.0, 3.0], 3.7, 10.0, (4, 10.0)),
        # second window: sends at 10.1.. are recent, 0..3 left the window long ago
        ([0.0, 1.0, 2.0, 3.0, 10.1, 11.1, 12.1, 13.1], 13.5, 20.1, (4, 10.0)),
        # a small retry hint right after a slot freed: the old sends rule out a 1-in-0.1 s
        # reading, and the only consistent one is 4 per 10 s
        ([0.02, 0.12, 0.2, 0.52, 10.02], 10.04, 10.12, (4, 10.0)),
        # light earlier use far back: not part of this window
        ([0.0, 30.0, 31.0, 32.0, 33.0], 33.5, 40.0, (4, 10.0)),
    ],
)
def test_learn_window(
    times: list[float], refused_at: float, frees_at: float, expected: tuple[int, float]
) -> None:
    limit, window = learn_window(times, refused_at, frees_at) or (0, 0.0)
    assert limit == expected[0]
    assert window == pytest.approx(expected[1])


def test_learn_window_without_history() -> None:
    assert learn_window([], 1.0, 5.0) is None


def test_a_provider_whose_remaining_lies_frees_nothing_once_it_surprised_us() -> None:
    """Hostile or broken headers: `remaining` always says the budget is whole. Before the first
    surprise 429 the ledger believes it; after, its numbers no longer free any slot."""
    b = KeyBudget("k", max_in_flight=8)
    for i in range(2):
        b.grant(i, 0.0)
        b.complete(i, 0.3, Outcome.OK, headers(2, 1, 10.0), sent_at=0.01)  # "one left", always
    b.grant(2, 0.5)
    b.complete(2, 0.6, Outcome.RATE_LIMITED, headers(2, 0, 9.5), sent_at=0.5, retry_after=9.5)
    assert b.strict
    b.grant(3, 10.2)
    b.complete(3, 10.5, Outcome.OK, headers(2, 1, 10.0), sent_at=10.3)
    b.grant(4, 10.6)
    b.complete(4, 10.9, Outcome.OK, headers(2, 1, 10.0), sent_at=10.7)  # says one is left: a lie
    assert b.headroom(11.0) <= 0  # both slots held a whole window: no third call now


def test_a_limit_adopted_from_another_run_still_counts_our_own_recent_calls() -> None:
    """Without headers, our answered calls let their slots go at once while the limit is
    unknown. When another run's lesson arrives (the ledger), the provider still counts them:
    the real benchmark (three runs, no headers) saw a run refused 4 times on one key after
    adopting a lesson that left its own three calls out."""
    b = KeyBudget("k", max_in_flight=4)
    for n, at in enumerate([100.0, 100.3, 100.6]):
        b.grant(n, at)
        b.complete(n, at + 0.2, Outcome.OK, None, sent_at=at)
    assert b.headroom(101.0) == math.inf  # nothing known yet
    b.adopt(4, 10.0, "learned", False, 101.0)
    assert b.headroom(101.0) == 1
    assert b.ready_at(101.0) == 101.0
    b.grant(9, 101.0)
    assert b.ready_at(101.0) > 110.0  # the oldest of our calls leaves the window at 110 s
