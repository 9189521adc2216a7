"""`lld-workflow`: turn issues into low-level designs (docs/lld/active/LLD-NNN.md)."""

from __future__ import annotations

from typing import Any

import click

from agentos.cli.app import EPILOG, execute, guarded, prestart_workers, shared_options, tracker_for
from agentos.cli.config import build_config
from agentos.errors import ConfigError
from agentos.paths import sanitize_identifier
from agentos.workflows.item import WorkflowKind
from agentos.workflows.pending import pending_issues


def _issue_number(value: str) -> str:
    text = sanitize_identifier(value.strip().lstrip("#"))
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--issue takes a positive issue number, got {value!r}")
    return str(int(text))


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--issue", "issues", multiple=True, metavar="N", help="Issue number to design (repeatable).")
@shared_options
@guarded
def main(issues: tuple[str, ...], **opts: Any) -> int:
    """Turn issues into low-level designs: draft, review, revise until approved.

    \b
    Examples:
      lld-workflow --repo examples/demo --issue 42 --provider mock
      lld-workflow --all --parallel 3
      lld-workflow --all --dry-run
    """
    numbers = [_issue_number(i) for i in issues]
    config = build_config(WorkflowKind.LLD, opts, numbers)
    prestart_workers(config)
    tracker = tracker_for(config)
    if config.run_all:
        keys = [str(n) for n in pending_issues(config.workspace, tracker)]
    else:
        for number in numbers:
            tracker.get_issue(int(number))  # unknown issue: a clear error before anything starts
        keys = numbers
    return execute(config, keys, "issues")


if __name__ == "__main__":
    main()
