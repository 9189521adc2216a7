"""The team's runs for the dashboard: every machine's run records in the backend (issue 23),
beside this machine's run folders.

A run of this machine is shown from its folder, where its logs, audits and drafts are. A
run of another machine is shown from the backend: its row, and its items from their events
(started, then their outcome and review rounds); its logs and drafts stay on the machine
that ran it, and the pages say so (`agentos pull ITEM` writes an item's output here).

Live without polling the database: every record the backend takes is followed by a
`NOTIFY agentos_runs`, and one listening session turns the notifications into the stamp.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentos.backend.postgres.connection import connect
from agentos.backend.postgres.run_records import RUNS_CHANNEL, ItemEvent, RunRecords, TeamRun
from agentos.dashboard.local_records import LocalRunRecords
from agentos.dashboard.records import AuditEvent, ItemDetail, ItemRow, RecordNotFound, RunDetail, RunRow
from agentos.runs.history import RUN_NAME
from agentos.runs.run_files import clean_text

# A team run's id: its folder's name, its coordinator's pid and its host (`team_run_id`).
TEAM_RUN = re.compile(r"(\d{8}-\d{6}(?:-\d{1,6})?)-(\d{1,10})@([A-Za-z0-9._-]{1,100})")
RUNNING = "running"  # the item event a coordinator records when an item starts


class TeamRunRecords:
    """`RunRecords` over this machine's run folders and the team backend's run records."""

    def __init__(
        self, url: str, local: LocalRunRecords | None = None, clock: Callable[[], float] = time.time
    ):
        self._url = url
        self._clock = clock
        self._local = local or LocalRunRecords(clock)
        self._host = socket.gethostname()[:100]
        self._records = RunRecords(url, readonly=True)
        self._lock = threading.Lock()  # one session, shared by the server's threads
        self._changes = 0
        self._listening = False
        self._listener: Any = None
        threading.Thread(target=self._listen, name="agentos-dashboard-listen", daemon=True).start()

    def check(self) -> None:
        """Reach the backend now: BackendUnavailable (exit 2, naming the host) before serving."""
        with self._lock:
            self._records.open()

    # -- the four methods --------------------------------------------------------------
    def runs(self, limit: int = 200) -> list[RunRow]:
        local = self._local.runs(limit)
        mine = {r.name for r in local}
        with self._lock:
            team = self._records.runs(limit) if self._records.has_records() else []
        rows = list(local)
        for run in team:
            found = TEAM_RUN.fullmatch(run.run)
            if found is not None and found.group(3) == self._host and found.group(1) in mine:
                continue  # this machine's own run: its folder shows more
            rows.append(self._row(run))
        rows.sort(key=lambda r: r.started, reverse=True)
        return rows[:limit]

    def run(self, name: str) -> RunDetail:
        if RUN_NAME.fullmatch(name):
            return self._local.run(name)
        run, events = self._find(name)
        row = self._row(run)
        now = self._clock()
        items = _items(events, row.state == "running", now)
        ended = run.ended if run.ended is not None else (None if row.state == "running" else now)
        keys, problem, pool = self._local.keys_during(now, run.started, ended or now)
        return RunDetail(
            row,
            items,
            {i.item: _audit(events, i.item) for i in items},
            keys,
            problem,
            now,
            run.started,
            ended,
            (_elsewhere(run),),
            pool,
        )

    def item(self, run: str, item: str) -> ItemDetail:
        if RUN_NAME.fullmatch(run):
            return self._local.item(run, item)
        found, events = self._find(run)
        row = self._row(found)
        rows = [i for i in _items(events, row.state == "running", self._clock()) if i.item == item]
        if not rows:
            raise RecordNotFound(f"item {clean_text(item, 80)!r} of run {clean_text(run, 120)!r}")
        host = clean_text(found.host, 100)
        return ItemDetail(
            row,
            rows[0],
            log_problem=f"its log is on {host}, the machine that ran it",
            events=_audit(events, item),
            lineage_problem=(
                f"its drafts and verdicts are on {host}; `agentos pull {clean_text(item, 80)}` writes "
                "its output into this workspace"
            ),
        )

    def stamp(self, run: str | None = None) -> str:
        """This machine's folders' stamp, and how many records the backend has announced. If the
        listening session is gone (the backend restarted), the newest event's id instead."""
        local = self._local.stamp(run) if run is None or RUN_NAME.fullmatch(run) else ""
        if self._listening:
            return f"{local}|{self._changes}"
        with self._lock, contextlib.suppress(Exception):
            return f"{local}|{self._records.newest()}"
        return f"{local}|?"

    def close(self) -> None:
        self._listening = False
        with contextlib.suppress(Exception):
            if self._listener is not None:
                self._listener.close()
        with self._lock:
            self._records.close()

    # -- internals ---------------------------------------------------------------------
    def _find(self, name: str) -> tuple[TeamRun, list[ItemEvent]]:
        if not TEAM_RUN.fullmatch(name):
            raise RecordNotFound(f"run {clean_text(name, 120)!r}")
        with self._lock:
            if not self._records.has_records():
                raise RecordNotFound(f"run {clean_text(name, 120)!r}")
            run = next((r for r in self._records.runs(10_000) if r.run == name), None)
            if run is None:
                raise RecordNotFound(f"run {clean_text(name, 120)!r}")
            return run, self._records.events(run.run)

    def _row(self, run: TeamRun) -> RunRow:
        state = "running" if run.going else ("finished" if run.ended is not None else "stopped")
        end = run.ended if run.ended is not None else (self._clock() if run.going else None)
        return RunRow(
            name=clean_text(run.run, 200),
            state=state,
            started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started)),
            workspace=clean_text(run.workspace, 300) or "-",
            workflow=clean_text(run.workflow, 40),
            host=f"{clean_text(run.username, 60)}@{clean_text(run.host, 100)}",
            duration_s=round(end - run.started, 1) if end is not None else None,
            totals=dict(run.totals),
            exit_code=run.exit_code,
        )

    def _listen(self) -> None:
        """One session that LISTENs: each notification moves the stamp. It ends with the
        dashboard, or when the backend goes away (the stamp then reads the newest event)."""
        try:
            conn = connect(self._url)
            conn.autocommit = True
            conn.execute(f"LISTEN {RUNS_CHANNEL}")
            self._listener = conn
            self._listening = True
            for _ in conn.notifies():
                self._changes += 1
        except Exception:
            pass
        finally:
            self._listening = False


