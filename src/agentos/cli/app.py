"""What both commands share: their flags, and running a validated RunConfig."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agentos.cli.config import RunConfig
from agentos.errors import EXIT_USAGE, AgentosError, ConfigError
from agentos.paths import checkpoint_db_path, logs_dir
from agentos.tracker.base import Tracker
from agentos.tracker.factory import open_tracker
from agentos.workflows.checkpoint import has_checkpoint
from agentos.workflows.item import ItemJob, item_id_for
from agentos.workflows.parallel.coordinator import ParallelCoordinator
from agentos.workflows.parallel.credential_pools import PoolSet

EPILOG = """\b
Exit codes: 0 every item approved or needs revision; 1 an item failed;
2 usage or configuration error; 75 credential pool exhausted with --no-wait;
130 interrupted (Ctrl+C) - run the same command again to resume.
State lives in $AGENTOS_HOME (default ~/.agentos): checkpoints/, logs/, credentials."""


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
            "openai (optionally provider:model). mock is an OFFLINE MOCK for demos and tests.",
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
        click.option("--fresh", is_flag=True, help="Discard kept checkpoints and start items over."),
        click.option(
            "--no-wait",
            is_flag=True,
            help="If every key is cooling down, stop (exit 75, resumable) instead of pausing.",
        ),
        click.option(
            "--per-key-concurrency",
            type=int,
            default=None,
            help="Workflows one API key may serve at once (default 1).",
        ),
        click.option("--github", metavar="OWNER/NAME", help="Use this GitHub repository as the tracker."),
        click.option("--github-api-url", default=None, help="GitHub API base URL (GitHub Enterprise)."),
        click.option("--label", default=None, help="GitHub label: filter for lld, labels to file for issue."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """Turn our errors into a clear message and the documented exit code."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            code = fn(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except ValueError as exc:  # sanitize_identifier and friends
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except AgentosError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(code)

    return run


def prestart_workers(config: RunConfig) -> None:
    """Start the fork server's preload now, so it overlaps finding the pending items
    (a GitHub listing can take seconds). Only batch runs use worker processes."""
    if config.parallel is not None and not config.dry_run:
        from agentos.workflows.parallel.process_runner import make_context

        make_context(config.preload)


def make_job_factory(config: RunConfig) -> Callable[[str, Path], ItemJob]:
    def make(key: str, audit_path: Path) -> ItemJob:
        return ItemJob(
            kind=config.kind,
            key=key,
            workspace=str(config.workspace.root),
            db_path=str(checkpoint_db_path(config.kind.db_prefix, key)),
            audit_path=str(audit_path),
            drafter=str(config.drafter),
            reviewer=str(config.reviewer),
            max_iterations=config.max_iterations,
            fresh=config.fresh,
            tracker=config.tracker,
            labels=config.labels,
        )

    return make


def order_for_resume(config: RunConfig, keys: list[str]) -> list[str]:
    """Items with a kept checkpoint run first, then the rest, each group in order."""
    if config.fresh:
        return keys
    kept = [k for k in keys if checkpoint_db_path(config.kind.db_prefix, k).exists()]
    return kept + [k for k in keys if k not in kept]


def dry_run(config: RunConfig, keys: list[str], noun: str) -> int:
    parallel = ParallelCoordinator(config.parallel).max_workers if config.parallel else 1
    click.echo(
        f"[COORDINATOR] Dry run mode: {len(keys)} pending {noun}, parallelism {parallel}; "
        "nothing is started or created"
    )
    click.echo(f"[COORDINATOR] {config.banner()}")
    for key in keys:
        db = checkpoint_db_path(config.kind.db_prefix, key)
        action = "start fresh"
        if has_checkpoint(db):
            action = "start fresh (--fresh discards the checkpoint)" if config.fresh else f"resume from {db}"
        click.echo(f"[COORDINATOR]   {item_id_for(config.kind, key)}: would {action}")
    return 0


def execute(config: RunConfig, keys: list[str], noun: str) -> int:
    if config.dry_run:
        return dry_run(config, keys, noun)
    if not keys:
        click.echo(f"[COORDINATOR] No pending {noun}. Nothing to do.")
        return 0
    # Imported here: LangGraph takes ~1 s to import, and dry runs and usage errors need none of it.
    from agentos.workflows.parallel.batch import run_batch
    from agentos.workflows.single import run_single

    pools = PoolSet.load(config.providers, config.per_key_concurrency)
    make_job = make_job_factory(config)
    if config.parallel is None:
        key = keys[0]
        return run_single(
            make_job(key, logs_dir() / f"workflow-audit-{key}.jsonl"), pools, config.banner(), config.no_wait
        )
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
    )


def tracker_for(config: RunConfig) -> Tracker:
    """The configured tracker, checked (token, repository) before anything starts."""
    tracker = open_tracker(config.tracker, config.workspace)
    verify = getattr(tracker, "verify", None)
    if verify is not None:
        verify()
    return tracker
