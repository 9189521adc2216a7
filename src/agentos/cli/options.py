"""The flags both workflow commands share, their help, and the `--parallel` parse."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from agentos import __version__
from agentos.cli.config import DEFAULT_PROVIDER
from agentos.llm.registry import ProviderSpec

EPILOG = """\b
Exit codes: 0 every item approved, needs revision or skipped; 1 an item failed;
2 usage or configuration error; 75 credential pool exhausted with --no-wait,
--max-cost reached with items left, or the team backend lost mid-run; 130 interrupted (Ctrl+C or SIGTERM, at any moment) - run the same command
again to resume.
State lives in $AGENTOS_HOME (default ~/.agentos): checkpoints/, logs/, credentials."""


DEFAULT_SPEC = str(ProviderSpec.parse(DEFAULT_PROVIDER))  # named in --help


def shared_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--repo",
            type=click.Path(file_okay=False),
            default=".",
            show_default=True,
            help="The workspace (your repository).",
        ),
        click.option("--all", "run_all", is_flag=True, help="Run every pending item."),
        click.option(
            "--parallel",
            type=ParallelType(),
            is_flag=False,
            flag_value=3,
            default=None,
            help="Run N items at once, each in its own process (no N: 3; capped at 10). "
            "auto: as many as the key pool can feed (its measured limits and latency), within the "
            "machine's CPUs and memory; the [COORDINATOR] line says how many and why.",
        ),
        click.option(
            "--provider",
            help="Provider for drafter and reviewer: mock, gemini, anthropic, "
            "openai (optionally provider:model). mock is an OFFLINE MOCK for demos and tests. "
            f"Default: {DEFAULT_SPEC}, or provider in agentos.toml.",
        ),
        click.option("--drafter", help="Drafter provider[:model]; overrides --provider."),
        click.option("--reviewer", help="Reviewer provider[:model]; overrides --provider."),
        click.option(
            "--max-iterations",
            type=int,
            default=None,
            help="Review rounds before giving up as 'needs revision' (default 3).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="List pending items and whether each would start fresh or resume; run nothing.",
        ),
        click.option(
            "--fresh",
            is_flag=True,
            help="Discard kept checkpoints (only agentos's own) and start items over.",
        ),
        click.option(
            "--no-wait",
            is_flag=True,
            help="If every key is cooling down, stop (exit 75, resumable) instead of pausing.",
        ),
        click.option(
            "--per-key-concurrency",
            type=int,
            default=None,
            help="Workflows one API key may serve at once, and calls in flight on it (default 1).",
        ),
        click.option("--github", metavar="OWNER/NAME", help="Use this GitHub repository as the tracker."),
        click.option("--github-api-url", default=None, help="GitHub API base URL (GitHub Enterprise)."),
        click.option(
            "--item-timeout",
            metavar="DURATION",
            default=None,
            help="Fail an item that runs longer than this (90s, 20m, 1h; 0 = no limit; "
            "default 30m). Its checkpoint is kept, so a re-run resumes it.",
        ),
        click.option(
            "--fail-fast",
            is_flag=True,
            help="After the first failed item, start no new item; running items finish (exit 1).",
        ),
        click.option(
            "--max-cost",
            metavar="AMOUNT",
            default=None,
            help="Start no new item once the run has spent this many US dollars (prices from "
            '[prices."MODEL"] in agentos.toml); running items finish (exit 75, resumable).',
        ),
        click.option(
            "--no-structured-output",
            is_flag=True,
            help="Ask reviewers for the text verdict format instead of the provider's native "
            "structured output (JSON schema).",
        ),
        click.option(
            "-q",
            "--quiet",
            is_flag=True,
            help="Console: only coordinator lines, failures and the summary (on a terminal, the live "
            "panel keeps its pool line and bar). Logs keep everything.",
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            help="Console: every line: worker PIDs, checkpoint paths, each node and LLM call. "
            "The default shows each item's start, end and failure; logs keep everything.",
        ),
        click.option(
            "--no-panel",
            is_flag=True,
            help="On a terminal, keep the plain console: no live panel of workers, key pool and bar "
            "(also AGENTOS_NO_PANEL=1; pipes and CI never get one).",
        ),
        click.version_option(__version__, "--version", message="%(prog)s (agentos %(version)s)"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def label_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--label` means a filter to lld-workflow and labels to file to issue-workflow, so
    each command states its own meaning."""
    return click.option("--label", default=None, metavar="LABEL", help=help_text)


_NEGATIVE = re.compile(r"^-\d+$")
AUTO = "auto"


class ParallelType(click.ParamType):  # type: ignore[type-arg]
    """`--parallel N` or `--parallel auto`."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text == AUTO:
            return AUTO
        try:
            return int(text)
        except ValueError:
            self.fail(f"takes a positive number or auto, got {value!r}", param, ctx)


class WorkflowCommand(click.Command):
    """`--parallel -2` gets the same clear message as `--parallel 0` (exit 2), not click's
    `No such option '-2'`: click never gives an optional-value option a dash-led value,
    not even as `--parallel=-2`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for index, arg in enumerate(args):
            value = args[index + 1] if arg == "--parallel" and index + 1 < len(args) else None
            if arg.startswith("--parallel="):
                value = arg.split("=", 1)[1]
            if value is not None and _NEGATIVE.match(value):
                raise click.UsageError(f"--parallel must be a positive number, got {value}", ctx)
        return super().parse_args(ctx, args)
