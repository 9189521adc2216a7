"""`lld-workflow`: turn issues into low-level designs (docs/lld/active/LLD-NNN.md)."""

from __future__ import annotations

import agentos.cli.entry  # noqa: F401  (first: Ctrl+C handled before the heavy imports)

# isort: split

from typing import Any

import click

from agentos.cli.config import RunConfig, build_config
from agentos.cli.guarded import guarded
from agentos.cli.options import EPILOG, WorkflowCommand, label_option, shared_options
from agentos.cli.setup_checks import check_workspace
from agentos.cli.workflow_command import execute, prestart_workers, tracker_for
from agentos.core.errors import ConfigError
from agentos.core.item_identity import ISSUE_NUMBER_RULE, parse_issue_number
from agentos.core.paths import sanitize_identifier
from agentos.workflows.item import WorkflowKind
from agentos.workflows.pending import lld_status, pending_issues, skip_warnings


def _issue_number(value: str) -> str:
    """`42`, `#42` or `042` -> "42": the canonical key. Only ASCII digits, 1..10^9."""
    text = value.strip().removeprefix("#")
    number = parse_issue_number(text)
    if number is None:
        if any(c in text for c in "/\\."):
            sanitize_identifier(text)  # names the path trick: traversal, absolute path, separators
        raise ConfigError(f"--issue takes a positive issue number ({ISSUE_NUMBER_RULE}), got {value!r}")
    return str(number)


@click.command(cls=WorkflowCommand, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--issue", "issues", multiple=True, metavar="N", help="Issue number to design (repeatable).")
@click.option(
    "--force",
    is_flag=True,
    help="Design a named issue again although its LLD is approved (without it, it is skipped).",
)
@label_option("Design only GitHub issues that carry this label (with --github).")
@shared_options
@guarded
def main(issues: tuple[str, ...], **opts: Any) -> int:
    """Turn issues into low-level designs: draft, review, revise until approved.

    \b
    Examples:
      lld-workflow --repo examples/demo --issue 42 --provider mock
      lld-workflow --all --parallel 3
      lld-workflow --all --dry-run

    An issue whose LLD is already approved is skipped, with a message (exit 0);
    --force designs it again. A run skips items that another run is working on.
    """
    numbers = list(dict.fromkeys(_issue_number(i) for i in issues))  # `--issue 7 --issue 07`: one item
    config = build_config(WorkflowKind.LLD, opts, numbers)
    check_workspace(config)  # a wrong --repo is named in every mode, before anything starts
    prestart_workers(config)
    tracker = tracker_for(config)
    if config.tracker.kind == "local":
        for line in skip_warnings(config.workspace, issues=True):
            click.echo(line)
    if config.run_all:
        keys = [str(n) for n in pending_issues(config.workspace, tracker)]
    else:
        for number in numbers:
            tracker.get_issue(int(number))  # unknown issue: a clear error before anything starts
        keys = [n for n in numbers if config.force or not _announce_approved(config, int(n))]
    return execute(config, keys, "issue")


def _announce_approved(config: RunConfig, number: int) -> bool:
    """An approved issue is done: say so and leave its LLD alone (unless --force)."""
    if lld_status(config.workspace, number) != "approved":
        return False
    lld = config.workspace.lld_file(number).relative_to(config.workspace.root)
    click.echo(f"[LLD-{number}] already approved ({lld}); nothing to do. Use --force to design it again.")
    return True


if __name__ == "__main__":
    main()
