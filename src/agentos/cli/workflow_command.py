"""Running a validated RunConfig: plan the items, then a dry run, one item here, or a batch."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agentos import __version__
from agentos.backend.postgres.connection import backend_url
from agentos.backend.postgres.run_records import team_run_id
from agentos.backend.workspace_identity import workspace_identity
from agentos.cli.config import RunConfig
from agentos.cli.setup_checks import setup_problems
from agentos.core import environment, stop_signals
from agentos.core.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    AgentosError,
    ConfigError,
)
from agentos.core.home_check import check_home_writable
from agentos.core.paths import checkpoint_db_path, new_run_dir
from agentos.core.redaction import redact
from agentos.core.wording import counted
from agentos.engine.coordinator import ParallelCoordinator
from agentos.keys.pools import PoolSet
from agentos.tracker.base import Tracker
from agentos.tracker.factory import open_tracker
from agentos.workflows.checkpoint import db_path_from_env
from agentos.workflows.item import ItemJob, WorkflowKind, item_id_for
from agentos.workflows.pending import refusal
from agentos.workflows.plan import plan, preflight


def prestart_workers(config: RunConfig) -> None:
    """Start the fork server's preload now, so it overlaps finding the pending items
    (a GitHub listing can take seconds). Only batch runs use worker processes."""
    if config.parallel is not None and not config.dry_run:
        check_home_writable()  # before the fork server: a full disk is named, not a traceback
        from agentos.runs.batch import worker_context

        worker_context(config.preload)


def make_job_factory(config: RunConfig) -> Callable[[str, Path], ItemJob]:
    listed_at = time.time()  # an item finished by another run after this moment is not redone
    url = backend_url(config.backend_url)
    identity = workspace_identity(config.workspace.root, config.tracker).key if url else ""

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
            backend_url=url,
            workspace_identity=identity,
            backend_run=team_run_id(audit_path.parent) if url else "",
        )

    return make


def order_for_resume(config: RunConfig, keys: list[str]) -> list[str]:
    """Items with a kept checkpoint run first, then the rest, each group in order."""
    if config.fresh:
        return keys
    url = backend_url(config.backend_url)
    if url:  # kept in the backend, by whichever machine stopped them
        from agentos.backend.postgres.run_records import RunRecords

        with RunRecords(url) as records:
            identity = workspace_identity(config.workspace.root, config.tracker).key
            marked = records.kept_items(identity, config.kind.db_prefix)
        kept = [k for k in keys if k in marked]
        return kept + [k for k in keys if k not in marked]
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

    command = [f"{config.kind.value}-workflow", *sys.argv[1:]]
    return {
        "workspace": str(config.workspace.root),
        "command": redact(shlex.join(command)),
        "drafter": str(config.drafter),
        "reviewer": str(config.reviewer),
        "agentos_version": __version__,
    }


def team_plans(config: RunConfig, keys: list[str]) -> dict[str, Any]:
    """With a team backend, what it holds of each item, read-only (nothing is created there)."""
    url = backend_url(config.backend_url)
    if not url or not keys:
        return {}
    from agentos.backend.postgres.run_records import RunRecords

    with RunRecords(url, readonly=True) as records:
        identity = workspace_identity(config.workspace.root, config.tracker).key
        return records.plan_view(identity, config.kind.db_prefix, keys)


def team_plan(config: RunConfig, key: str, tracker: Tracker, view: Any) -> str | None:
    """`would skip: done on HOST in run R`, `would resume from the backend`..., or None
    when the backend holds nothing of the item (the local plan says what would happen)."""
    from agentos.workflows.checkpoint_identity import owner_for

    if view.held:
        return "would skip: being processed by another machine (the backend holds its lock)"
    try:
        sha = owner_for(config.kind, key, config.workspace, tracker).input_sha256
    except (AgentosError, OSError) as exc:
        return f"would fail: {exc}"
    if view.done is not None and view.done[0] == sha and not config.force:
        return f"would skip: done on {view.done[1]} in run {view.done[2]}"
    if view.kept_sha256 is None:
        return "would start fresh"
    if config.fresh:
        return "would start fresh (--fresh discards the checkpoint kept in the backend)"
    if view.kept_sha256 != sha:
        return "would start fresh: input changed since the checkpoint kept in the backend was written"
    return "would resume from the checkpoint kept in the backend"


def dry_run(config: RunConfig, keys: list[str], noun: str) -> int:
    parallel = ParallelCoordinator(config.parallel).max_workers if config.parallel else 1
    click.echo(
        f"[COORDINATOR] Dry run mode: {counted(len(keys), 'pending ' + noun)}, parallelism {parallel}; "
        "nothing is started or created"
    )
    click.echo(f"[COORDINATOR] {config.banner()}")
    make_job = make_job_factory(config)
    tracker = open_tracker(config.tracker, config.workspace)
    team = team_plans(config, keys)
    for key in keys:
        lld = config.kind is WorkflowKind.LLD
        refused = (
            None if lld and config.tracker.kind != "local" else refusal(config.workspace, key, issue=lld)
        )
        if refused:
            action = f"would fail: {refused}"
        elif key in team:
            action = team_plan(config, key, tracker, team[key]) or plan(
                make_job(key, Path(os.devnull)), tracker
            )
        else:
            action = plan(make_job(key, Path(os.devnull)), tracker)
        click.echo(f"[COORDINATOR]   {item_id_for(config.kind, key)}: {action}")
    problems = setup_problems(config)
    for problem in problems:
        click.echo(f"Set-up problem: {redact(problem)}", err=True)
    if problems:
        click.echo("The real run would stop before starting anything (exit 2).", err=True)
        return EXIT_USAGE
    return 0


def done_elsewhere(config: RunConfig, keys: list[str]) -> list[str]:
    """With a team backend: the keys still to do here. An item approved on any machine for
    this very input is listed as `done on HOST in run R`, with the command that writes its
    output into this workspace, and not run again."""
    url = backend_url(config.backend_url)
    if not url or config.force or not keys:
        return keys
    from agentos.backend.postgres.run_records import RunRecords
    from agentos.workflows.checkpoint_identity import owner_for

    with RunRecords(url) as records:
        identity = workspace_identity(config.workspace.root, config.tracker).key
        done = records.done_items(identity, config.kind.db_prefix)
    if not done:
        return keys
    tracker = open_tracker(config.tracker, config.workspace)
    todo = []
    for key in keys:
        found = done.get(key)
        if found is not None:
            try:
                same = owner_for(config.kind, key, config.workspace, tracker).input_sha256 == found[0]
            except (AgentosError, OSError):
                same = False  # unreadable here: the item runs, and reports why
            if same:
                item = item_id_for(config.kind, key)
                click.echo(
                    f"[{item}] done on {found[1]} in run {found[2]}; `agentos pull {item} --repo "
                    f"{shlex.quote(str(config.workspace.root))}` writes its output here"
                )
                continue
        todo.append(key)
    return todo


def execute(config: RunConfig, keys: list[str], noun: str) -> int:
    if config.dry_run:
        return dry_run(config, keys, noun)
    keys = done_elsewhere(config, keys)
    if not keys:
        click.echo(f"[COORDINATOR] No pending {noun}s. Nothing to do.")
        return 0
    if stop_signals.requested():
        click.echo("[COORDINATOR] Interrupted before any item started. Nothing to resume.")
        return EXIT_INTERRUPTED
    check_home_writable()
    check_state(config, keys)
    pools = PoolSet.load(
        config.providers,
        config.per_key_concurrency,
        what=f"{config.kind.value}-workflow",
        backend_url=config.backend_url,
    )
    try:
        return _dispatch(config, keys, noun, pools)
    finally:
        pools.close_ledger()


def _dispatch(config: RunConfig, keys: list[str], noun: str, pools: PoolSet) -> int:
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

    parallel = config.parallel
    if config.auto_parallel:
        parallel = auto_parallelism(pools, len(keys))
    return run_batch(
        workflow=f"{config.kind.value}-workflow",
        noun=noun,
        keys=order_for_resume(config, keys),
        make_job=make_job,
        pools=pools,
        parallel=parallel,
        no_wait=config.no_wait,
        preload=config.preload,
        provider_banner=config.banner(),
        item_timeout=config.item_timeout,
        verbosity=config.verbosity,
        fail_fast=config.fail_fast,
        run_info=run_info(config),
        spend=spend,
        rpm=config.rpm,
        no_panel=config.no_panel,
    )


def auto_parallelism(pools: PoolSet, items: int) -> int:
    """`--parallel auto`: the number of workers, from the key ledger's measurements."""
    from agentos.backend.key_ledger import Capacity, fingerprint
    from agentos.runs.parallelism import Machine, PoolShape, choose

    shapes = []
    for provider, pool in pools.pools.items():
        fps = [fingerprint(c.secret) for c in pool.credentials()]
        capacity = (
            pools.ledger.capacity(fps, time.time()) if pools.ledger is not None else Capacity(None, None, 0)
        )
        shapes.append(PoolShape(provider, pool.usable_count(), pool.per_key_concurrency, capacity))
    number, why = choose(shapes, items, Machine.here())
    click.echo(f"[COORDINATOR] --parallel auto: {number} worker(s), bounded by {why}")
    return number


def tracker_for(config: RunConfig) -> Tracker:
    """The configured tracker, checked (token, repository) before anything starts."""
    tracker = open_tracker(config.tracker, config.workspace)
    verify = getattr(tracker, "verify", None)
    if verify is not None:
        verify()
    return tracker
