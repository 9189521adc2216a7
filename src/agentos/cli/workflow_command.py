"""What both commands share: their flags, and running a validated RunConfig."""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agentos import __version__
from agentos.cli.config import DEFAULT_PROVIDER, RunConfig
from agentos.cli.setup_checks import setup_problems
from agentos.core import environment, stop_signals
from agentos.core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    AgentosError,
    ConfigError,
    Interrupted,
)
from agentos.core.home_check import check_home_writable
from agentos.core.paths import checkpoint_db_path, new_run_dir
from agentos.core.redaction import redact
from agentos.core.wording import counted
from agentos.engine.coordinator import ParallelCoordinator
from agentos.keys.pools import PoolSet
from agentos.llm.registry import ProviderSpec
from agentos.tracker.base import Tracker
from agentos.tracker.factory import open_tracker
from agentos.workflows.checkpoint import db_path_from_env
from agentos.workflows.item import ItemJob, WorkflowKind, item_id_for
from agentos.workflows.pending import refusal
from agentos.workflows.plan import plan, preflight

EPILOG = """\b
Exit codes: 0 every item approved, needs revision or skipped; 1 an item failed;
2 usage or configuration error; 75 credential pool exhausted with --no-wait,
or --max-cost reached with items left; 130 interrupted (Ctrl+C or SIGTERM, at any moment) - run the same command
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
            type=int,
            is_flag=False,
            flag_value=3,
            default=None,
            help="Run N items at once, each in its own process (no N: 3; capped at 10).",
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
            help="Console: only coordinator lines, failures and the summary. Logs keep everything.",
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            help="Console: every line: worker PIDs, checkpoint paths, each node and LLM call. "
            "The default shows each item's start, end and failure; logs keep everything.",
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


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """Turn our errors into a clear message and the documented exit code."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            code = fn(*args, **kwargs)
        except Interrupted:
            click.echo("[COORDINATOR] Interrupted before any item started. Nothing to resume.")
            code = EXIT_INTERRUPTED
        except ConfigError as exc:
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = EXIT_USAGE
        except ValueError as exc:  # sanitize_identifier and friends
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = EXIT_USAGE
        except AgentosError as exc:
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = exc.exit_code
        except OSError as exc:  # a disk error outside any item: say what, no traceback
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = EXIT_FAILED
        if "agentos.engine.fork_server" in sys.modules:  # prestarted, maybe unused
            from agentos.engine.fork_server import stop_helpers

            stop_helpers()  # a fork server left behind (stopped, even) would hold our stdout
        stop_signals.ignore_from_now()  # no death by signal during the interpreter's exit
        if stop_signals.requested() and code in (EXIT_OK, EXIT_FAILED):
            code = EXIT_INTERRUPTED  # Ctrl+C or SIGTERM at any moment means 130
        sys.exit(code)

    return run


def prestart_workers(config: RunConfig) -> None:
    """Start the fork server's preload now, so it overlaps finding the pending items
    (a GitHub listing can take seconds). Only batch runs use worker processes."""
    if config.parallel is not None and not config.dry_run:
        check_home_writable()  # before the fork server: a full disk is named, not a traceback
        from agentos.runs.batch import worker_context

        worker_context(config.preload)


def make_job_factory(config: RunConfig) -> Callable[[str, Path], ItemJob]:
    listed_at = time.time()  # an item finished by another run after this moment is not redone

    def make(key: str, audit_path: Path) -> ItemJob:
        default = checkpoint_db_path(config.kind.db_prefix, key, config.workspace.root)
        return ItemJob(
            kind=config.kind,
            key=key,
            workspace=str(config.workspace.root),
            db_path=str(db_path_from_env(default)),
            audit_path=str(audit_path),
            drafter=str(config.drafter),
            reviewer=str(config.reviewer),
            max_iterations=config.max_iterations,
            fresh=config.fresh,
            tracker=config.tracker,
            labels=config.labels,
            max_item_bytes=config.workspace.max_item_bytes,
            force=config.force,
            listed_at=listed_at,
            structured_output=config.structured_output,
            provider_timeout_s=config.provider_timeout,
            max_output_tokens=config.max_output_tokens,
        )

    return make


def order_for_resume(config: RunConfig, keys: list[str]) -> list[str]:
    """Items with a kept checkpoint run first, then the rest, each group in order."""
    if config.fresh:
        return keys
    make_job = make_job_factory(config)
    kept = [k for k in keys if Path(make_job(k, Path(os.devnull)).db_path).exists()]
    return kept + [k for k in keys if k not in kept]


