"""Run records from this machine's run folders (`$AGENTOS_HOME/logs/parallel/<run>/`).

Every file is untrusted (ADR 0005, `runs.run_files`): opened without following a symlink or
blocking on a FIFO, only when it is a regular file, and read bounded. A huge log or audit
shows its end, a corrupt JSON line is skipped, a corrupt summary makes the run "unreadable"
with the reason, never a broken page. A run is named by its folder name only, checked
against the pattern `paths.new_run_dir` creates, so a URL can never name a path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import socket
import sqlite3
import stat
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from agentos.backend.key_ledger import KeyActivity
from agentos.core.errors import AgentosError
from agentos.core.paths import key_ledger_file
from agentos.dashboard.records import (
    AuditEvent,
    ItemDetail,
    ItemRow,
    KeyRow,
    PoolCall,
    RecordNotFound,
    Round,
    RunDetail,
    RunRow,
    Spend,
)
from agentos.keys.pools import open_key_ledger
from agentos.runs.history import RUN_NAME, RunState, run_folders, run_info, runs_root
from agentos.runs.item_record import ItemRecord
from agentos.runs.progress import PROGRESS_NAME
from agentos.runs.run_files import RunHistoryError, clean_text
from agentos.runs.summary import RunSummary, read_summary

MAX_LOG_BYTES = 1024 * 1024  # a longer log shows its last MiB
MAX_AUDIT_BYTES = 8 * 1024 * 1024  # a longer audit shows its last 8 MiB of events
MAX_RUN_AUDIT_BYTES = 64 * 1024 * 1024  # all of a run's audits together, read for one page
MAX_EVENTS = 5000  # per item; the last ones
MAX_LOG_LINES = 5000
MAX_LINE = 2000
MAX_LINEAGE_BYTES = 256 * 1024  # per draft or verdict
MAX_LINEAGE_FILES = 200
MAX_FIELDS = 40  # per audit event
MAX_ENTRIES = 5000  # files of a run folder looked at
TERMINAL = {
    "workflow_complete": None,  # the status is in the event
    "workflow_failed": "failed",
    "workflow_interrupted": "interrupted",
}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}", re.ASCII)
LINEAGE_FILE = re.compile(r"([0-9]{3})-(issue|brief|draft|verdict|final)\.md", re.ASCII)


class Refused(Exception):
    """A file not read: `reason` says why, for the page."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def read_tail(path: Path, limit: int, tail: bool = True) -> tuple[bytes, bool]:
    """The last `limit` bytes of a regular file (True: there was more before them), or with
    `tail=False` its first `limit` bytes (True: there was more after them).

    No symlink followed, no FIFO waited on: a run folder is untrusted."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused("a symlink; refused") from None
        raise Refused(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused("not a regular file; refused")
        start = max(0, info.st_size - limit) if tail else 0
        os.lseek(fd, start, os.SEEK_SET)
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), (start > 0) if tail else info.st_size > limit
    except OSError as exc:
        raise Refused(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def clean_lines(text: str, max_lines: int = MAX_LOG_LINES, last: bool = True) -> list[str]:
    """Lines safe to show: each cleaned and bounded; the last `max_lines` (or the first)."""
    lines = text.splitlines()
    return [clean_text(line, MAX_LINE) for line in (lines[-max_lines:] if last else lines[:max_lines])]


def epoch_of(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _scalar(value: object) -> Any:
    """An audit value as the page may show it: JSON scalars kept, text cleaned, lists bounded."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if value == value and abs(value) < 1e15 else None
    if isinstance(value, str):
        return clean_text(value, MAX_LINE)
    if isinstance(value, list):
        return [clean_text(v, MAX_LINE) if isinstance(v, str) else _scalar(v) for v in value[:50]]
    return clean_text(value, MAX_LINE)


def parse_audit(text: str) -> list[AuditEvent]:
    """Audit lines as events; a torn or corrupt line, or a line that is not an object, is skipped."""
    events: list[AuditEvent] = []
    for line in text.splitlines()[-MAX_EVENTS:]:
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
            continue
        epoch = raw.get("epoch_s")
        if isinstance(epoch, bool) or not isinstance(epoch, int | float) or not 0 < epoch < 1e11:
            epoch = epoch_of(raw.get("ts") if isinstance(raw.get("ts"), str) else None)
        fields = {
            clean_text(key, 40): _scalar(value)
            for key, value in list(raw.items())[:MAX_FIELDS]
            if key not in ("event", "ts", "epoch_s")
        }
        events.append(
            AuditEvent(float(epoch) if epoch is not None else None, clean_text(raw["event"], 40), fields)
        )
    return events


