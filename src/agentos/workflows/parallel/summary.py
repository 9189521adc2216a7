"""The consolidated end-of-run summary: one line, a table, and `summary.json`."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from agentos import safe_json
from agentos.atomic_file import write_text_atomic
from agentos.redaction import redact
from agentos.std_streams import TextSink
from agentos.workflows.item import ItemOutcome, ItemStatus
from agentos.workflows.parallel.coordinator import WorkflowResult
from agentos.workflows.parallel.spend import format_cost, format_tokens

LABELS = {
    ItemStatus.APPROVED.value: "approved",
    ItemStatus.NEEDS_REVISION.value: "need revision",
    ItemStatus.FAILED.value: "failed",
    ItemStatus.INTERRUPTED.value: "interrupted",
    ItemStatus.NOT_STARTED.value: "not started",
    ItemStatus.SKIPPED.value: "skipped",
}


def item_record(result: WorkflowResult, log_file: Path | None, db_path: str | None) -> dict[str, Any]:
    outcome = result.value if isinstance(result.value, ItemOutcome) else None
    status = result.status.value
    record: dict[str, Any] = {
        "item": result.item_id,
        "status": status,
        "rounds": outcome.rounds if outcome else 0,
        "duration_s": round(result.duration, 3),
        "error": redact(result.error) if result.error else result.error,
        "output": outcome.output if outcome else None,
        "log": str(log_file) if log_file else None,
        "resumed": outcome.resumed if outcome else False,
    }
    if outcome and outcome.filed_number is not None:
        record["filed_issue"] = outcome.filed_number
    if status in (ItemStatus.FAILED.value, ItemStatus.INTERRUPTED.value) and db_path:
        record["checkpoint"] = db_path if os.path.exists(db_path) else None
    return record


def totals(items: list[dict[str, Any]]) -> dict[str, int]:
    counts = {status.value: 0 for status in ItemStatus if status is not ItemStatus.CREDENTIAL}
    for item in items:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    counts["total"] = len(items)
    return counts


def summary_line(items: list[dict[str, Any]]) -> str:
    counts = totals(items)
    parts = [
        f"{counts['approved']} approved",
        f"{counts['needs_revision']} need revision",
    ]
    for status in ("failed", "interrupted", "not_started", "skipped"):
        ids = [i["item"] for i in items if i["status"] == status]
        if ids or status == "failed":
            detail = f" ({', '.join(ids)})" if ids else ""
            parts.append(f"{len(ids)} {LABELS[status]}{detail}")
    return "Summary: " + ", ".join(parts)


def write_summary(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, safe_json.dumps(data, indent=2, default=str) + "\n")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def build(
    workflow: str,
    items: list[dict[str, Any]],
    started: float,
    exit_code: int,
    run_dir: Path,
    run_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`run_info`: what tells runs apart (workspace, redacted command, drafter, reviewer, version)."""
    ended = time.time()
    return {
        "workflow": workflow,
        "run_dir": str(run_dir),
        **(run_info or {}),
        "started": iso(started),
        "ended": iso(ended),
        "duration_s": round(ended - started, 3),
        "exit_code": exit_code,
        "totals": totals(items),
        "items": items,
    }


def _number(value: Any) -> float | None:
    """A count or cost from a summary (maybe read back from disk): a real number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return value


def _tokens(item: dict[str, Any]) -> str:
    tokens_in, tokens_out = _number(item.get("input_tokens")), _number(item.get("output_tokens"))
    if tokens_in is None or tokens_out is None:
        return "?" if "input_tokens" in item else "-"
    if not tokens_in and not tokens_out:
        return "-"  # no call finished: not started, skipped, or failed before any
    return format_tokens(int(tokens_in), int(tokens_out), item.get("tokens_estimated") is True)


def _cost(item: dict[str, Any]) -> str:
    if _tokens(item) in ("-", "?"):
        return "-"
    cost = _number(item.get("cost"))
    if cost is None:
        return "no price"  # never a guess
    return ("~" if item.get("tokens_estimated") is True else "") + format_cost(cost)


def render_table(
    items: list[dict[str, Any]], stream: TextSink, tty: bool, show_cost: bool | None = None
) -> None:
    """Tokens per item when known (`~`: estimated by the mock); a cost column only with prices.

    `show_cost=None` (a summary read back): a cost column if the items carry costs."""
    if show_cost is None:
        show_cost = any("cost" in item for item in items)
    table = Table(show_lines=False, box=box.SIMPLE if tty else None, pad_edge=False)
    show_tokens = any("input_tokens" in item for item in items)
    columns = ["Item", "Status", "Rounds", "Duration"]
    columns += ["Tokens"] if show_tokens else []
    columns += ["Cost"] if show_cost else []
    for column in [*columns, "Log / error"]:
        table.add_column(column, overflow="fold")
    for item in items:
        detail = item["log"] or ""
        if item["status"] in ("failed", "interrupted", "not_started", "skipped") and item["error"]:
            detail = f"{item['error']} ({detail})" if detail else item["error"]
        row = [
            item["item"],
            LABELS.get(item["status"], item["status"]),
            str(item["rounds"]),
            f"{item['duration_s']:.1f}s",
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
