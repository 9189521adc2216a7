"""Build the tracker a config asks for."""

from __future__ import annotations

from agentos.core.paths import Workspace
from agentos.tracker.base import Tracker, TrackerConfig
from agentos.tracker.local import LocalTracker


def open_tracker(config: TrackerConfig, workspace: Workspace) -> Tracker:
    if config.kind == "github":
        from agentos.tracker.github import GitHubTracker

        return GitHubTracker.from_config(config)
    return LocalTracker(workspace)
