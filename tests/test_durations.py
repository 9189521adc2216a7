"""Durations for --item-timeout: the forms people write, and clear errors for the rest."""

import pytest

from agentos.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("20m", 1200),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2.5", 2.5),
        ("0", 0),
        (" 1H ", 3600),
        (45, 45),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "-1", "inf", "nan", "1d", "m", "1e9", "9" * 40, True])
def test_parse_rejects_with_the_accepted_forms(text: object) -> None:
    with pytest.raises(ValueError, match=r"use e\.g\. 90s, 20m, 1h"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds", "text"), [(1200, "20m"), (5400, "1h30m"), (1.5, "1.5s"), (0, "0s")])
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
