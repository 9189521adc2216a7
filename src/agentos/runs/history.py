"""Past batch runs: the run folders in `$AGENTOS_HOME/logs/parallel/`, read as untrusted input.

Anything in a run folder may be corrupt, huge, of the wrong type, a symlink or a FIFO:
it was written by an earlier run that may have crashed, or by someone else. So a
summary is opened without following symlinks and without blocking, only when it is a
regular file of sane size, and every value shown is type-checked and stripped of
control characters. Only real directories named like a run folder count as runs, and
`clean` removes nothing else: never a symlink's target, never a checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from agentos.core.errors import ConfigError, FileRefused
from agentos.core.paths import logs_dir
from agentos.core.workspace_files import read_bytes
from agentos.runs.item_record import ItemRecord
from agentos.runs.progress import PROGRESS_NAME, running_pid
from agentos.runs.run_files import MAX_SUMMARY_BYTES, RunHistoryError, clean_text, read_json
from agentos.runs.summary import read_summary

# What paths.new_run_dir creates; ASCII digits only, and nothing after (not even a newline).
RUN_NAME = re.compile(r"[0-9]{8}-[0-9]{6}(-[0-9]{1,3})?", re.ASCII)


def runs_root() -> Path:
    return logs_dir() / "parallel"


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def run_folders() -> list[Path]:
    """Run folders, oldest first: real directories (not symlinks) named like a run folder."""
    root = runs_root()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    found = [Path(e.path) for e in entries if RUN_NAME.fullmatch(e.name) and _is_real_dir(Path(e.path))]
    return sorted(found, key=lambda p: _sort_key(p.name))


def _sort_key(name: str) -> tuple[str, int]:
    stamp, _, n = name.partition("-")[2].partition("-")
    return name[:8] + stamp, int(n or 0)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(min(max(value, 0.0), 1e9))
    return 0.0


class RunState(StrEnum):
    FINISHED = "finished"  # summary.json written
    RUNNING = "running"  # its coordinator holds run.lock
    STOPPED = "stopped"  # progress so far, no summary, and no coordinator: killed
    UNREADABLE = "unreadable"  # neither a usable summary nor progress


@dataclass
class RunInfo:
    """One run as `agentos runs` lists it; every field already checked and cleaned."""

    path: Path
    when: str
    workspace: str
    workflow: str
    totals: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    problem: str | None = None  # why the summary could not be used
    state: RunState = RunState.FINISHED
    pid: int | None = None  # the coordinator of a run still going (0: unknown)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": clean_text(self.path.name, 40),
            "path": clean_text(str(self.path), 1000),
            "state": self.state.value,
            "started": self.when,
            "workspace": self.workspace,
            "workflow": self.workflow,
            "totals": self.totals,
            "exit_code": self.exit_code,
            "problem": self.problem,
            "pid": self.pid,
        }


def _counts(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {clean_text(k, 40): n for k, v in raw.items() if (n := _int(v)) is not None and n >= 0}


def run_info(run_dir: Path) -> RunInfo:
    try:
        run = read_summary(run_dir)
    except RunHistoryError as exc:
        pid = running_pid(run_dir)
        try:
            progress = read_json(run_dir, PROGRESS_NAME, "")
        except RunHistoryError as progress_exc:
            if pid is not None:
                return RunInfo(run_dir, run_dir.name, "-", "-", state=RunState.RUNNING, pid=pid)
            why = f"{exc.reason}; {progress_exc.reason}" if progress_exc.reason else exc.reason
            return RunInfo(run_dir, run_dir.name, "-", "-", problem=why, state=RunState.UNREADABLE)
        done = _counts(progress.get("done"))
        total = _int(progress.get("total"))
        totals = {**done, **({"total": total} if total is not None else {})}
        if pid is not None:
            state, problem = RunState.RUNNING, None
        else:  # its coordinator is gone, and it never wrote a summary: killed, or a full disk
            state, problem = RunState.STOPPED, "stopped without a summary (its coordinator is gone)"
        return RunInfo(
            run_dir,
            when=clean_text(progress.get("started") or run_dir.name, 40),
            workspace=clean_text(progress.get("workspace") or "-"),
            workflow=clean_text(progress.get("workflow") or "-", 40),
            totals=totals,
            problem=problem,
            state=state,
            pid=pid,
        )
    return RunInfo(
        run_dir,
        when=run.started or clean_text(run_dir.name, 40),
        workspace=clean_text(run.workspace or "-"),
        workflow=run.workflow,
        totals=dict(run.totals),
        exit_code=run.exit_code,
    )


def find_run(name: str | None) -> Path:
    """A run folder by name or path; the latest one that has a summary when `name` is None."""
    if name is None:
        for run_dir in reversed(run_folders()):
            if (run_dir / "summary.json").exists():
                return run_dir
        raise ConfigError(f"no finished runs in {runs_root()}: a batch run (--all or --parallel) writes one")
    path = Path(name).expanduser() if os.sep in name or name.startswith(".") else runs_root() / name
    if not _is_real_dir(path):
        raise ConfigError(f"no run folder {name!r}: see `agentos runs` for the runs in {runs_root()}")
    return path


# -- one item ------------------------------------------------------------------------

MAX_LOG_BYTES = 8 * 1024 * 1024
MAX_LOG_LINE = 2000
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}", re.ASCII)


def find_item(items: Sequence[ItemRecord], wanted: str) -> ItemRecord | None:
    """The item named `wanted`: its id (any case), or its key (`3` for LLD-3, `widgets` for ISSUE-widgets)."""
    target = wanted.strip().lower()
    for entry in items:
        name = entry.item.lower()
        key = name.split("-", 1)[1] if "-" in name else name
        if target in (name, key) or (target.isdigit() and key.isdigit() and int(target) == int(key)):
            return entry
    return None


@dataclass(frozen=True)
class VerdictView:
    round: int | None
    verdict: str
    blocking: list[str]


@dataclass
class ItemView:
    """What `agentos show RUN ITEM` prints: every value read from the run folder and cleaned."""

    record: ItemRecord
    log_path: Path
    log_lines: list[str] = field(default_factory=list)
    log_problem: str | None = None
    verdicts: list[VerdictView] = field(default_factory=list)
    lineage: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.record.to_json(),
            "log_file": clean_text(str(self.log_path), 1000),
            "log_problem": self.log_problem,
            "log_text": "\n".join(self.log_lines),
            "verdicts": [
                {"round": v.round, "verdict": v.verdict, "blocking": v.blocking} for v in self.verdicts
            ],
            "lineage": self.lineage,
        }


def _run_file(run_dir: Path, name: str, max_bytes: int) -> bytes:
    """A file of the run folder by name: a regular file, no symlink, bounded. FileRefused otherwise."""
    hint = "it is larger than `agentos show` prints; open it with a pager"
    return read_bytes(
        run_dir / name, run_dir, what="run file", max_bytes=max_bytes, allow_symlinks=False, limit_hint=hint
    )


def item_view(run_dir: Path, info: RunInfo, entry: ItemRecord) -> ItemView:
    """The item's log and verdicts, found by its id in `run_dir`; the summary's paths are only shown."""
    item = entry.item
    safe = _SAFE_NAME.fullmatch(item) is not None
    view = ItemView(record=entry, log_path=run_dir / (f"{item}.log" if safe else "?"))
    if info.workspace not in ("", "-") and safe:
        view.lineage = clean_text(str(Path(info.workspace) / "docs" / "lineage" / "active" / item), 1000)
    if not safe:
        view.log_problem = "the item's name is not a file name; nothing read"
        return view
    try:
        text = _run_file(run_dir, f"{item}.log", MAX_LOG_BYTES).decode("utf-8", "replace")
        view.log_lines = [clean_text(line, MAX_LOG_LINE) for line in text.splitlines()]
    except FileNotFoundError:
        view.log_problem = "no log: the item never started in this run"
    except FileRefused as exc:
        view.log_problem = f"not shown: {clean_text(exc.reason)}"
    key = item.split("-", 1)[1] if "-" in item else item
    try:
        audit = _run_file(run_dir, f"workflow-audit-{key}.jsonl", MAX_SUMMARY_BYTES).decode(
            "utf-8", "replace"
        )
    except (FileNotFoundError, FileRefused):
        return view
    for line in audit.splitlines():
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a torn last line, or garbage
        if not isinstance(event, dict) or event.get("event") != "verdict":
            continue
        raw = event.get("blocking")
        points = [clean_text(p) for p in raw[:50]] if isinstance(raw, list) else []
        view.verdicts.append(
            VerdictView(_int(event.get("round")), clean_text(event.get("verdict") or "?", 40), points)
        )
    return view
