"""One translation: whatever a worker_func returns or raises becomes one ItemOutcome."""

from __future__ import annotations

import pytest

from agentos.core.errors import Interrupted
from agentos.core.outcome import CredentialProblem, ItemOutcome, ItemStatus
from agentos.engine.outcomes import call_worker
from agentos.keys.problems import error_from_outcome, outcome_from_error
from agentos.llm.errors import AuthError, QuotaExhausted, RateLimited


def _raising(exc: Exception) -> object:
    def worker(item: str, lease: object) -> object:
        raise exc

    return worker


def test_a_returned_outcome_passes_through_unchanged() -> None:
    mine = ItemOutcome(ItemStatus.NEEDS_REVISION, rounds=3)
    outcome, value = call_worker(lambda item, lease: mine, "LLD-1", None)
    assert outcome is mine and value is mine


def test_any_other_returned_value_is_success_and_kept() -> None:
    outcome, value = call_worker(lambda item, lease: f"done {item} with {lease}", "x", "key-1")
    assert outcome.status is ItemStatus.APPROVED and value == "done x with key-1"


@pytest.mark.parametrize(
    ("exc", "problem"),
    [
        (RateLimited(7.5, key_name="team-a"), "rate_limited"),
        (QuotaExhausted(1_900_000_000.0, key_name="team-a"), "quota"),
        (AuthError("401 bad key", key_name="team-a"), "auth"),
    ],
)
def test_credential_errors_round_trip_to_what_the_pool_reports(exc: Exception, problem: str) -> None:
    exc.provider = "openai"  # type: ignore[attr-defined]
    outcome, value = call_worker(_raising(exc), "LLD-2", None)  # type: ignore[arg-type]
    assert value is None
    assert outcome.status is ItemStatus.CREDENTIAL and outcome.credential_problem is CredentialProblem(
        problem
    )
    assert (outcome.key_name, outcome.provider, outcome.error) == ("team-a", "openai", str(exc))
    again = error_from_outcome(outcome)
    assert type(again) is type(exc) and str(again) == str(exc)
    assert again.key_name == "team-a" and again.provider == "openai"
    if isinstance(exc, RateLimited):
        assert isinstance(again, RateLimited) and again.retry_after == 7.5
    if isinstance(exc, QuotaExhausted):
        assert isinstance(again, QuotaExhausted) and again.reset_at == exc.reset_at


def test_interruptions_and_failures_keep_their_message() -> None:
    interrupted, _ = call_worker(_raising(Interrupted("stop requested")), "a", None)  # type: ignore[arg-type]
    failed, _ = call_worker(_raising(ValueError()), "a", None)  # type: ignore[arg-type]
    assert (interrupted.status, interrupted.error) == (ItemStatus.INTERRUPTED, "stop requested")
    assert (failed.status, failed.error) == (ItemStatus.FAILED, "ValueError")


def test_the_workflows_and_the_engine_share_one_translation() -> None:
    """item_execution and call_worker both end in keys.problems: same exception, same outcome."""
    exc = RateLimited(3.0, key_name="team-b")
    via_engine, _ = call_worker(_raising(exc), "LLD-3", None)  # type: ignore[arg-type]
    direct = outcome_from_error(exc)
    assert via_engine == direct
    assert outcome_from_error(exc, provider="gemini").provider == "gemini"  # the caller's, when unnamed


def test_an_outcome_with_wrong_types_is_not_valid() -> None:
    assert ItemOutcome(ItemStatus.APPROVED).valid
    assert not ItemOutcome("approved").valid  # type: ignore[arg-type]  # a str, not the enum
    assert not ItemOutcome(ItemStatus.CREDENTIAL, credential_problem="auth").valid  # type: ignore[arg-type]
