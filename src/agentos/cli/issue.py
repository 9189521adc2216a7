"""`issue-workflow`: turn briefs (ideas/active/*.md) into filed issues."""

from __future__ import annotations

import agentos.cli.entry  # noqa: F401  (first: Ctrl+C handled before the heavy imports)

# isort: split

import os
from pathlib import Path
from typing import Any

import click

from agentos.cli.config import build_config
from agentos.cli.guarded import guarded
from agentos.cli.options import EPILOG, WorkflowCommand, label_option, shared_options
from agentos.cli.setup_checks import check_workspace
from agentos.cli.workflow_command import execute, prestart_workers, tracker_for
from agentos.core.errors import ConfigError
from agentos.core.item_identity import BRIEF_NAME_RULE
from agentos.core.paths import sanitize_identifier
from agentos.core.workspace_files import check_file
from agentos.workflows.item import WorkflowKind
from agentos.workflows.pending import pending_briefs, skip_warnings


def _brief_slug(value: str) -> str:
    """Accept `ideas/active/x.md`, `x.md` or `x`; the brief must live in ideas/active/."""
    path = Path(value)
    if path.suffix == ".md":
        if path.parent.parts and path.parent.parts[-2:] != ("ideas", "active"):
            raise ConfigError(f"--brief {value!r}: briefs live in <repo>/ideas/active/")
        value = path.stem
    try:
        return sanitize_identifier(value)
    except ValueError as exc:  # say what a brief name may be, in the words of the --all warning
        raise ConfigError(
            f"--brief {value!r}: {str(exc).split(': ', 1)[-1]}; a brief's name is {BRIEF_NAME_RULE}"
        ) from None


@click.command(cls=WorkflowCommand, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--brief",
    "briefs",
    multiple=True,
    metavar="PATH",
    help="Brief to turn into an issue: ideas/active/<slug>.md or <slug> (repeatable).",
)
@label_option("GitHub labels to put on each filed issue, comma-separated (with --github).")
@shared_options
@guarded
def main(briefs: tuple[str, ...], **opts: Any) -> int:
    """Turn briefs into well-formed issues: draft, review, revise, then file.

    \b
    Examples:
      issue-workflow --repo examples/demo --brief ideas/active/offline-mode.md --provider mock
      issue-workflow --all --parallel

    A brief that was already filed (it is in ideas/done/) is skipped with a message.
    Each brief is filed exactly once, even when two runs work on the workspace.
    """
    slugs = list(dict.fromkeys(_brief_slug(b) for b in briefs))  # one item, however often named
    config = build_config(WorkflowKind.ISSUE, opts, slugs)
    check_workspace(config)  # a wrong --repo is named in every mode, before anything starts
    prestart_workers(config)
    if config.tracker.kind == "github" and not config.dry_run:
        tracker_for(config)  # token and repository checked before any workflow starts
    for line in skip_warnings(config.workspace, issues=False):
        click.echo(line)
    if config.run_all:
        keys = pending_briefs(config.workspace)
    else:
        workspace = config.workspace
        keys = []
        for slug in slugs:  # a missing or unsafe brief: a clear error before anything starts
            brief = workspace.brief_file(slug)
            if not os.path.lexists(brief) and (workspace.ideas_done / f"{slug}.md").is_file():
                click.echo(
                    f"[ISSUE-{slug}] already filed (ideas/done/{slug}.md); nothing to do. "
                    "Move it back to ideas/active/ to file it again."
                )
                continue
            try:
                check_file(brief, workspace.root, what="brief", max_bytes=workspace.max_item_bytes)
            except FileNotFoundError:
                raise ConfigError(f"brief {slug!r} not found in {workspace.ideas_active}") from None
            keys.append(slug)
    return execute(config, keys, "brief")


if __name__ == "__main__":
    main()
