"""The tracker interface and the issue text format ("# Title" then the body)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IssueSpec:
    number: int
    title: str
    body: str

    @property
    def text(self) -> str:
        return f"# {self.title}\n\n{self.body}".strip() + "\n"


@dataclass(frozen=True)
class TrackerConfig:
    """Which tracker to use. Picklable, so it can travel to a worker process."""

    kind: str = "local"  # "local" or "github"
    repo: str | None = None  # owner/name for GitHub
    api_url: str = "https://api.github.com"
    label: str | None = None


class Tracker(Protocol):
    def open_issue_numbers(self) -> list[int]: ...

    def get_issue(self, number: int) -> IssueSpec: ...

    def find_filed(self, marker: str, *, maybe_sent: bool = False) -> int | None:
        """The issue filed with `marker`, or None. `maybe_sent`: an earlier run recorded
        the intent to file it, so it may have been filed long ago: look harder."""
        ...

    def create_issue(self, title: str, body: str, labels: list[str]) -> int: ...

    def describe(self) -> str: ...


def filing_marker(slug: str, token: str) -> str:
    """A hidden line in a filed issue's body that makes filing idempotent across resumes."""
    return f"<!-- agentos-filing: {slug}/{token} -->"


def parse_issue_markdown(number: int, text: str) -> IssueSpec:
    """Split "# Title" from the body. A missing title or body is left empty for validation."""
    lines = text.replace("\r\n", "\n").split("\n")
    title = ""
    rest_start = 0
    for index, line in enumerate(lines):
        if line.strip():
            if line.startswith("# "):
                title = line[2:].strip()
                rest_start = index + 1
            break
    body = "\n".join(lines[rest_start:]).strip()
    return IssueSpec(number=number, title=title, body=body)