def _natural(item: str) -> tuple[str, int, str]:
    """LLD-9 before LLD-12: the prefix, then the number, then the rest."""
    prefix, _, key = item.partition("-")
    return (prefix, int(key), "") if key.isdigit() and len(key) < 12 else (prefix, -1, key)


def _key_of(item: str) -> str:
    return item.split("-", 1)[1] if "-" in item else item


def _spend_of_record(record: ItemRecord) -> Spend:
    usage = record.usage
    if usage is None:
        return Spend()
    return Spend(usage.input_tokens, usage.output_tokens, usage.cost, usage.estimated)


def _spend_of_events(events: Sequence[AuditEvent]) -> Spend:
    """Tokens so far of an item still going: the sum of its answered calls."""
    ins = outs = 0
    estimated = False
    for event in events:
        if event.event == "llm_call":
            ins += int(event.number("input_tokens") or 0)
            outs += int(event.number("output_tokens") or 0)
            estimated = estimated or event.fields.get("tokens_estimated") is True
    return Spend(ins, outs, None, estimated)


def total_spend(spends: Iterable[Spend]) -> Spend:
    spends = list(spends)
    ins = [s.input_tokens for s in spends if s.input_tokens is not None]
    outs = [s.output_tokens for s in spends if s.output_tokens is not None]
    costs = [s.cost for s in spends if s.cost is not None]
    return Spend(
        sum(ins) if ins else None,
        sum(outs) if outs else None,
        round(sum(costs), 6) if costs else None,
        any(s.estimated for s in spends),
    )


def _key_state(activity: KeyActivity, now: float) -> tuple[str, float | None]:
    marks = activity.marks
    if marks.rejected is not None:
        return f"rejected: {clean_text(marks.rejected, 120)}", None
    if marks.quota_until > now:
        return "out of quota", marks.quota_until
    if marks.cooldown_until > now:
        return "cooling", marks.cooldown_until
    return "usable", None


