"""`agentos`: past batch runs. `runs` lists them, `show` prints one's summary, `clean` prunes.

Reads only run folders (`$AGENTOS_HOME/logs/parallel/<timestamp>/`) and treats them as
untrusted input (see `agentos.runs.history`). Starts no workflow and imports no LangGraph.
"""

from __future__ import annotations

import agentos.cli.entry  # first: Ctrl+C handled from the first instant

# isort: split

import io
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from types import FrameType

import click

from agentos import __version__
from agentos.backend.key_ledger import KeyLedger, KeyMarks, KeyModel
from agentos.cli.guarded import guarded
from agentos.core import stop_signals
from agentos.core.durations import clock_time, parse_age
from agentos.core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    AgentosError,
    ConfigError,
    KeyLedgerRefused,
)
from agentos.core.paths import checkpoints_dir, key_ledger_file
from agentos.core.std_streams import Terminal
from agentos.keys.pools import open_key_ledger
from agentos.runs.clean import plan_clean, remove_run_folder
from agentos.runs.history import (
    RunInfo,
    RunState,
    find_item,
    find_run,
    item_view,
    run_folders,
    run_info,
    runs_root,
)
from agentos.runs.item_record import ItemRecord
from agentos.runs.run_files import RunHistoryError, clean_text

TOTAL_ORDER = ("approved", "needs_revision", "failed", "interrupted", "not_started")
_out = Terminal(None)  # set by `main`: `agentos show | head -1` ends the output, not the command


def echo(text: str) -> None:
    _out.write(text + "\n")


def _read_only() -> None:
    """`runs` and `show` change nothing: a Ctrl+C or SIGTERM ends them at once, with 130."""

    def leave(signum: int, frame: FrameType | None) -> None:
        os._exit(EXIT_INTERRUPTED)

    if stop_signals.requested():
        os._exit(EXIT_INTERRUPTED)
    if agentos.cli.entry.is_cli_process():
        for sig in stop_signals.STOP_SIGNALS:
            signal.signal(sig, leave)


