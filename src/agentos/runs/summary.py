"""The consolidated end-of-run summary: one line, a table, and `summary.json`."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from agentos.core import safe_json
from agentos.core.atomic_file import write_text_atomic
from agentos.core.durations import format_duration
from agentos.core.outcome import ItemStatus
from agentos.core.std_streams import TextSink
from agentos.runs.item_record import ItemRecord, finite
from agentos.runs.run_files import MAX_TEXT, clean_text, read_json
from agentos.runs.spend import format_cost, format_tokens

NEVER = "\u2013"  # an en dash: the rounds and duration of an item that never ran
MAX_IDS = 20  # item ids named per status on the one summary line; the table lists every item

LABELS = {
    ItemStatus.APPROVED.value: "approved",
    ItemStatus.NEEDS_REVISION.value: "need revision",
    ItemStatus.FAILED.value: "failed",
    ItemStatus.INTERRUPTED.value: "interrupted",
    ItemStatus.NOT_STARTED.value: "not started",
    ItemStatus.SKIPPED.value: "skipped",
}


def totals(items: Sequence[ItemRecord]) -> dict[str, int]:
    counts = {status.value: 0 for status in ItemStatus if status is not ItemStatus.CREDENTIAL}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    counts["total"] = len(items)
    return counts


def summary_line(items: Sequence[ItemRecord]) -> str:
    counts = totals(items)
    parts = [
        f"{counts['approved']} approved",
        f"{counts['needs_revision']} need revision",
    ]
    for status in ("failed", "interrupted", "not_started", "skipped"):
        ids = [i.item for i in items if i.status == status]
        if ids or status == "failed":
            shown = ", ".join(ids[:MAX_IDS]) + (
                f", and {len(ids) - MAX_IDS} more" if len(ids) > MAX_IDS else ""
            )
            detail = f" ({shown})" if ids else ""
            parts.append(f"{len(ids)} {LABELS[status]}{detail}")
    return "Summary: " + ", ".join(parts)


def took_line(run: RunSummary) -> str:
    """The run's total time, as the console's summary ends with it: `Run took 1m12s (10:41:03 to 10:42:15)`."""
    took = format_duration(run.duration_s or 0)
    start, end = run.started or "", run.ended or ""
    return f"Run took {took} ({start[11:19]} to {end[11:19]})" if start and end else f"Run took {took}"


RUN_INFO_FIELDS = ("workspace", "command", "drafter", "reviewer", "agentos_version")


@dataclass(frozen=True)
class RunSummary:
    """A run's record, as `summary.json` holds it. Written by `write_summary`, read back by
    `read_summary`: one pair, one type; every value read back is checked and cleaned."""

    workflow: str
    run_dir: str
    started: str | None
    ended: str | None
    duration_s: float | None
    exit_code: int | None
    items: tuple[ItemRecord, ...] = ()
    totals: Mapping[str, int] = field(default_factory=dict)  # counts per status, and "total"
    # What tells runs apart: the workspace, the redacted command, the models, the version.
    info: Mapping[str, str] = field(default_factory=dict)
    usage: Mapping[str, Any] | None = None  # tokens and cost of the run (SpendMeter.run_fields)
    stopped_early: str | None = None  # --fail-fast, --max-cost: why no new item started
    interrupted_by: str | None = None  # Ctrl+C, SIGTERM, no usable key left
    rate_limits: Mapping[str, Any] | None = None  # 429s and calls per key (Pacing.summary)

    @property
    def workspace(self) -> str | None:
        return self.info.get("workspace")

    @property
    def command(self) -> str | None:
        return self.info.get("command")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "workflow": self.workflow,
            "run_dir": self.run_dir,
            **self.info,
            "started": self.started,
            "ended": self.ended,
            "duration_s": self.duration_s,
            "exit_code": self.exit_code,
            "totals": dict(self.totals),
            "items": [item.to_json() for item in self.items],
        }
        optional = {
            "usage": self.usage,
            "stopped_early": self.stopped_early,
            "interrupted_by": self.interrupted_by,
            "rate_limits": self.rate_limits,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSummary:
        """A summary read back (untrusted: an old run, a crash, someone else's file).
        Whatever is not of the expected type reads as unknown, never as a crash."""

        def text(key: str, limit: int = MAX_TEXT) -> str | None:
            value = data.get(key)
            return clean_text(value, limit) if value not in (None, "") else None

        raw_items = data.get("items")
        items = tuple(
            ItemRecord.from_json(entry)
            for entry in (raw_items if isinstance(raw_items, list) else [])
            if isinstance(entry, dict)
        )
        raw_totals = data.get("totals")
        totals = {
            clean_text(key, 40): value
            for key, value in (raw_totals.items() if isinstance(raw_totals, dict) else [])
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0
        }
        exit_code = data.get("exit_code")
        return cls(
            workflow=text("workflow", 40) or "-",
            run_dir=text("run_dir", 1000) or "-",
            started=text("started", 40),
            ended=text("ended", 40),
            duration_s=finite(data.get("duration_s")),
            exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
            items=items,
            totals=totals,
            info={key: value for key in RUN_INFO_FIELDS if (value := text(key, 1000)) is not None},
            usage=data["usage"] if isinstance(data.get("usage"), dict) else None,
            stopped_early=text("stopped_early"),
            interrupted_by=text("interrupted_by"),
            rate_limits=data["rate_limits"] if isinstance(data.get("rate_limits"), dict) else None,
        )


def write_summary(path: Path, run: RunSummary) -> None:
    """`summary.json`, atomically: a reader sees the old file or the new one, never half."""
    write_text_atomic(path, safe_json.dumps(run.to_json(), indent=2, default=str) + "\n")


def read_summary(run_dir: Path) -> RunSummary:
    """The run's `summary.json`, typed. RunHistoryError when it is missing or unusable."""
    missing = "no summary.json (the run is still going, or it was killed)"
    return RunSummary.from_json(read_json(run_dir, "summary.json", missing))


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def build(
    workflow: str,
    items: Sequence[ItemRecord],
    started: float,
    exit_code: int,
    run_dir: Path,
    run_info: Mapping[str, Any] | None = None,
    **outcome: Any,
) -> RunSummary:
    """`run_info`: what tells runs apart (workspace, redacted command, drafter, reviewer, version).
    `outcome`: usage, stopped_early, interrupted_by, rate_limits, as the run ended."""
    ended = time.time()
    info = {key: str(value) for key, value in (run_info or {}).items() if key in RUN_INFO_FIELDS and value}
    return RunSummary(
        workflow=workflow,
        run_dir=str(run_dir),
        started=iso(started),
        ended=iso(ended),
        duration_s=round(ended - started, 3),
        exit_code=exit_code,
        items=tuple(items),
        totals=totals(items),
        info=info,
        **outcome,
    )


def _tokens(item: ItemRecord) -> str:
    usage = item.usage
    if usage is None:
        return "-"
    if usage.input_tokens is None or usage.output_tokens is None:
        return "?"
    if not usage.input_tokens and not usage.output_tokens:
        return "-"  # no call finished: not started, skipped, or failed before any
    return format_tokens(usage.input_tokens, usage.output_tokens, usage.estimated)


def _cost(item: ItemRecord) -> str:
    if item.usage is None or _tokens(item) in ("-", "?"):
        return "-"
    if item.usage.cost is None:
        return "no price"  # never a guess
    return ("~" if item.usage.estimated else "") + format_cost(item.usage.cost)


def _encodes(stream: object, text: str) -> bool:
    """Whether `stream` can take `text` (PYTHONIOENCODING=ascii cannot take an en dash)."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def render_table(
    items: Sequence[ItemRecord], stream: TextSink, tty: bool, show_cost: bool | None = None
) -> None:
    """Tokens per item when known (`~`: estimated by the mock); a cost column only with prices.

    `show_cost=None` (a summary read back): a cost column if the items carry costs."""
    if show_cost is None:
        show_cost = any(item.usage is not None and item.usage.priced for item in items)
    table = Table(show_lines=False, box=box.SIMPLE if tty else None, pad_edge=False)
    show_tokens = any(item.usage is not None for item in items)
    columns = ["Item", "Status", "Rounds", "Duration"]
    columns += ["Tokens"] if show_tokens else []
    columns += ["Cost"] if show_cost else []
    for column in [*columns, "Log / error"]:
        table.add_column(column, overflow="fold")
    never = NEVER if _encodes(stream, NEVER) else "-"
    for item in items:
        detail = item.log or ""
        if item.status in ("failed", "interrupted", "not_started", "skipped") and item.error:
            detail = f"{item.error} ({detail})" if detail else item.error
        row = [
            item.item,
            LABELS.get(item.status, item.status),
            never if item.never_started else str(item.rounds),
            never if item.never_started else "?" if item.duration_s is None else f"{item.duration_s:.1f}s",
        ]
        row += [_tokens(item)] if show_tokens else []
        row += [_cost(item)] if show_cost else []
        table.add_row(*row, detail)
    # markup=False: item errors carry provider and file text; "[/x]" in one must not crash the summary.
    buffer = io.StringIO()
    if tty:
        Console(file=buffer, force_terminal=True, highlight=False, markup=False).print(table)
        stream.write(buffer.getvalue())
        return
    # Plain output goes to files and CI logs: no right-padding to the 160-column width.
    Console(file=buffer, width=160, highlight=False, markup=False).print(table)
    stream.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
