"""Where items come from and go to: the local `issues/` folder or a GitHub repository."""

from agentos.tracker.base import (
    IssueSpec,
    Tracker,
    TrackerConfig,
    filing_marker,
    parse_issue_markdown,
)

__all__ = ["IssueSpec", "Tracker", "TrackerConfig", "filing_marker", "parse_issue_markdown"]
