"""Inputs that can never pass, remembered until they change.

An issue with no title fails validation in its first node, before any LLM call. Keeping
its checkpoint would make every later run "resume" it first and fail it again, and the
kept file would hold `agentos clean` back. Instead the item keeps no checkpoint and
leaves a mark here: `<workspace>/.agentos/invalid/<workflow>_<key>.json`, holding the
reason and a fingerprint of the input. While the input is unchanged, a run reports the
item as invalid, with the reason, and runs nothing; editing the file (or the GitHub
issue) changes the fingerprint, and the item runs again. `--force` and `--fresh` bypass
the mark.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentos.core.atomic_file import write_text_atomic
from agentos.core.errors import FileRefused, StillInvalid
from agentos.core.workspace_files import read_text
from agentos.workflows.item import ItemJob, WorkflowKind

INVALID_DIR = (".agentos", "invalid")
_MAX_MARK_BYTES = 64 * 1024  # a reason and a hash; anything bigger is not ours


@dataclass(frozen=True)
class InvalidMark:
    reason: str
    fingerprint: str
    at: str  # ISO 8601, local time


def input_source(job: ItemJob) -> str:
    """Where the user fixes the input, in the words they know."""
    if job.kind is WorkflowKind.ISSUE:
        return f"ideas/active/{job.key}.md"
    return f"issues/{job.key}.md" if job.tracker.kind == "local" else f"GitHub issue #{job.key}"


def mark_path(job: ItemJob) -> Path:
    return Path(job.workspace).joinpath(*INVALID_DIR, f"{job.kind.db_prefix}_{job.key}.json")


def record(job: ItemJob, reason: str, fingerprint: str) -> None:
    """Remember that this exact input failed validation. Best effort: the item already
    failed with the reason; a mark that cannot be written only costs a re-check."""
    at = datetime.now().astimezone().isoformat(timespec="seconds")
    text = json.dumps({"reason": reason, "fingerprint": fingerprint, "at": at})
    with contextlib.suppress(OSError):
        write_text_atomic(mark_path(job), text)


def forget(job: ItemJob) -> None:
    with contextlib.suppress(FileNotFoundError):
        mark_path(job).unlink()


def read_mark(job: ItemJob) -> InvalidMark | None:
    """The mark, or None when there is none or it is unreadable (then the item just runs)."""
    path = mark_path(job)
    try:
        data = json.loads(
            read_text(
                path,
                Path(job.workspace),
                what="invalid-input mark",
                max_bytes=_MAX_MARK_BYTES,
                allow_symlinks=False,
            )
        )
        mark = InvalidMark(str(data["reason"]), str(data["fingerprint"]), str(data["at"]))
    except (FileNotFoundError, FileRefused, ValueError, KeyError, TypeError):
        return None
    return mark


def still_invalid(job: ItemJob, fingerprint: str) -> StillInvalid | None:
    """Read-only (dry runs too): the error if this very input failed validation before."""
    if job.force or job.fresh:
        return None
    mark = read_mark(job)
    if mark is None or mark.fingerprint != fingerprint:
        return None
    return StillInvalid(mark.reason, mark.at, input_source(job))


def check(job: ItemJob, fingerprint: str) -> None:
    """Raise StillInvalid if this very input failed validation before; a stale mark
    (the input changed) is removed."""
    error = still_invalid(job, fingerprint)
    if error is not None:
        raise error
    if read_mark(job) is not None:
        forget(job)
