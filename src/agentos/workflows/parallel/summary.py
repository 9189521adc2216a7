"""The consolidated end-of-run summary: one line, a table, and `summary.json`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from agentos.workflows.item import ItemOutcome, ItemStatus
from agentos.workflows.parallel.coordinator import WorkflowResult

LABELS = {
    ItemStatus.APPROVED.value: "approved",
    ItemStatus.NEEDS_REVISION.value: "need revision",
    ItemStatus.FAILED.value: "failed",
    ItemStatus.INTERRUPTED.value: "interrupted",
    ItemStatus.NOT_STARTED.value: "not started",
}


def item_record(result: WorkflowResult, log_file: Path | None, db_path: str | None) -> dict[str, Any]:
    outcome = result.value if isinstance(result.value, ItemOutcome) else None
    status = result.status.value
    record: dict[str, Any] = {
        "item": result.item_id,
        "status": status,
        "rounds": outcome.rounds if outcome else 0,
        "duration_s": round(result.duration, 3),
        "error": result.error,
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
    for status in ("failed", "interrupted", "not_started"):
        ids = [i["item"] for i in items if i["status"] == status]
        if ids or status == "failed":
            detail = f" ({', '.join(ids)})" if ids else ""
            parts.append(f"{len(ids)} {LABELS[status]}{detail}")
    return "Summary: " + ", ".join(parts)


def write_summary(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def build(
    workflow: str, items: list[dict[str, Any]], started: float, exit_code: int, run_dir: Path
) -> dict[str, Any]:
    return {
        "workflow": workflow,
        "run_dir": str(run_dir),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 3),
        "exit_code": exit_code,
        "totals": totals(items),
        "items": items,
    }


def render_table(items: list[dict[str, Any]], stream: TextIO, tty: bool) -> None:
    table = Table(show_lines=False, box=box.SIMPLE if tty else None, pad_edge=False)
    for column in ("Item", "Status", "Rounds", "Duration", "Log / error"):
        table.add_column(column, overflow="fold")
    for item in items:
        detail = item["log"] or ""
        if item["status"] in ("failed", "interrupted", "not_started") and item["error"]:
            detail = f"{item['error']} ({detail})" if detail else item["error"]
        table.add_row(
            item["item"],
            LABELS.get(item["status"], item["status"]),
            str(item["rounds"]),
            f"{item['duration_s']:.1f}s",
            detail,
        )
    console = Console(file=stream, force_terminal=tty, width=None if tty else 160, highlight=False)
    console.print(table)
