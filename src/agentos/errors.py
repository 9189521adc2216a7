"""The exception tree. Every error carries the data a caller needs to act on it.

`exit_code` maps an error to the process exit code documented in DESIGN.md.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_POOL_EXHAUSTED = 75
EXIT_INTERRUPTED = 130


class AgentosError(Exception):
    """Base of every error agentos raises on purpose."""

    exit_code = EXIT_FAILED


class ConfigError(AgentosError):
    """Bad flags, settings, credentials files or identifiers: nothing was started."""

    exit_code = EXIT_USAGE


class ItemNotFound(ConfigError):
    def __init__(self, kind: str, key: str, where: str) -> None:
        self.kind, self.key, self.where = kind, key, where
        super().__init__(f"{kind} {key!r} not found in {where}")


class InvalidSpec(AgentosError):
    """The item itself (issue or brief) cannot be worked on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Invalid spec format ({reason})")


class CheckpointError(AgentosError):
    """A checkpoint database that cannot be opened or read."""

    def __init__(self, path: Path, cause: str) -> None:
        self.path, self.cause = path, cause
        super().__init__(
            f"Checkpoint database {path} is corrupt or unreadable ({cause}). "
            "Run again with --fresh to discard it and start this item over."
        )


class Interrupted(AgentosError):
    """A stop was requested; the last completed node is checkpointed."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str = "interrupted; resumable from the last checkpoint") -> None:
        super().__init__(message)
