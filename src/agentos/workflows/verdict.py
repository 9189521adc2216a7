"""Strict parsing of the reviewer's answer. Anything unparseable counts as REVISE, with why.

The answer is untrusted text, so the parser uses no regular expression: every line is
read with plain string operations, in time linear in its length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agentos.core.redaction import clip


class Verdict(StrEnum):
    APPROVED = "APPROVED"
    REVISE = "REVISE"


@dataclass(frozen=True)
class ReviewResult:
    verdict: Verdict
    blocking: list[str] = field(default_factory=list)
    non_blocking: list[str] = field(default_factory=list)
    parse_error: str | None = None  # the answer was not in the format: why
    note: str | None = None  # the answer parsed, but its verdict was overruled: why

    @property
    def approved(self) -> bool:
        return self.verdict is Verdict.APPROVED


APPROVED_WITH_BLOCKING = "the reviewer answered APPROVED but listed blocking points; treated as REVISE"
_NONE = {"", "none", "n/a", "-", "(none)", "none."}
_SPACE = " \t"
_BOLD = " \t*"
_VERDICT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_ ")
_SECTIONS = ("NON-BLOCKING", "BLOCKING")


def _unparseable(reason: str) -> ReviewResult:
    return ReviewResult(
        Verdict.REVISE, [f"The review could not be parsed ({reason}); review again."], [], reason
    )


def _labelled(line: str, labels: tuple[str, ...]) -> tuple[str, str] | None:
    """`**LABEL:** rest`, `LABEL : rest`, `**LABEL**: rest` -> (LABEL, rest), else None.

    Bold markers that close the label are removed from `rest`; bold that belongs to
    the rest (`BLOCKING: **Error handling**: ...`) is kept.
    """
    body = line.lstrip(_BOLD)
    opened = line[: len(line) - len(body)].count("*")
    upper = body[: max(len(x) for x in labels)].upper()
    for label in labels:
        if upper.startswith(label):
            after = body[len(label) :]
            rest = after.lstrip(_BOLD)
            if not rest.startswith(":"):
                return None
            closed = after[: len(after) - len(rest)].count("*")
            rest = rest[1:].lstrip(_SPACE)
            unclosed = max(0, opened - closed)
            stars = len(rest) - len(rest.lstrip("*"))
            if unclosed and stars:
                rest = rest[min(stars, unclosed) :]
            return label, rest.strip()
    return None


def _verdict_value(line: str) -> str | None:
    """The word(s) after `VERDICT:` (bold tolerated), or None if the line is not one."""
    found = _labelled(line, ("VERDICT",))
    if found is None or not line.lstrip(_BOLD).startswith("VERDICT"):
        return None
    value = found[1].strip(_BOLD)
    if not value or not set(value) <= _VERDICT_CHARS:
        return None
    return " ".join(value.split()).upper()


def _list_item(line: str) -> str | None:
    """A list point with its bullet removed, bold text intact; None if not a list line."""
    if line.startswith("**"):
        return line  # a bold point without a bullet: `**Error handling**: ...`
    if line.startswith(("-", "*", "+")):
        point = line[1:].strip()
        return "" if not point.strip("-*+ \t") else point
    return None


def is_none_point(point: str) -> bool:
    """`none`, `N/A`, `-`: a reviewer's way of listing nothing."""
    return point.strip(_BOLD).lower() in _NONE


def parse_verdict(text: str) -> ReviewResult:
    """Parse `VERDICT: APPROVED|REVISE` followed by BLOCKING: and NON-BLOCKING: lists."""
    verdicts: list[str] = []
    sections: dict[str, list[str]] = {"BLOCKING": [], "NON-BLOCKING": []}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        value = _verdict_value(line)
        if value is not None:
            verdicts.append(value)
            current = None
            continue
        section = _labelled(line, _SECTIONS)
        if section:
            current, rest = section
            point = _list_item(rest)
            point = rest if point is None else point
            if not is_none_point(point):
                sections[current].append(point)
            continue
        if current:
            point = _list_item(line)
            if point is not None and not is_none_point(point):
                sections[current].append(point)
    if not verdicts:
        return _unparseable("no 'VERDICT:' line")
    if len(set(verdicts)) > 1:
        return _unparseable(f"conflicting verdicts {', '.join(verdicts)}")
    value = verdicts[0]
    if value not in (Verdict.APPROVED.value, Verdict.REVISE.value):
        return _unparseable(f"unknown verdict {clip(value, 40)!r}")  # redacted, then cut
    blocking, non_blocking = sections["BLOCKING"], sections["NON-BLOCKING"]
    if value == Verdict.APPROVED.value and blocking:
        return ReviewResult(Verdict.REVISE, blocking, non_blocking, note=APPROVED_WITH_BLOCKING)
    return ReviewResult(Verdict(value), blocking, non_blocking)
