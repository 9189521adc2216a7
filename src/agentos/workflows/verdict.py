"""Strict parsing of the reviewer's answer. Anything unparseable counts as REVISE, with why."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    APPROVED = "APPROVED"
    REVISE = "REVISE"


@dataclass(frozen=True)
class ReviewResult:
    verdict: Verdict
    blocking: list[str] = field(default_factory=list)
    non_blocking: list[str] = field(default_factory=list)
    parse_error: str | None = None

    @property
    def approved(self) -> bool:
        return self.verdict is Verdict.APPROVED


_VERDICT_LINE = re.compile(r"^\**\s*VERDICT\s*\**\s*:\s*\**\s*([A-Za-z_ ]+?)\s*\**\s*$")
_SECTION = re.compile(r"^\**\s*(BLOCKING|NON-BLOCKING)\s*\**\s*:\s*\**\s*(.*)$", re.IGNORECASE)
_NONE = {"", "none", "n/a", "-", "(none)", "none."}


def _unparseable(reason: str) -> ReviewResult:
    return ReviewResult(
        Verdict.REVISE, [f"The review could not be parsed ({reason}); review again."], [], reason
    )


def parse_verdict(text: str) -> ReviewResult:
    """Parse `VERDICT: APPROVED|REVISE` followed by BLOCKING: and NON-BLOCKING: lists."""
    verdicts: list[str] = []
    sections: dict[str, list[str]] = {"BLOCKING": [], "NON-BLOCKING": []}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        match = _VERDICT_LINE.match(line)
        if match:
            verdicts.append(match.group(1).strip().upper())
            current = None
            continue
        section = _SECTION.match(line)
        if section:
            current = section.group(1).upper()
            rest = section.group(2).strip()
            if rest.lower() not in _NONE:
                sections[current].append(rest.lstrip("-* ").strip())
            continue
        if current and line.startswith(("-", "*")):
            point = line.lstrip("-* ").strip()
            if point.lower() not in _NONE:
                sections[current].append(point)
    if not verdicts:
        return _unparseable("no 'VERDICT:' line")
    if len(set(verdicts)) > 1:
        return _unparseable(f"conflicting verdicts {', '.join(verdicts)}")
    value = verdicts[0]
    if value not in (Verdict.APPROVED.value, Verdict.REVISE.value):
        return _unparseable(f"unknown verdict {value!r}")
    blocking, non_blocking = sections["BLOCKING"], sections["NON-BLOCKING"]
    if value == Verdict.APPROVED.value and blocking:
        return ReviewResult(
            Verdict.REVISE,
            blocking,
            non_blocking,
            "verdict APPROVED lists blocking points; treated as REVISE",
        )
    return ReviewResult(Verdict(value), blocking, non_blocking)