def check_state(config: RunConfig, keys: list[str]) -> None:
    """Before anything starts: one DB per item, and no DB path holding a file that is not ours.

    A refused path is a configuration error (exit 2) in every mode; nothing was started.
    """
    if environment.WORKFLOW_DB.get() and len(keys) > 1:
        raise ConfigError(
            f"AGENTOS_WORKFLOW_DB names the checkpoint of one item, but {len(keys)} items would run; "
            "name one item, or unset it"
        )
    make_job = make_job_factory(config)
    for key in keys:
        preflight(make_job(key, Path(os.devnull)))


def run_info(config: RunConfig) -> dict[str, Any]:
    """What tells two runs apart in summary.json. The command line is redacted."""
    from agentos import __version__

    command = [f"{config.kind.value}-workflow", *sys.argv[1:]]
    return {
        "workspace": str(config.workspace.root),
        "command": redact(shlex.join(command)),
        "drafter": str(config.drafter),
        "reviewer": str(config.reviewer),
        "agentos_version": __version__,
    }


def dry_run(config: RunConfig, keys: list[str], noun: str) -> int:
    parallel = ParallelCoordinator(config.parallel).max_workers if config.parallel else 1
    click.echo(
        f"[COORDINATOR] Dry run mode: {counted(len(keys), 'pending ' + noun)}, parallelism {parallel}; "
        "nothing is started or created"
    )
    click.echo(f"[COORDINATOR] {config.banner()}")
    make_job = make_job_factory(config)
    tracker = open_tracker(config.tracker, config.workspace)
    for key in keys:
        lld = config.kind is WorkflowKind.LLD
        refused = (
            None if lld and config.tracker.kind != "local" else refusal(config.workspace, key, issue=lld)
        )
        action = f"would fail: {refused}" if refused else plan(make_job(key, Path(os.devnull)), tracker)
        click.echo(f"[COORDINATOR]   {item_id_for(config.kind, key)}: {action}")
    problems = setup_problems(config)
    for problem in problems:
        click.echo(f"Set-up problem: {redact(problem)}", err=True)
    if problems:
        click.echo("The real run would stop before starting anything (exit 2).", err=True)
        return EXIT_USAGE
    return 0


def execute(config: RunConfig, keys: list[str], noun: str) -> int:
    if config.dry_run:
        return dry_run(config, keys, noun)
    if not keys:
        click.echo(f"[COORDINATOR] No pending {noun}s. Nothing to do.")
        return 0
    if stop_signals.requested():
        click.echo("[COORDINATOR] Interrupted before any item started. Nothing to resume.")
        return EXIT_INTERRUPTED
    check_home_writable()
    check_state(config, keys)
    pools = PoolSet.load(config.providers, config.per_key_concurrency)
    make_job = make_job_factory(config)
    from agentos.runs.spend import SpendMeter  # no LangGraph behind it

    spend = SpendMeter(config.prices, config.models, config.max_cost)
    # Imported here: LangGraph takes ~1 s to import. Only a single-item run needs it in this
    # process; a batch's coordinator never imports it, while its fork server preloads it.
    if config.parallel is None:
        from agentos.runs.single import run_single

        key = keys[0]
        run_dir = new_run_dir()  # a single item's run is recorded like a batch's (`agentos runs`)
        return run_single(
            make_job(key, run_dir / f"workflow-audit-{key}.jsonl"),
            pools,
            config.banner(),
            config.no_wait,
            config.item_timeout,
            verbosity=config.verbosity,
            spend=spend,
            run_dir=run_dir,
            run_info={"workflow": f"{config.kind.value}-workflow", **run_info(config)},
        )
    from agentos.runs.batch import run_batch

    return run_batch(
        workflow=f"{config.kind.value}-workflow",
        noun=noun,
        keys=order_for_resume(config, keys),
        make_job=make_job,
        pools=pools,
        parallel=config.parallel,
        no_wait=config.no_wait,
        preload=config.preload,
        provider_banner=config.banner(),
        item_timeout=config.item_timeout,
        verbosity=config.verbosity,
        fail_fast=config.fail_fast,
        run_info=run_info(config),
        spend=spend,
        rpm=config.rpm,
    )


def tracker_for(config: RunConfig) -> Tracker:
    """The configured tracker, checked (token, repository) before anything starts."""
    tracker = open_tracker(config.tracker, config.workspace)
    verify = getattr(tracker, "verify", None)
    if verify is not None:
        verify()
    return tracker
