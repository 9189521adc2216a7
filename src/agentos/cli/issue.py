"""`issue-workflow`: turn briefs (ideas/active/*.md) into filed issues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agentos.cli.app import EPILOG, execute, guarded, prestart_workers, shared_options, tracker_for
from agentos.cli.config import build_config
from agentos.errors import ConfigError
from agentos.paths import sanitize_identifier
from agentos.workflows.item import WorkflowKind
from agentos.workflows.pending import pending_briefs, skipped_briefs


def _brief_slug(value: str) -> str:
    """Accept `ideas/active/x.md`, `x.md` or `x`; the brief must live in ideas/active/."""
    path = Path(value)
    if path.suffix == ".md":
        if path.parent.parts and path.parent.parts[-2:] != ("ideas", "active"):
            raise ConfigError(f"--brief {value!r}: briefs live in <repo>/ideas/active/")
        value = path.stem
    return sanitize_identifier(value)


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--brief",
    "briefs",
    multiple=True,
    metavar="PATH",
    help="Brief to turn into an issue: ideas/active/<slug>.md or <slug> (repeatable).",
)
@shared_options
@guarded
def main(briefs: tuple[str, ...], **opts: Any) -> int:
    """Turn briefs into well-formed issues: draft, review, revise, then file.

    \b
    Examples:
      issue-workflow --repo examples/demo --brief ideas/active/offline-mode.md --provider mock
      issue-workflow --all --parallel
    """
    slugs = [_brief_slug(b) for b in briefs]
    config = build_config(WorkflowKind.ISSUE, opts, slugs)
    prestart_workers(config)
    if config.tracker.kind == "github" and not config.dry_run:
        tracker_for(config)  # token and repository checked before any workflow starts
    for skipped in skipped_briefs(config.workspace):
        click.echo(f"[COORDINATOR] Warning: skipping brief {skipped!r}: rename it to letters, digits, - or _")
    if config.run_all:
        keys = pending_briefs(config.workspace)
    else:
        for slug in slugs:
            if not config.workspace.brief_file(slug).is_file():
                raise ConfigError(f"brief {slug!r} not found in {config.workspace.ideas_active}")
        keys = slugs
    return execute(config, keys, "briefs")


if __name__ == "__main__":
    main()
