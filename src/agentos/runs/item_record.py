"""One item's row of the end-of-run summary, typed from the coordinator to `summary.json` and back.

The coordinator's `WorkflowResult` is the public view of an item; a record adds where to
look (the item's log, its kept checkpoint) and what it spent. It becomes a dict only when
`summary.json` is written, so the summary line, the table and the exit code read typed
fields, and `agentos show` reads a summary back into the same type.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentos.core.outcome import ItemStatus
from agentos.core.redaction import redact
from agentos.engine.result import WorkflowResult
from agentos.runs.run_files import MAX_TEXT, clean_text

UNFINISHED = (ItemStatus.FAILED.value, ItemStatus.INTERRUPTED.value)
MAX_COUNT = 10**15  # a token count read back from a summary beyond this is not a count


def iso(timestamp: float | None) -> str | None:
    """A wall-clock time as ISO 8601 local time with its offset, like the logs; None stays None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        return None
    return value


def finite(value: object) -> float | None:
    """A real, finite number read back from JSON, else None (`Infinity`, NaN, 10**400, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ItemUsage:
    """Tokens and cost of one item. A count is None when a summary read back holds no usable number.

    `priced`: prices were set for the run, so the record carries a cost (None: no price for a
    model it used, never a guess)."""

    input_tokens: int | None
    output_tokens: int | None
    estimated: bool = False
    priced: bool = False
    cost: float | None = None

    def to_json(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens_estimated": self.estimated,
        }
        if self.priced:
            fields["cost"] = self.cost
        return fields

    @classmethod
    def from_json(cls, entry: Mapping[str, object]) -> ItemUsage | None:
        """None for an item without accounting (a run from before it, or no usage at all)."""
        if "input_tokens" not in entry and "cost" not in entry:
            return None
        return cls(
            input_tokens=_count(entry.get("input_tokens")),
            output_tokens=_count(entry.get("output_tokens")),
            estimated=entry.get("tokens_estimated") is True,  # only a real `true` marks estimates
            priced="cost" in entry,
            cost=finite(entry.get("cost")),
        )


@dataclass(frozen=True)
class ItemRecord:
    """`status` is an `ItemStatus` value; read back from an old or foreign summary, any clean text."""

    item: str
    status: str
    rounds: int = 0
    duration_s: float | None = 0.0
    error: str | None = None
    output: str | None = None
    log: str | None = None
    resumed: bool = False
    filed_issue: int | None = None
    checkpoint: str | None = None  # a failed or interrupted item's kept checkpoint, if it exists
    usage: ItemUsage | None = None
    # The joblog, as GNU parallel's --joblog has it: when it ran, how often, in which process.
    started: str | None = None  # ISO 8601; None: it never started
    ended: str | None = None
    # Runs of the item that started: more than one after a key's 429 or quota; 0: it never
    # ran; None: unknown (a summary from before the joblog).
    attempts: int | None = 0
    pid: int | None = None  # the (last) worker process; the coordinator's own for a single item

    @property
    def never_started(self) -> bool:
        """No worker ever ran it: the table shows "–", not `0  0.0s`. A field, not the error's text."""
        return self.status in (ItemStatus.NOT_STARTED.value, ItemStatus.SKIPPED.value) or self.attempts == 0

    @classmethod
    def of(
        cls,
        result: WorkflowResult,
        log_file: Path | None,
        db_path: str,
        usage: ItemUsage | None = None,
        pid: int | None = None,
    ) -> ItemRecord:
        """The record of a finished (or never started) item: the one place a result is read."""
        outcome = result.outcome
        status = result.status.value
        kept = status in UNFINISHED and os.path.exists(db_path)
        return cls(
            item=result.item_id,
            status=status,
            rounds=outcome.rounds if outcome else 0,
            duration_s=round(result.duration, 3),
            error=redact(result.error) if result.error else result.error,
            output=outcome.output if outcome else None,
            log=str(log_file) if log_file else None,
            resumed=outcome.resumed if outcome else False,
            filed_issue=outcome.filed_number if outcome else None,
            checkpoint=db_path if kept else None,
            usage=usage,
            started=iso(result.started_at),
            ended=iso(result.ended_at),
            attempts=result.attempts,
            pid=pid if result.attempts else None,
        )

    def to_json(self) -> dict[str, object]:
        """The `summary.json` shape of one item: the dict it replaced, then the joblog fields."""
        fields: dict[str, object] = {
            "item": self.item,
            "status": self.status,
            "rounds": self.rounds,
            "duration_s": self.duration_s,
            "error": self.error,
            "output": self.output,
            "log": self.log,
            "resumed": self.resumed,
        }
        if self.filed_issue is not None:
            fields["filed_issue"] = self.filed_issue
        if self.status in UNFINISHED:
            fields["checkpoint"] = self.checkpoint
        if self.usage is not None:
            fields.update(self.usage.to_json())
        fields.update(started=self.started, ended=self.ended, attempts=self.attempts, pid=self.pid)
        return fields

    @classmethod
    def from_json(cls, entry: Mapping[str, object]) -> ItemRecord:
        """An item of a summary read back (untrusted): every text cleaned (`clean_text`), and
        whatever is not of the expected type reads as unknown, never as a crash."""

        def text(key: str, limit: int = MAX_TEXT) -> str | None:
            value = entry.get(key)
            return clean_text(value, limit) if isinstance(value, str) and value else None

        rounds = _count(entry.get("rounds"))
        filed = _count(entry.get("filed_issue"))
        return cls(
            item=text("item", 80) or "?",
            status=text("status", 40) or "?",
            rounds=rounds or 0,
            duration_s=finite(entry.get("duration_s")),
            error=text("error"),
            output=text("output"),
            log=text("log", 1000),
            resumed=entry.get("resumed") is True,
            filed_issue=filed,
            checkpoint=text("checkpoint", 1000),
            usage=ItemUsage.from_json(entry),
            started=text("started", 60),
            ended=text("ended", 60),
            attempts=_count(entry.get("attempts")),
            pid=_count(entry.get("pid")),
        )