def _items(events: Sequence[ItemEvent], going: bool, now: float) -> list[ItemRow]:
    """Each item once: from its first `running` event to its last outcome."""
    rows: dict[str, ItemRow] = {}
    for e in events:
        item = clean_text(e.item, 80)
        before = rows.get(item)
        started = before.started if before is not None and before.started is not None else e.at
        if e.status == RUNNING:
            rows[item] = ItemRow(item, RUNNING, started=started, ended=None, duration_s=None)
            continue
        rows[item] = ItemRow(
            item,
            clean_text(e.status, 20),
            rounds=e.rounds,
            started=started,
            ended=e.at,
            duration_s=round(e.at - started, 3),
            error=clean_text(e.error, 500) if e.error else None,
        )
    if not going:  # a run that ended (or died) has no item running any more
        rows = {
            k: (ItemRow(r.item, "stopped", started=r.started, ended=r.started) if r.status == RUNNING else r)
            for k, r in rows.items()
        }
    return sorted(rows.values(), key=lambda r: (r.started or now, r.item))


def _audit(events: Sequence[ItemEvent], item: str) -> list[AuditEvent]:
    return [
        AuditEvent(
            e.at, f"item_{clean_text(e.status, 20)}", {"host": clean_text(e.host, 100), "rounds": e.rounds}
        )
        for e in events
        if clean_text(e.item, 80) == item
    ]


def _elsewhere(run: TeamRun) -> str:
    return (
        f"Run on {clean_text(run.host, 100)} by {clean_text(run.username, 60)}, from the team backend: "
        "its logs, audits and drafts stay on that machine; items show their start, outcome and rounds."
    )
