"""An item's checkpoint in the team backend: LangGraph's official PostgresSaver (issue 23).

The same rules as the SQLite files (`checkpoint.CheckpointStore`, ADR 0002): a thread is
resumed, discarded (--fresh, or an input that changed) or deleted only when it carries
agentos's mark for this very item (`agentos.checkpoint_marks`); it is deleted on success and
kept on failure. One thread per (workflow, workspace identity, item), so a clone of the same
repository on another machine resumes it from its last completed node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentos.backend.postgres.item_session import ItemSession
from agentos.core.errors import CheckpointRefused
from agentos.core.printing import Console
from agentos.workflows.checkpoint import redacting_serializer_class
from agentos.workflows.checkpoint_identity import Action, Owner


class BackendCheckpointStore:
    def __init__(self, session: ItemSession) -> None:
        self.session = session
        self.serde = redacting_serializer_class()()
        self.where = f"{session.where} thread {session.thread_id}"

    def prepare(self, owner: Owner, fresh: bool, console: Console) -> Action:
        mark = self.session.mark()
        if mark is None:
            if self.session.has_checkpoint():
                raise CheckpointRefused(
                    Path(self.where),
                    "the backend holds checkpoints for this thread that agentos did not mark",
                )
            action = Action.NEW
        else:
            if (mark.workspace, mark.workflow, mark.item) != (owner.workspace, owner.workflow, owner.item):
                raise CheckpointRefused(
                    Path(self.where),
                    f"it is marked for {mark.workflow} item {mark.item} in {mark.workspace}",
                )
            if fresh:
                action = Action.DISCARD_FRESH
            elif mark.input_sha256 != owner.input_sha256:
                action = Action.DISCARD_CHANGED
            else:
                action = Action.RESUME
        if action is Action.DISCARD_FRESH:
            self.session.delete_checkpoint(self.serde)
            console.line(f"    Discarded the kept checkpoint {self.where} (--fresh)")
        elif action is Action.DISCARD_CHANGED:
            self.session.delete_checkpoint(self.serde)
            console.line(
                f"    Input changed since the checkpoint {self.where} was written: discarded it; starting fresh"
            )
        if action is not Action.RESUME:
            self.session.set_mark(owner.input_sha256)
        return action

    def open(self) -> Any:
        return self.session.saver(self.serde)

    def close(self) -> None:
        """The session stays open: it holds the item until the worker has reported."""

    def delete(self) -> None:
        self.session.delete_checkpoint(self.serde)
