"""`agentos`: past batch runs. `runs` lists them, `show` prints one's summary, `clean` prunes.

Reads only run folders (`$AGENTOS_HOME/logs/parallel/<timestamp>/`) and treats them as
untrusted input (see `agentos.run_history`). Starts no workflow and imports no LangGraph.
"""

from __future__ import annotations

import agentos.cli.entry  # noqa: F401  (first: Ctrl+C handled from the first instant)

# isort: split

import sys

import click

from agentos import __version__, stop_signals
from agentos.cli.workflow_command import guarded
from agentos.errors import EXIT_FAILED, EXIT_OK
from agentos.run_history import (
    RunHistoryError,
    clean_items,
    clean_text,
    find_run,
    parse_age,
    plan_clean,
    read_summary,
    remove_run_folder,
    run_folders,
    run_info,
    runs_root,
)

TOTAL_ORDER = ("approved", "needs_revision", "failed", "interrupted", "not_started")


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
    """Past batch runs of lld-workflow and issue-workflow: list, show, clean.

    \b
    Examples:
      agentos runs
      agentos show                 # the latest run's summary table
      agentos show 20261122-101500
      agentos clean --older-than 30d --dry-run
    """


def _totals(totals: dict[str, int]) -> str:
    from agentos.workflows.parallel.summary import LABELS

    parts = [f"{totals[k]} {LABELS.get(k, k)}" for k in TOTAL_ORDER if totals.get(k)]
    parts += [f"{v} {k}" for k, v in totals.items() if k not in (*TOTAL_ORDER, "total") and v]
    total = totals.get("total")
    return (f"{total}: " if total is not None else "") + (", ".join(parts) or "none")


@main.command()
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Runs to list."
)
@guarded
def runs(limit: int) -> int:
    """Recent runs, newest first: when, workspace, workflow, totals, exit code, folder."""
    folders = run_folders()
    if not folders:
        click.echo(f"No runs yet in {runs_root()}.")
        return EXIT_OK
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    for column in ("When", "Workspace", "Workflow", "Items", "Exit", "Run folder"):
        table.add_column(column, overflow="fold")
    for run_dir in list(reversed(folders))[:limit]:
        info = run_info(run_dir)
        if info.problem is not None:
            table.add_row(info.when, "-", "-", clean_text(info.problem), "-", str(run_dir))
            continue
        exit_code = "-" if info.exit_code is None else str(info.exit_code)
        table.add_row(info.when, info.workspace, info.workflow, _totals(info.totals), exit_code, str(run_dir))
    tty = sys.stdout.isatty()
    width = None if tty else 1000  # pipes and CI: one run a line, for grep
    Console(force_terminal=tty, width=width, highlight=False, markup=False).print(table)
    if len(folders) > limit:
        click.echo(f"({len(folders) - limit} older run(s) not shown; use --limit)")
    return EXIT_OK


@main.command()
@click.argument("run", required=False)
@guarded
def show(run: str | None) -> int:
    """The summary table of RUN (a run folder name or path); the latest run when none is named."""
    from agentos.workflows.parallel import summary
    from agentos.workflows.parallel.item_record import ItemRecord

    run_dir = find_run(run)
    try:
        data = read_summary(run_dir)
    except RunHistoryError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_FAILED
    items = [ItemRecord.from_json(entry) for entry in clean_items(data)]
    info = run_info(run_dir)
    duration = data.get("duration_s")
    took = (
        f", {duration:.1f}s" if isinstance(duration, int | float) and not isinstance(duration, bool) else ""
    )
    exit_code = "-" if info.exit_code is None else str(info.exit_code)
    click.echo(f"Run {run_dir.name}: {info.workflow}, started {info.when}{took}, exit code {exit_code}")
    click.echo(f"Workspace: {info.workspace}")
    click.echo(f"Run folder: {run_dir}")
    for key, label in (("stopped_early", "Stopped early"), ("interrupted_by", "Interrupted by")):
        if data.get(key):
            click.echo(f"{label}: {clean_text(data[key])}")
    click.echo(summary.summary_line(items))
    summary.render_table(items, sys.stdout, sys.stdout.isatty())  # typed records: any shape renders
    return EXIT_OK


@main.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE", help="e.g. 30d, 12h, 2w.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@guarded
def clean(older_than: str, dry_run: bool) -> int:
    """Remove run folders older than AGE. Never a checkpoint DB, and never the folder
    that explains a checkpoint still kept for a pending item."""
    plan = plan_clean(parse_age(older_than))
    verb = "Would remove" if dry_run else "Removed"
    failed: list[str] = []
    removed = 0
    for run_dir in plan.remove:
        if stop_signals.requested():  # between folders: a signal never leaves one half-removed
            click.echo(f"Stopped by a signal after {removed} of {len(plan.remove)}; run it again to go on.")
            break
        if not dry_run:
            try:
                remove_run_folder(run_dir)
            except RunHistoryError as exc:
                failed.append(str(exc))
                continue
        removed += 1
        click.echo(f"{verb} {run_dir}")
    for run_dir, why in plan.keep:
        click.echo(f"Kept {run_dir}: {why}")
    click.echo(
        f"{verb} {removed} run folder(s) older than {older_than}; kept {len(plan.keep)} that explain "
        f"kept checkpoints. {plan.checkpoints} checkpoint DB(s) kept for resume are never removed here "
        "(--fresh on a run discards them)."
    )
    for message in failed:
        click.echo(f"Error: {message}", err=True)
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
