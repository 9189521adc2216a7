import pytest

from agentos.workflows.verdict import Verdict, parse_verdict


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
    assert "treated as REVISE" in (result.parse_error or "")
