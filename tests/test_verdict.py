"""The reviewer-answer parser: strict, honest (unparseable is REVISE), linear time, fuzzed."""

import time
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentos.workflows.verdict import APPROVED_WITH_BLOCKING, Verdict, parse_verdict


def test_approved() -> None:
    result = parse_verdict("VERDICT: APPROVED\nBLOCKING:\nNON-BLOCKING:\n- nicer names\n")
    assert result.verdict is Verdict.APPROVED and result.approved
    assert result.blocking == [] and result.non_blocking == ["nicer names"]
    assert result.parse_error is None


def test_revise_collects_blocking_points() -> None:
    text = "VERDICT: REVISE\nBLOCKING:\n- missing error handling\n* no tests\nNON-BLOCKING:\n- typo\n"
    result = parse_verdict(text)
    assert result.verdict is Verdict.REVISE
    assert result.blocking == ["missing error handling", "no tests"]
    assert result.non_blocking == ["typo"]


def test_markdown_bold_is_tolerated() -> None:
    assert parse_verdict("**VERDICT:** APPROVED\n**BLOCKING:** none\n").approved


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Looks good, ship it!", "no 'VERDICT:' line"),
        ("", "no 'VERDICT:' line"),
        ("VERDICT: MAYBE\n", "unknown verdict"),
        ("VERDICT: APPROVED\nVERDICT: REVISE\n", "conflicting verdicts"),
        ("I would say APPROVED overall", "no 'VERDICT:' line"),
    ],
)
def test_malformed_verdicts_count_as_revise(text: str, reason: str) -> None:
    result = parse_verdict(text)
    assert result.verdict is Verdict.REVISE
    assert result.parse_error is not None and reason in result.parse_error
    assert result.blocking, "the drafter must be told why"


def test_approval_with_blocking_points_is_not_approval() -> None:
    result = parse_verdict("VERDICT: APPROVED\nBLOCKING:\n- data loss on retry\n")
    assert result.verdict is Verdict.REVISE
    assert result.blocking == ["data loss on retry"]
    # It parsed fine: not "unparseable", but overruled, and it says so.
    assert result.parse_error is None
    assert result.note == APPROVED_WITH_BLOCKING and "treated as REVISE" in result.note


def test_bold_list_items_keep_their_bold_text() -> None:
    text = (
        "**VERDICT:** REVISE\n**BLOCKING:**\n- **Error Handling**: name each failure mode\n"
        "* **Tests**: cover retries\n**Logging**: say which key\n---\n"
        "**NON-BLOCKING**: **Style**: shorter headings\n"
    )
    result = parse_verdict(text)
    assert result.blocking == [
        "**Error Handling**: name each failure mode",
        "**Tests**: cover retries",
        "**Logging**: say which key",
    ]
    assert result.non_blocking == ["**Style**: shorter headings"]


@pytest.mark.parametrize(
    "line",
    ["VERDICT: **APPROVED**", "**VERDICT: APPROVED**", "VERDICT : APPROVED", " **VERDICT**: APPROVED "],
)
def test_verdict_line_variants(line: str) -> None:
    assert parse_verdict(f"{line}\nBLOCKING: none\n").approved


def test_pathological_verdict_line_parses_at_once() -> None:
    """Issue 13: this line took 28 s at 2,000 spaces and hung a worker at 4,000. The bound is
    on this thread's CPU time, which the other tests of a parallel run cannot stretch."""
    for spaces in (2_000, 4_000, 200_000):
        text = "VERDICT: A" + " " * spaces + "x!"
        started = time.thread_time()
        result = parse_verdict(text)
        assert time.thread_time() - started < 0.5
        assert result.verdict is Verdict.REVISE and result.parse_error == "no 'VERDICT:' line"
    started = time.thread_time()
    parse_verdict("**BLOCKING" + " " * 200_000 + "*" * 200_000 + "\n- " + "*" * 200_000)
    assert time.thread_time() - started < 0.5


_ALPHABET = st.sampled_from(
    [
        "VERDICT",
        "APPROVED",
        "REVISE",
        "BLOCKING",
        "NON-BLOCKING",
        ":",
        "*",
        "**",
        " ",
        "  ",
        "\t",
        "\n",
        "-",
        "x",
        "!",
        "none",
        "A",
        "_",
    ]
)


@settings(max_examples=300, deadline=timedelta(milliseconds=500))
@given(st.lists(_ALPHABET, max_size=400).map("".join))
def test_fuzz_parser_is_total_and_honest(text: str) -> None:
    """Any text parses quickly to a result; APPROVED only with a VERDICT line and no blocker."""
    result = parse_verdict(text)
    assert result.verdict in (Verdict.APPROVED, Verdict.REVISE)
    if result.approved:
        assert "APPROVED" in text and not result.blocking and result.parse_error is None
    if result.parse_error:
        assert result.verdict is Verdict.REVISE and result.blocking


@settings(max_examples=50, deadline=timedelta(milliseconds=500))
@given(st.integers(min_value=0, max_value=50_000), st.sampled_from([" ", "*", "\t", " *"]))
def test_fuzz_long_runs_stay_linear(count: int, filler: str) -> None:
    for shape in ("VERDICT: A{}x!", "**VERDICT{}: REVISE", "BLOCKING{}:", "- {}**"):
        parse_verdict(shape.format(filler * count))