@click.group(
    epilog=(
        "State lives in $AGENTOS_HOME (default ~/.agentos); run folders in logs/parallel/.\n\n"
        "\b\nExit codes: 0 done; 1 a summary could not be read or a folder removed;\n"
        "2 usage error; 130 interrupted (Ctrl+C or SIGTERM; clean stops between folders)."
    ),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", message="%(prog)s (agentos %(version)s)")
def main() -> None:
    """Past runs of lld-workflow and issue-workflow: list, show, clean; kept checkpoints; keys; dashboard.

    \b
    Examples:
      agentos runs
      agentos show                 # the latest run's summary table
      agentos show 20261122-101500
      agentos show 20261122-101500 LLD-3   # one item: log, verdicts, lineage
      agentos runs --json
      agentos clean --older-than 30d --dry-run
      agentos clean --keep 10      # all but the newest 10 runs
      agentos checkpoints          # kept checkpoints: whose, how old, why
      agentos checkpoints --prune --older-than 7d
      agentos keys                 # every key: state, budget, calls and 429s, runs using it
      agentos dashboard            # a local web page of the runs, live (needs the dashboard extra)
      agentos show --timeline 20261122-101500 -o timeline.html
    """
    global _out
    _out = Terminal(sys.stdout)
    click.get_current_context().call_on_close(_out.flush)  # a closed pipe: no error at exit


def _path(path: object) -> str:
    """A path as the user typed it or $AGENTOS_HOME holds it, safe to print."""
    return clean_text(str(path), 1000)


def _totals(totals: dict[str, int]) -> str:
    from agentos.runs.summary import LABELS

    parts = [f"{totals[k]} {LABELS.get(k, k)}" for k in TOTAL_ORDER if totals.get(k)]
    parts += [f"{v} {k}" for k, v in totals.items() if k not in (*TOTAL_ORDER, "total") and v]
    total = totals.get("total")
    return (f"{total}: " if total is not None else "") + (", ".join(parts) or "none")


def _progress(info: RunInfo) -> str:
    """A run without a summary: how far it got, and whether it is still going."""
    done = {k: v for k, v in info.totals.items() if k != "total"}
    total = info.totals.get("total")
    so_far = f"{sum(done.values())}/{total if total is not None else '?'} done"
    detail = _totals(done) if done else ""
    text = f"{so_far} ({detail})" if detail and detail != "none" else so_far
    if info.state is RunState.RUNNING:
        return f"running: {text}" + (f", pid {info.pid}" if info.pid else "")
    return f"{clean_text(info.problem)}: {text}"


REPO_HELP = "The workspace whose agentos.toml may name the team backend ([backend] url)."


def _team_url(repo: str | None) -> str | None:
    """The team backend: AGENTOS_BACKEND_URL, else `[backend] url` in the workspace's agentos.toml."""
    from agentos.backend.postgres.connection import backend_url
    from agentos.core.settings import load_settings

    configured = None
    if repo is not None:
        configured = load_settings(Path(repo).expanduser().resolve() / "agentos.toml").backend_url
    return backend_url(configured)


def _render(table: object) -> None:
    from rich.console import Console

    tty = _out.isatty()
    buffer = io.StringIO()
    Console(
        file=buffer, force_terminal=tty, width=None if tty else 1000, highlight=False, markup=False
    ).print(table)
    _out.write(buffer.getvalue())


def _when(at: float) -> str:
    from datetime import datetime

    try:
        return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return "?"


def team_runs(url: str, limit: int, as_json: bool) -> int:
    """Every machine's runs, from the team backend, with the host and user that ran each."""
    from rich import box
    from rich.table import Table

    from agentos.backend.postgres.run_records import RunRecords

    with RunRecords(url) as records:
        found = records.runs(limit)
    if as_json:
        echo(json.dumps([r.to_json() for r in found], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not found:
        echo("No runs yet in the team backend.")
        return EXIT_OK
    table = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    for column in ("When", "Host", "User", "Workspace", "Workflow", "Items", "Exit", "Run"):
        table.add_column(column, overflow="fold")
    for r in found:
        when = _when(r.started)
        state = r.to_json()["state"]
        items = _totals(r.totals) if r.totals else f"{state}: {r.items} item(s)"
        exit_code = "-" if r.exit_code is None else str(r.exit_code)
        row = (when, r.host, r.username, r.workspace, r.workflow, items, exit_code, r.run)
        table.add_row(*(clean_text(str(v), 300) for v in row))
    _render(table)
    return EXIT_OK


def team_show(url: str, name: str, as_json: bool) -> int:
    """One run of any machine, from the team backend: its row and its items' events."""
    from agentos.backend.postgres.run_records import RunRecords

    with RunRecords(url) as records:
        run = records.find(name)
        events = records.events(run.run) if run is not None else []
    if run is None:
        raise ConfigError(
            f"no run {clean_text(name, 200)!r} here or in the team backend (see `agentos runs`)"
        )
    if as_json:
        data = run.to_json()
        data["items"] = [e.__dict__ for e in events]
        echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    exit_code = "-" if run.exit_code is None else str(run.exit_code)
    echo(
        clean_text(
            f"Run {run.run}: {run.workflow} on {run.host} by {run.username}, started "
            f"{_when(run.started)}, exit code {exit_code} ({run.to_json()['state']})",
            1000,
        )
    )
    echo(clean_text(f"Workspace: {run.workspace}", 1000))
    ended = {e.item for e in events if e.status != "running"}
    for event in events:
        if event.status == "running" and event.item in ended:
            continue  # its start: the outcome below says more
        line = f"  {event.item}: {event.status}, {event.rounds} review round(s)"
        line += f", {event.output}" if event.output else ""
        line += f" ({event.error})" if event.error else ""
        echo(clean_text(line, 2000))
    return EXIT_OK


@main.command()
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Runs to list."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of runs, newest first.")
@click.option("--repo", metavar="PATH", help=REPO_HELP)
@guarded
def runs(limit: int, as_json: bool, repo: str | None) -> int:
    """Recent runs, newest first: when, workspace, workflow, totals, exit code, folder.
    A run still going is listed as running, with its progress so far. With a team backend
    (AGENTOS_BACKEND_URL, or --repo's agentos.toml): every machine's runs, with host and user."""
    _read_only()
    url = _team_url(repo)
    if url:
        return team_runs(url, limit, as_json)
    folders = run_folders()
    shown = [run_info(run_dir) for run_dir in list(reversed(folders))[:limit]]
    if as_json:
        echo(json.dumps([info.to_json() for info in shown], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not folders:
        echo(f"No runs yet in {clean_text(str(runs_root()), 1000)}.")
        return EXIT_OK
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    for column in ("When", "Workspace", "Workflow", "Items", "Exit", "Run folder"):
        table.add_column(column, overflow="fold")
    for info in shown:
        run_dir = info.path
        if info.state in (RunState.RUNNING, RunState.STOPPED):
            table.add_row(info.when, info.workspace, info.workflow, _progress(info), "-", _path(run_dir))
            continue
        if info.problem is not None:
            table.add_row(info.when, "-", "-", clean_text(info.problem), "-", _path(run_dir))
            continue
        exit_code = "-" if info.exit_code is None else str(info.exit_code)
        table.add_row(
            info.when, info.workspace, info.workflow, _totals(info.totals), exit_code, _path(run_dir)
        )
    tty = _out.isatty()
    width = None if tty else 1000  # pipes and CI: one run a line, for grep
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=tty, width=width, highlight=False, markup=False).print(table)
    _out.write(buffer.getvalue())
    if len(folders) > limit:
        echo(f"({len(folders) - limit} older run(s) not shown; use --limit)")
    return EXIT_OK


@main.command()
@click.argument("run", required=False)
@click.argument("item", required=False)
@click.option("--json", "as_json", is_flag=True, help="The run (or the item) as one JSON object.")
@click.option("--repo", metavar="PATH", help=REPO_HELP)
@click.option(
    "--timeline",
    is_flag=True,
    help="The run's timeline and key pool as one self-contained HTML file (no script); needs the dashboard extra.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="With --timeline: write it to this file."
)
@guarded
def show(
    run: str | None, item: str | None, as_json: bool, repo: str | None, timeline: bool, output: str | None
) -> int:
    """The summary table of RUN (a run folder name or path); the latest run when none is named.

    With ITEM (`LLD-3`, `3`, `ISSUE-widgets`): that item's record, its verdicts, its
    lineage folder and its full log. With --timeline: the run's timeline as HTML, to
    standard output or to `-o FILE` (a CI artifact). A run of another machine is shown from
    the team backend."""
    from agentos.runs import summary

    _read_only()
    if output is not None and not timeline:
        raise ConfigError("-o/--output goes with --timeline")
    try:
        run_dir = find_run(run)
    except ConfigError:
        url = _team_url(repo)
        if run is None or item is not None or timeline or not url:
            raise
        return team_show(url, run, as_json)
    if timeline:
        if item is not None or as_json:
            raise ConfigError("--timeline shows a whole run: no ITEM and no --json with it")
        return show_timeline(run_dir, output)
    try:
        run_summary = summary.read_summary(run_dir)
    except RunHistoryError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_FAILED
    info = run_info(run_dir)
    items = list(run_summary.items)
    if item is not None:
        return show_item(run_dir, info, items, item, as_json)
    duration = run_summary.duration_s
    if as_json:
        header = info.to_json()
        header.update(
            duration_s=duration,
            command=run_summary.command,
            stopped_early=run_summary.stopped_early,
            interrupted_by=run_summary.interrupted_by,
            items=[record.to_json() for record in items],
        )
        echo(json.dumps(header, indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    took = f", {duration:.1f}s" if duration is not None else ""
    exit_code = "-" if info.exit_code is None else str(info.exit_code)
    echo(f"Run {_path(run_dir.name)}: {info.workflow}, started {info.when}{took}, exit code {exit_code}")
    echo(f"Workspace: {info.workspace}")
    echo(f"Run folder: {_path(run_dir)}")
    for value, label in (
        (run_summary.stopped_early, "Stopped early"),
        (run_summary.interrupted_by, "Interrupted by"),
    ):
        if value:
            echo(f"{label}: {value}")
    echo(summary.summary_line(items))
    summary.render_table(items, _out, _out.isatty())  # typed records: any shape renders
    return EXIT_OK


def show_timeline(run_dir: Path, output: str | None) -> int:
    """`agentos show --timeline`: the dashboard's timeline of one run, as one HTML file."""
    try:
        from agentos.dashboard import render
        from agentos.dashboard.local_records import LocalRunRecords
    except ImportError as exc:
        raise ConfigError(
            f"--timeline needs the dashboard extra ({exc.name} is missing): pip install 'agentos[dashboard]'"
        ) from None
    detail = LocalRunRecords(root=run_dir.parent).run(run_dir.name)
    page = render.timeline_file(detail)
    if output is None:
        _out.write(page)
        return EXIT_OK
    from agentos.core.atomic_file import write_text_atomic

    write_text_atomic(Path(output), page)
    click.echo(f"Timeline of run {_path(run_dir.name)} written to {_path(output)}", err=True)
    return EXIT_OK


@main.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port."
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="The address to serve on (loopback by default)."
)
@click.option("--no-browser", is_flag=True, help="Print the URL; do not open a browser.")
@click.option("--repo", metavar="PATH", help=REPO_HELP)
@guarded
def dashboard(port: int, host: str, no_browser: bool, repo: str | None) -> int:
    """A local web page of the runs: items, a timeline per run, the key pool, each item's
    log, audit and rounds; live while runs are going. Needs the dashboard extra.

    With a team backend (AGENTOS_BACKEND_URL, or `[backend] url` in --repo's agentos.toml) it
    also lists every machine's runs. It serves on 127.0.0.1 behind a random token: open the
    URL it prints (token included). Ctrl+C stops it."""
    try:
        from agentos.dashboard.server import serve
    except ImportError as exc:
        raise ConfigError(
            f"agentos dashboard needs the dashboard extra ({exc.name} is missing): pip install 'agentos[dashboard]'"
        ) from None
    if stop_signals.requested():
        return EXIT_INTERRUPTED

    def say(text: str) -> None:
        echo(text)
        _out.flush()

    records = None
    url = _team_url(repo)
    if url:
        from agentos.dashboard.team_records import TeamRunRecords

        records = TeamRunRecords(url)
        records.check()  # an unreachable backend: exit 2, one line naming its host
    try:
        serve(host, port, browse=not no_browser, say=say, stop=stop_signals.requested, records=records)
    finally:
        if records is not None:
            records.close()
    return EXIT_INTERRUPTED if stop_signals.requested() else EXIT_OK


def show_item(run_dir: Path, info: RunInfo, items: list[ItemRecord], wanted: str, as_json: bool) -> int:
    """One item of a run: its record, verdicts (from its audit), lineage folder and log.

    Files are found by the item's id in the run folder, never by a path in the summary."""
    entry = find_item(items, wanted)
    if entry is None:
        names = ", ".join(i.item for i in items[:20]) or "none"
        raise ConfigError(f"no item {clean_text(wanted, 80)!r} in run {run_dir.name}; its items: {names}")
    view = item_view(run_dir, info, entry)
    if as_json:
        echo(json.dumps(view.to_json(), indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    echo(f"Run {_path(run_dir.name)}: {info.workflow}, workspace {info.workspace}")
    fields = [f"{entry.item}: {entry.status}", f"{entry.rounds} review round(s)"]
    fields += ["?" if entry.duration_s is None else f"{entry.duration_s:.1f}s"]
    joblog = {"started": entry.started, "ended": entry.ended, "attempts": entry.attempts, "pid": entry.pid}
    fields += [f"{key} {value}" for key, value in joblog.items() if value is not None]
    echo(", ".join(fields))
    if entry.error:
        echo(f"Error: {entry.error}")
    if entry.output:
        echo(f"Output: {entry.output}")
    if entry.checkpoint:
        echo(f"Checkpoint kept: {entry.checkpoint}")
    echo(f"Lineage folder: {_path(view.lineage) if view.lineage else '-'}")
    echo(f"Verdicts ({len(view.verdicts)}):" if view.verdicts else "Verdicts: none recorded")
    for verdict in view.verdicts:
        echo(f"  round {verdict.round}: {verdict.verdict} ({len(verdict.blocking)} blocking)")
        for point in verdict.blocking:
            echo(f"    - {point}")
    echo(f"Log: {_path(view.log_path)}")
    if view.log_problem is not None:
        echo(f"  ({view.log_problem})")
    else:
        for line in view.log_lines:
            echo(f"  {line}")
    return EXIT_OK


@main.command()
@click.option("--older-than", "older_than", metavar="AGE", help="e.g. 30d, 12h, 2w.")
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    metavar="N",
    help="Keep the newest N run folders, whatever their age.",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@guarded
def clean(older_than: str | None, keep: int | None, dry_run: bool) -> int:
    """Remove run folders older than AGE, or all but the newest N (both: older than AGE and
    not among the newest N). Never a checkpoint DB, and never the folder that explains a
    checkpoint still kept for a pending item."""
    if older_than is None and keep is None:
        raise ConfigError("say what to remove: --older-than AGE, --keep N, or both")
    plan = plan_clean(parse_age(older_than) if older_than is not None else None, keep=keep or 0)
    which = " and ".join(
        ([f"older than {older_than}"] if older_than is not None else [])
        + ([f"not among the newest {keep}"] if keep is not None else [])
    )
    verb = "Would remove" if dry_run else "Removed"
    failed: list[str] = []
    removed = gone = 0  # gone: removed meanwhile by another `clean`
    for run_dir in plan.remove:
        if stop_signals.requested():  # between folders: a signal never leaves one half-removed
            echo(f"Stopped by a signal after {removed + gone} of {len(plan.remove)}; run it again to go on.")
            break
        if not dry_run:
            try:
                if not remove_run_folder(run_dir):
                    gone += 1
                    continue
            except RunHistoryError as exc:
                failed.append(str(exc))
                continue
        removed += 1
        echo(f"{verb} {_path(run_dir)}")
    for run_dir, why in plan.keep:
        echo(f"Kept {_path(run_dir)}: {why}")
    echo(
        f"{verb} {removed} run folder(s) {which}; kept {len(plan.keep)} that are running, explain "
        f"kept checkpoints or hold a mount. {plan.checkpoints} checkpoint DB(s) kept for resume are never removed here "
        "(`agentos checkpoints --prune` or --fresh on a run discards them)."
    )
    if gone:
        echo(f"{gone} more were removed meanwhile by another clean.")
    for message in failed:
        click.echo(f"Error: {message}", err=True)
    return EXIT_FAILED if failed else EXIT_OK


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _team_kept(url: str, cutoff: float | None) -> None:
    from agentos.backend.postgres.run_records import RunRecords

    with RunRecords(url, readonly=True) as records:
        kept = records.kept_threads()
    now = time.time()
    kept = [k for k in kept if cutoff is None or now - k.created >= cutoff]
    if not kept:
        echo("No checkpoints kept in the team backend.")
        return
    for k in kept:
        echo(
            clean_text(
                f"{_age(now - k.created):>4} old  {k.workflow} {k.item}, workspace {k.workspace}: "
                f"kept in the team backend (started on {k.host})",
                1000,
            )
        )
    echo(f"{len(kept)} checkpoint(s) kept in the team backend: the next run on any machine resumes them.")


@main.command()
@click.option("--prune", is_flag=True, help="Delete the kept checkpoints listed (only agentos's own).")
@click.option("--older-than", "older_than", metavar="AGE", help="Only those older than AGE: 7d, 12h, 2w.")
@click.option("--dry-run", is_flag=True, help="With --prune: say what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="The list as one JSON array.")
@click.option("--repo", metavar="PATH", help=REPO_HELP)
@guarded
def checkpoints(prune: bool, older_than: str | None, dry_run: bool, as_json: bool, repo: str | None) -> int:
    """Checkpoint DBs kept for resume: workspace, item, age, and why each was kept.

    A DB is kept after a failure or an interruption, so the same command resumes the item.
    --prune deletes them (a pruned item starts over on its next run); only DBs that carry
    agentos's mark, and never one whose item a run is working on now. With a team backend,
    the checkpoints kept there are listed too (every machine's); `--fresh` discards one."""
    from agentos.runs.kept_checkpoints import list_kept
    from agentos.runs.kept_checkpoints import prune as prune_one

    if not prune:
        _read_only()
        url = _team_url(repo)
        if url and not as_json:
            _team_kept(url, parse_age(older_than) if older_than is not None else None)
    cutoff = parse_age(older_than) if older_than is not None else None
    found = [e for e in list_kept() if cutoff is None or e.age_s >= cutoff]
    if as_json and not prune:
        echo(json.dumps([e.to_json() for e in found], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not prune:
        if not found:
            which = f" older than {older_than}" if older_than else ""
            echo(f"No kept checkpoints{which} in {_path(checkpoints_dir())}.")
            return EXIT_OK
        for e in found:
            whose = (
                f"{e.workflow} {e.item}, workspace {e.workspace}" if e.problem is None else "not agentos's"
            )
            echo(f"{_age(e.age_s):>4} old  {whose}: {e.problem or e.why}")
            run = f" (run {e.run})" if e.run else ""
            busy = f"; in use by a run (pid {e.in_use_by or '?'})" if e.in_use_by is not None else ""
            echo(f"      {_path(e.path)}{run}{busy}")
        echo(
            f"{len(found)} kept checkpoint(s). `agentos checkpoints --prune [--older-than AGE]` deletes them."
        )
        return EXIT_OK
    verb = "Would delete" if dry_run else "Deleted"
    done, failed = 0, []
    for e in found:
        if stop_signals.requested():
            echo(f"Stopped by a signal after {done}; run it again to go on.")
            break
        if e.problem is not None:
            echo(f"Left alone {_path(e.path)}: {e.problem}")
            continue
        if e.in_use_by is not None:
            echo(f"Left alone {_path(e.path)}: a run (pid {e.in_use_by or '?'}) is working on {e.item}")
            continue
        if not dry_run:
            try:
                prune_one(e)
            except AgentosError as exc:
                failed.append(f"{_path(e.path)}: {clean_text(str(exc))}")
                continue
        done += 1
        echo(f"{verb} {_path(e.path)} ({e.workflow} {e.item}, workspace {e.workspace}; kept as {e.why})")
    echo(f"{verb} {done} kept checkpoint(s); those items start over on their next run.")
    for message in failed:
        click.echo(f"Error: {message}", err=True)
    return EXIT_FAILED if failed else EXIT_OK


def _key_state(marks: KeyMarks, now: float) -> str:
    if marks.rejected is not None:
        return f"rejected at {clock_time(marks.rejected_at)}: {clean_text(marks.rejected, 120)}"
    if marks.quota_until > now:
        return f"out of quota until {clock_time(marks.quota_until)}"
    if marks.cooldown_until > now:
        return f"cooling until {clock_time(marks.cooldown_until)}"
    return "usable"


def _key_budget(model: KeyModel | None) -> str:
    if model is None or model.limit is None or model.window_s is None:
        return "not known yet"
    strict = ", strict after a surprise 429" if model.strict else ""
    return f"{model.limit} req/{model.window_s:g}s (from {clean_text(model.limit_from, 20)}{strict})"


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The keys as one JSON array.")
@guarded
def keys(as_json: bool) -> int:
    """Every key the runs of this home have used, from the key ledger shared by every run.

    For each: its name and provider, its state (usable, cooling until HH:MM:SS, out of
    quota until..., rejected), its budget (limit per window, and where it was learned),
    its calls and 429s in the last hour, and the runs using it now. Keys are stored by a
    fingerprint: no secret is ever read or printed."""
    _read_only()
    path = key_ledger_file()
    now = time.time()
    ledger: KeyLedger | None = None
    try:
        ledger = open_key_ledger("agentos keys", readonly=True)
        found = ledger.activity(now)
    except FileNotFoundError:
        echo(f"No key ledger yet ({_path(path)}): the first run makes it.")
        return EXIT_OK
    except sqlite3.DatabaseError as exc:
        raise KeyLedgerRefused(path, f"it is corrupt ({exc})") from None
    finally:
        if ledger is not None:
            ledger.close()
    rows = [
        {
            "key": clean_text(a.key.name, 100),
            "provider": clean_text(a.key.provider, 40)
            + (" (offline mock, not a real LLM)" if a.key.provider == "mock" else ""),
            "fingerprint": clean_text(a.key.fp[:12], 12),
            "state": _key_state(a.marks, now),
            "budget": _key_budget(a.model),
            "calls_last_hour": a.calls_last_hour,
            "refused_last_hour": a.refused_last_hour,
            "runs_now": [clean_text(r, 100) for r in a.runs_now],
        }
        for a in found
    ]
    if as_json:
        echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        echo(f"No keys in the ledger yet ({_path(path)}).")
        return EXIT_OK
    from rich import box
    from rich.console import Console
    from rich.table import Table

    tty = _out.isatty()
    table = Table(box=box.SIMPLE if tty else None, pad_edge=False)
    for column in ("Key", "Provider", "State", "Budget", "Calls 1h", "429s 1h", "Runs now"):
        table.add_column(column, overflow="fold")
    for row in rows:
        runs_now = row["runs_now"]
        assert isinstance(runs_now, list)
        table.add_row(
            f"{row['key']} ({row['fingerprint']})",
            str(row["provider"]),
            str(row["state"]),
            str(row["budget"]),
            str(row["calls_last_hour"]),
            str(row["refused_last_hour"]),
            ", ".join(runs_now) or "-",
        )
    buffer = io.StringIO()
    Console(
        file=buffer, force_terminal=tty, width=None if tty else 1000, highlight=False, markup=False
    ).print(table)
    _out.write(buffer.getvalue())
    return EXIT_OK


@main.command()
@click.argument("item")
@click.option("--repo", metavar="PATH", default=".", show_default=True, help="The workspace to write into.")
@guarded
def pull(item: str, repo: str) -> int:
    """Write ITEM's output (`LLD-3`, `ISSUE-widgets`), done on another machine, into this
    workspace, from the team backend. A file already here with other content is kept as it is."""
    from agentos.backend.postgres.run_records import RunRecords
    from agentos.backend.workspace_identity import workspace_identity
    from agentos.cli.config import parse_tracker
    from agentos.core.paths import Workspace
    from agentos.core.settings import load_settings
    from agentos.workflows.team_outputs import write_outputs

    root = Path(repo).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"workspace {clean_text(repo, 300)} is not a directory (use --repo PATH)")
    settings = load_settings(root / "agentos.toml")
    url = _team_url(str(root))
    if not url:
        raise ConfigError("no team backend: set AGENTOS_BACKEND_URL, or [backend] url in agentos.toml")
    kind, _, key = item.partition("-")
    workflow = {"LLD": "lld_workflow", "ISSUE": "issue_workflow"}.get(kind.upper())
    if workflow is None or not key:
        raise ConfigError(f"an item is LLD-<number> or ISSUE-<brief>, got {clean_text(item, 80)!r}")
    if workflow == "lld_workflow":
        key = str(int(key)) if key.isdigit() else key
    tracker = parse_tracker(None, settings.tracker, settings.github_api_url or "https://api.github.com", None)
    identity = workspace_identity(root, tracker).key
    with RunRecords(url) as records:
        found = records.result(identity, workflow, key)
    if found is None:
        raise ConfigError(f"{clean_text(item, 80)}: no result in the team backend for workspace {identity}")
    status, host, run, files = found
    echo(clean_text(f"{item}: {status} on {host} in run {run}", 1000))
    pulled = write_outputs(Workspace(root), files)
    for name in pulled.written:
        echo(f"  wrote {clean_text(name, 500)}")
    for name in pulled.same:
        echo(f"  {clean_text(name, 500)} is already here")
    for name in pulled.kept:
        echo(f"  kept {clean_text(name, 500)}: a different file is here (left as it is)")
    for name in pulled.archived:
        echo(f"  removed {clean_text(name, 500)}: filed on {clean_text(host, 100)}")
    return EXIT_OK


if __name__ == "__main__":
    main()
