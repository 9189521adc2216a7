"""What a run would do with each item, found read-only: for --dry-run and the pre-flight check.

Nothing here creates or changes a file: kept DBs are read with `immutable=1`, lock files
are probed only if they exist.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from agentos.core.errors import AgentosError, CheckpointError, CheckpointRefused
from agentos.core.paths import Workspace
from agentos.tracker.base import Tracker
from agentos.workflows import invalid_inputs
from agentos.workflows.checkpoint_identity import (
    Action,
    Owner,
    check_same_item,
    decide,
    has_checkpoint,
    is_ours,
    owner_for,
    read_owner,
)
from agentos.workflows.item import ItemJob, WorkflowKind
from agentos.workflows.item_lock import holder_of, skipped_message
from agentos.workflows.pending import already_done, hand_written_lld


def preflight(job: ItemJob) -> None:
    """Raise CheckpointRefused (exit 2) when the item's DB path holds something not its own."""
    path = Path(job.db_path)
    if is_ours(path):
        with contextlib.suppress(CheckpointError):  # unreadable: the run reports it, with the fix
            expected = Owner(str(Path(job.workspace).resolve()), job.kind.db_prefix, job.key, "")
            check_same_item(path, read_owner(path), expected)


def plan(job: ItemJob, tracker: Tracker) -> str:
    """`_plan`, and whether a hand-written LLD at the item's path would be kept aside."""
    text = _plan(job, tracker)
    if job.kind is WorkflowKind.LLD and not text.startswith("would skip"):
        workspace = Workspace(Path(job.workspace))
        with contextlib.suppress(ValueError):
            if hand_written_lld(workspace, int(job.key)):
                name = workspace.lld_file(int(job.key)).stem
                text += f"; {name}.md was not written by agentos: it would be kept as {name}.hand-written.md"
    return text


def _plan(job: ItemJob, tracker: Tracker) -> str:
    """`would resume from ...`, `would start fresh: input changed ...`, `would skip: ...`."""
    pid = holder_of(job)
    if pid is not None:
        return f"would skip: {skipped_message(pid)}"
    done = already_done(job)
    if done is not None:
        return f"would skip: {done}"
    if invalid_inputs.read_mark(job) is not None:
        with contextlib.suppress(AgentosError):
            owner = owner_for(job.kind, job.key, Workspace(Path(job.workspace)), tracker)
            invalid = invalid_inputs.still_invalid(job, owner.input_sha256)
            if invalid is not None:
                return f"would fail: {invalid}"
    path = Path(job.db_path)
    try:
        if not is_ours(path):
            return "would start fresh"
        owner = owner_for(job.kind, job.key, Workspace(Path(job.workspace)), tracker)
        action = decide(path, owner, job.fresh)
    except CheckpointRefused as exc:
        return f"would refuse: {exc}"
    except AgentosError as exc:
        return f"would fail: {exc}"
    if action is Action.DISCARD_FRESH:
        return "would start fresh (--fresh discards the checkpoint)"
    if action is Action.DISCARD_CHANGED:
        return f"would start fresh: input changed since the checkpoint {path} was written"
    if has_checkpoint(path):
        return f"would resume from {path}"
    return "would start fresh"
