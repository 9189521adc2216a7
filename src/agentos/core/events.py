"""Named workflow events. Emitters do not know who listens; the audit log is one receiver.

Modelled on huey's signals: outcomes are constants, receivers subscribe to a bus.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from agentos.core import safe_json
from agentos.core.atomic_file import with_filename
from agentos.core.workspace_files import read_home_file


class EventType(StrEnum):
    WORKFLOW_START = "workflow_start"
    WORKFLOW_RESUME = "workflow_resume"
    NODE_START = "node_start"
    NODE_END = "node_end"
    LLM_CALL = "llm_call"
    PERMIT_WAIT = "permit_wait"  # a paced call waited for budget on a key before it went out
    VERDICT = "verdict"
    STRUCTURED_OUTPUT_FALLBACK = "structured_output_fallback"
    ISSUE_FILED = "issue_filed"
    WORKFLOW_COMPLETE = "workflow_complete"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_INTERRUPTED = "workflow_interrupted"
    WORKFLOW_RATE_LIMITED = "workflow_rate_limited"


@dataclass(frozen=True)
class Event:
    type: EventType
    item_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> str:
        """`ts` in ISO 8601 local time with its offset, like every log line; `epoch_s` for arithmetic."""
        when = datetime.fromtimestamp(self.ts).astimezone().isoformat(timespec="milliseconds")
        record: dict[str, Any] = {
            "ts": when,
            "epoch_s": round(self.ts, 3),
            "event": self.type.value,
            "item": self.item_id,
        }
        record.update(self.fields)
        return safe_json.dumps(record, default=str, ensure_ascii=False)


Receiver = Callable[[Event], None]


class EventBus:
    """Fan events out to receivers. A failing receiver never breaks the workflow."""

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        self._receivers: list[Receiver] = []

    def subscribe(self, receiver: Receiver) -> None:
        self._receivers.append(receiver)

    def emit(self, type_: EventType, **fields: Any) -> None:
        event = Event(type_, self.item_id, fields)
        for receiver in self._receivers:
            with contextlib.suppress(Exception):
                receiver(event)


class AuditWriter:
    """Append one JSON line per event to `workflow-audit-<id>.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: Event) -> None:
        line = event.to_json() + "\n"
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:  # a full home: name this file, not the checkpoint
            raise with_filename(exc, self.path) from None


MAX_AUDIT_BYTES = 64 * 1024 * 1024  # thousands of calls; a larger file is not one item's audit


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Parse an audit file, skipping a torn last line left by a killed process.

    Read from AGENTOS_HOME by the rules of home files: a FIFO, a symlink or a huge file is
    a FileRefused that names it. A missing file is no events."""
    records: list[dict[str, Any]] = []
    try:
        text = read_home_file(
            path,
            what="audit file",
            max_bytes=MAX_AUDIT_BYTES,
            limit_hint="one item's audit",
            errors="replace",
        )
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):  # a torn line, or one nested to crash the parser
            continue
        if isinstance(value, dict):
            records.append(value)
    return records
