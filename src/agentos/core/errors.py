"""The exception tree. Every error carries the data a caller needs to act on it.

`exit_code` maps an error to the process exit code; the codes are listed in the README
("Exit codes") and in each command's `--help`.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_POOL_EXHAUSTED = 75
EXIT_LIMIT_REACHED = EXIT_POOL_EXHAUSTED  # --max-cost stopped the run: resumable, like a spent pool
EXIT_TEMPFAIL = EXIT_POOL_EXHAUSTED  # EX_TEMPFAIL: the team backend went away mid-run; resumable
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


class FileRefused(ConfigError):
    """An input file agentos will not read: not a regular file, outside the workspace,
    over the size limit, or undecodable. Nothing of it was read, sent or copied.

    It is a ConfigError (exit 2) when met before anything starts (a flag names it); inside
    a workflow it fails that item, like any other AgentosError.
    """

    def __init__(self, what: str, path: Path, reason: str, shown: str | None = None) -> None:
        self.what, self.path, self.reason = what, path, reason
        self.shown = shown or str(path)
        super().__init__(f"refused {what} {self.shown}: {reason}")


class InvalidSpec(AgentosError):
    """The item itself (issue or brief) cannot be worked on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Invalid spec format ({reason})")


class StillInvalid(AgentosError):
    """An input that failed validation earlier and has not changed since: not run again."""

    def __init__(self, reason: str, since: str, source: str) -> None:
        self.reason, self.since, self.source = reason, since, source
        super().__init__(
            f"Invalid spec format ({reason}); unchanged since {since}, so not run again. Fix {source} to retry."
        )


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


class BackendLost(Interrupted):
    """The team backend's session went away mid-item (terminated, restarted, network down):
    the item stops before its next node, its checkpoint kept in the backend, and the run
    exits 75 (EX_TEMPFAIL: run the same command again when the backend is back)."""

    exit_code = EXIT_POOL_EXHAUSTED

    def __init__(self, where: str, cause: str) -> None:
        self.where, self.cause = where, cause
        super().__init__(
            f"lost the backend at {where} ({cause}); stopped before the next node, checkpoint kept"
        )


class StartupStalled(AgentosError):
    """A helper process agentos starts workers from did not answer in time (it may be
    stopped with SIGSTOP, or stuck): nothing of the item ran."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what, self.seconds = what, seconds
        super().__init__(
            f"{what} did not answer within {seconds:g}s (AGENTOS_STARTUP_TIMEOUT); it may be stopped "
            "(kill -STOP) or stuck. Nothing ran; run the same command again"
        )


class DiskError(AgentosError):
    """A write failed for want of space, permission or a working disk. The data is not
    corrupt: free space (or fix the permissions) and run the same command to resume."""

    def __init__(self, path: Path | str, cause: str) -> None:
        self.path, self.cause = Path(path), cause
        super().__init__(
            f"disk error writing {path} ({cause}); free space or fix permissions, "
            "then run the same command again to resume"
        )


class CredentialSourceError(AgentosError):
    """A credential source raised (or answered nonsense): it fails one item, never the run."""

    def __init__(self, operation: str, cause: BaseException) -> None:
        self.operation, self.cause = operation, cause
        super().__init__(f"the credential source's {operation}() raised {type(cause).__name__}: {cause}")


class KeyLedgerRefused(ConfigError):
    """The key ledger's file holds something agentos did not create, or is corrupt: it is
    left as it is, and no run uses it (exit 2), since pacing without it would be blind."""

    def __init__(self, path: Path, cause: str) -> None:
        self.path, self.cause = path, cause
        super().__init__(
            f"Refusing to use {path} as the key ledger: {cause}. agentos left it untouched; move it "
            "away (a new ledger is made in its place: cool-downs and learned limits start afresh)."
        )


class CheckpointRefused(ConfigError):
    """A path where a checkpoint DB should be holds something agentos did not create.

    agentos resumes, discards or deletes only its own marked DBs; the file is left as it is.
    """

    def __init__(self, path: Path, cause: str) -> None:
        self.path, self.cause = path, cause
        super().__init__(
            f"Refusing to use {path} as a checkpoint database: {cause}. agentos left it untouched; "
            "move it away, or point AGENTOS_WORKFLOW_DB at another path."
        )