class LocalRunRecords:
    """`RunRecords` over `$AGENTOS_HOME`'s run folders and key ledger, read at each call."""

    def __init__(self, clock: Any = time.time, root: Path | None = None) -> None:
        self._clock = clock
        self._host = clean_text(socket.gethostname(), 80)
        self._root = root  # another folder of run folders (`show --timeline PATH`); default: the home's

    # -- runs --------------------------------------------------------------------------

    def runs(self, limit: int = 200) -> list[RunRow]:
        return [self._row(run_dir)[0] for run_dir in list(reversed(run_folders()))[:limit]]

    def _folder(self, name: str) -> Path:
        if not RUN_NAME.fullmatch(name):
            raise RecordNotFound(f"run {clean_text(name, 60)!r} (a run folder is named YYYYMMDD-HHMMSS)")
        path = (self._root or runs_root()) / name
        try:
            real = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:
            real = False
        if not real:
            raise RecordNotFound(f"run {name!r}")
        return path

    def _row(self, run_dir: Path) -> tuple[RunRow, RunSummary | None]:
        """The run's row, and its summary when it has a usable one."""
        try:
            summary: RunSummary | None = read_summary(run_dir)
        except RunHistoryError:
            summary = None
        if summary is not None:
            return (
                RunRow(
                    name=run_dir.name,
                    state=RunState.FINISHED.value,
                    started=summary.started or run_dir.name,
                    workspace=summary.workspace or "-",
                    workflow=summary.workflow,
                    host=self._host,
                    duration_s=summary.duration_s,
                    totals=dict(summary.totals),
                    spend=total_spend(_spend_of_record(i) for i in summary.items),
                    exit_code=summary.exit_code,
                ),
                summary,
            )
        info = run_info(run_dir)
        started = epoch_of(info.when) if info.state is RunState.RUNNING else None
        return (
            RunRow(
                name=run_dir.name,
                state=info.state.value,
                started=info.when,
                workspace=info.workspace,
                workflow=info.workflow,
                host=self._host,
                duration_s=round(self._clock() - started, 1) if started is not None else None,
                totals=dict(info.totals),
                problem=info.problem,
            ),
            None,
        )

    # -- one run -----------------------------------------------------------------------

    def run(self, name: str) -> RunDetail:
        run_dir = self._folder(name)
        now = self._clock()
        row, summary = self._row(run_dir)
        events, notes = self._all_events(run_dir)
        if summary is not None:
            items = [self._item_of_record(r, events.get(r.item, []), row.workspace) for r in summary.items]
            started, ended = epoch_of(summary.started), epoch_of(summary.ended)
        else:
            items = [self._item_of_events(i, evs, row, row.workspace) for i, evs in events.items()]
            items.sort(key=lambda i: (i.started if i.started is not None else float("inf"), _natural(i.item)))
            row = dataclasses.replace(row, spend=total_spend(i.spend for i in items))  # so far
            started, ended = epoch_of(row.started), None
        keys, problem, pool = self._keys(now, events, started, ended or now)
        return RunDetail(row, items, events, keys, problem, now, started, ended, notes, pool)

    def _audit_files(self, run_dir: Path) -> list[Path]:
        try:
            with os.scandir(run_dir) as entries:
                names = [e.name for _, e in zip(range(MAX_ENTRIES), entries, strict=False)]
        except OSError:
            return []
        return [
            run_dir / n for n in sorted(names) if n.startswith("workflow-audit-") and n.endswith(".jsonl")
        ]

    def _all_events(self, run_dir: Path) -> tuple[dict[str, list[AuditEvent]], list[str]]:
        """Each item's audit events, by the item id the events carry; and what was not read.
        A page reads at most MAX_RUN_AUDIT_BYTES of audits in all: a folder of thousands of
        huge audits costs a bounded read, not minutes."""
        found: dict[str, list[AuditEvent]] = {}
        left = MAX_RUN_AUDIT_BYTES
        skipped = refused = 0
        for path in self._audit_files(run_dir):
            if left <= 0:
                skipped += 1
                continue
            try:
                events, size = self._events(path, min(MAX_AUDIT_BYTES, left))
            except (Refused, FileNotFoundError):
                refused += 1
                continue
            left -= size
            ids = [i for e in events if (i := e.text("item")) and SAFE_NAME.fullmatch(i)]
            if ids:
                found.setdefault(ids[0], []).extend(events)
        notes = []
        if skipped:
            notes.append(
                f"{skipped} audit file(s) not read: over {MAX_RUN_AUDIT_BYTES // 2**20} MiB of audits in all"
            )
        if refused:
            notes.append(f"{refused} audit file(s) refused (not regular files, or unreadable)")
        return found, notes

    def _events(self, path: Path, limit: int = MAX_AUDIT_BYTES) -> tuple[list[AuditEvent], int]:
        """The events of one audit file (its last `limit` bytes), and how many bytes were read."""
        raw, truncated = read_tail(path, limit)
        text = raw.decode("utf-8", "replace")
        if truncated:
            text = text.partition("\n")[2]  # the first line was cut
        return parse_audit(text), len(raw)

    def _item_of_record(self, record: ItemRecord, events: Sequence[AuditEvent], workspace: str) -> ItemRow:
        return ItemRow(
            item=record.item,
            status=record.status,
            title=self._title(workspace, record.item),
            rounds=record.rounds,
            started=epoch_of(record.started),
            ended=epoch_of(record.ended),
            duration_s=record.duration_s,
            spend=_spend_of_record(record),
            error=record.error,
        )

    def _item_of_events(
        self, item: str, events: Sequence[AuditEvent], run: RunRow, workspace: str
    ) -> ItemRow:
        """An item of a run without a summary (still going, or killed): what its audit says."""
        times = [e.epoch for e in events if e.epoch is not None]
        status = "running" if run.state == RunState.RUNNING.value else "stopped"
        ended = None
        rounds = 0
        for event in events:
            if event.event == "verdict":
                rounds = max(rounds, int(event.number("round") or 0))
            if event.event in TERMINAL:
                status = TERMINAL[event.event] or event.text("status") or "done"
                ended = event.epoch
            elif event.event in ("workflow_start", "workflow_resume"):
                status, ended = ("running" if run.state == RunState.RUNNING.value else "stopped"), None
            elif event.event == "workflow_rate_limited":
                status = "paused for a key"
        started = times[0] if times else None
        end = ended if ended is not None else (times[-1] if times and status != "running" else None)
        duration = (end if end is not None else self._clock()) - started if started is not None else None
        return ItemRow(
            item=item,
            status=clean_text(status, 40),
            title=self._title(workspace, item),
            rounds=rounds,
            started=started,
            ended=end,
            duration_s=round(duration, 3) if duration is not None else None,
            spend=_spend_of_events(events),
        )

    def _lineage_dir(self, workspace: str, item: str) -> Path | None:
        if workspace in ("", "-") or not SAFE_NAME.fullmatch(item) or not os.path.isabs(workspace):
            return None
        return Path(workspace) / "docs" / "lineage" / "active" / item

    def _title(self, workspace: str, item: str) -> str:
        """The item's title: the first heading of the issue or brief its lineage starts with."""
        folder = self._lineage_dir(workspace, item)
        if folder is None:
            return ""
        for kind in ("issue", "brief"):
            try:
                raw, _ = read_tail(folder / f"001-{kind}.md", 4096)  # small: the whole file or its end
            except (Refused, FileNotFoundError, NotADirectoryError):
                continue
            for line in raw.decode("utf-8", "replace").splitlines():
                if line.startswith("# "):
                    return clean_text(line[2:].strip(), 200)
        return ""

    def keys_during(
        self, now: float, since: float | None, until: float
    ) -> tuple[list[KeyRow], str | None, list[PoolCall]]:
        """The key ledger now, and every run's calls between `since` and `until`: for a run
        whose audits are elsewhere (another machine's)."""
        return self._keys(now, {}, since, until)

    def _keys(
        self, now: float, events: dict[str, list[AuditEvent]], since: float | None, until: float
    ) -> tuple[list[KeyRow], str | None, list[PoolCall]]:
        """The key ledger now (the keys this run used; all of them if it used none), and every
        run's calls on those keys during this run when the ledger keeps them (`history`)."""
        ledger = None
        pool: list[PoolCall] = []
        try:
            ledger = open_key_ledger("agentos dashboard", readonly=True)
            found = ledger.activity(now)
            history = getattr(ledger, "history", None)  # the local ledger's; a backend's may not have it
            if history is not None and since is not None:
                for call in history(since - 1.0, until + 1.0):
                    latency = call.latency_s if call.latency_s is not None else 0.0
                    pool.append(
                        PoolCall(
                            clean_text(call.key.name, 100),
                            call.granted_at,
                            call.granted_at + max(0.0, latency),
                            clean_text(call.outcome or "in flight", 20),
                            clean_text(call.run, 100),
                        )
                    )
        except FileNotFoundError:
            return [], f"no key ledger yet ({clean_text(str(key_ledger_file()), 300)})", []
        except (sqlite3.DatabaseError, AgentosError, OSError) as exc:
            return [], f"the key ledger cannot be read: {clean_text(str(exc), 200)}", []
        finally:
            if ledger is not None:
                with contextlib.suppress(Exception):
                    ledger.close()
        used = {k for evs in events.values() for e in evs if (k := e.text("key_name"))}
        rows = []
        for a in found:
            state, cooling_until = _key_state(a, now)
            rows.append(
                KeyRow(
                    name=clean_text(a.key.name, 100),
                    provider=clean_text(a.key.provider, 40),
                    state=state,
                    cooling_until=cooling_until,
                    calls_last_hour=a.calls_last_hour,
                    refused_last_hour=a.refused_last_hour,
                )
            )
        used |= {c.key for c in pool}
        mine = [r for r in rows if r.name in used]
        return (mine or rows), None, [c for c in pool if c.key in used]

    # -- one item ----------------------------------------------------------------------

    def item(self, run: str, item: str) -> ItemDetail:
        """One item, reading only its own files (not the whole run's audits)."""
        if not SAFE_NAME.fullmatch(item):
            raise RecordNotFound(f"item {clean_text(item, 80)!r} of run {run!r}")
        run_dir = self._folder(run)
        run_row, summary = self._row(run_dir)
        events: list[AuditEvent] = []
        events_problem = None
        try:
            events, _ = self._events(run_dir / f"workflow-audit-{_key_of(item)}.jsonl")
            events = [e for e in events if e.text("item") in (None, item)]
        except FileNotFoundError:
            events_problem = "no audit events"
        except Refused as exc:
            events_problem = f"audit not shown: {exc.reason}"
        record = next((r for r in summary.items if r.item == item), None) if summary is not None else None
        if record is not None:
            row = self._item_of_record(record, events, run_row.workspace)
        elif summary is None and events:
            row = self._item_of_events(item, events, run_row, run_row.workspace)
        else:
            raise RecordNotFound(f"item {item!r} of run {run!r}")
        log_lines: list[str] = []
        log_problem = None
        truncated = False
        try:
            raw, truncated = read_tail(run_dir / f"{item}.log", MAX_LOG_BYTES)
            text = raw.decode("utf-8", "replace")
            if truncated:
                text = text.partition("\n")[2]
            log_lines = clean_lines(text)
        except FileNotFoundError:
            log_problem = "no log: the item never started in this run"
        except Refused as exc:
            log_problem = f"log not shown: {exc.reason}"
        rounds, item_text, lineage_problem = self._rounds(run_row.workspace, item)
        return ItemDetail(
            run=run_row,
            item=row,
            log_lines=log_lines,
            log_problem=log_problem,
            log_truncated=truncated,
            events=events,
            events_problem=events_problem,
            rounds=rounds,
            lineage_problem=lineage_problem,
            item_text=item_text,
        )

    def _rounds(self, workspace: str, item: str) -> tuple[list[Round], str | None, str | None]:
        """Each round's draft and verdict from the item's lineage folder in its workspace."""
        folder = self._lineage_dir(workspace, item)
        if folder is None:
            return [], None, "no workspace recorded for this run"
        try:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                return [], None, "the lineage folder is not a folder; refused"
            with os.scandir(folder) as entries:
                names = sorted(
                    e.name
                    for _, e in zip(range(MAX_ENTRIES), entries, strict=False)
                    if LINEAGE_FILE.fullmatch(e.name)
                )[:MAX_LINEAGE_FILES]
        except FileNotFoundError:
            return [], None, "no lineage in the workspace (moved, archived or never written)"
        except OSError as exc:
            return [], None, f"the lineage cannot be read ({clean_text(exc.strerror)})"
        rounds: list[Round] = []
        item_text = None
        draft: str | None = None
        for name in names:
            match = LINEAGE_FILE.fullmatch(name)
            assert match is not None
            try:
                raw, cut = read_tail(folder / name, MAX_LINEAGE_BYTES, tail=False)
                text = "\n".join(clean_lines(raw.decode("utf-8", "replace"), 10_000, last=False))
                if cut:
                    text += "\n[... the rest is not shown: the file is larger than 256 KiB ...]"
            except (Refused, FileNotFoundError) as exc:
                text = f"[not shown: {exc.reason if isinstance(exc, Refused) else 'gone'}]"
            kind = match.group(2)
            if kind in ("issue", "brief"):
                item_text = text
            elif kind == "draft":
                if draft is not None:
                    rounds.append(Round(len(rounds) + 1, draft, None))
                draft = text
            elif kind == "verdict":
                rounds.append(Round(len(rounds) + 1, draft, text))
                draft = None
        if draft is not None:
            rounds.append(Round(len(rounds) + 1, draft, None))
        return rounds, item_text, None

    # -- changes -----------------------------------------------------------------------

    def stamp(self, run: str | None = None) -> str:
        digest = hashlib.sha256()
        if run is None:
            for run_dir in list(reversed(run_folders()))[:200]:
                digest.update(run_dir.name.encode())
                for name in ("summary.json", PROGRESS_NAME):
                    digest.update(_stat_key(run_dir / name))
            return digest.hexdigest()[:16]
        try:
            run_dir = self._folder(run)
        except RecordNotFound:
            return "gone"
        try:
            with os.scandir(run_dir) as entries:
                for _, entry in zip(range(MAX_ENTRIES), entries, strict=False):
                    digest.update(entry.name.encode("utf-8", "surrogateescape"))
                    digest.update(_stat_key(Path(entry.path)))
        except OSError:
            return "unreadable"
        for path in (key_ledger_file(), Path(f"{key_ledger_file()}-wal")):
            digest.update(_stat_key(path))
        return digest.hexdigest()[:16]


def _stat_key(path: Path) -> bytes:
    try:
        info = os.lstat(path)
    except OSError:
        return b"-"
    return f"{info.st_size}:{info.st_mtime_ns}".encode()
